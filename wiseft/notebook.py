"""What the pipeline notebooks import besides the steps: opening a run, stopping early, showing and printing.

The notebooks under ``notebooks/`` stay thin: a parameters cell, then short cells that call ``wiseft``. The few
things a notebook needs that are not a pipeline step live here:

- :func:`open_run` turns the four notebook parameters (``profile``, ``overrides``, ``run_dir``, ``device``)
  into a :class:`~wiseft.run.RunContext`. ``run_dir=None`` means ``runs/<profile>`` of the repository the
  notebook lives in (``$WISEFT_RUNS/<profile>`` when that is set), and ``device=None`` means
  ``$WISEFT_DEVICE`` if set, else the profile's device, so that
  ``WISEFT_DEVICE=cuda bash scripts/run_tests.sh`` runs the committed notebooks on a GPU unchanged.
- :func:`stop_if` ends a notebook early *without an error* (a figure whose data the profile lacks): it prints
  the reason, and every later cell of the notebook is skipped. papermill, nbval and JupyterLab all see a clean
  run; a script (no IPython) exits with status 0 instead.
- :func:`show` displays a figure inline whatever the matplotlib backend (``MPLBACKEND=Agg`` included);
  :func:`markdown` renders a table as the saved ``.md`` (one decimal, the paper's dataset names).
- :func:`paper_comparison` puts the run's numbers beside the paper's when the profile names a paper setting.

Errors wiseft raises on purpose (:class:`~wiseft.errors.WiseftError`: a missing dataset, a step not run yet)
are shown in a notebook as their message only — they already name the culprit and the fix — after
:func:`open_run`; ``%tb`` still shows the full traceback.
"""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from .errors import WiseftError
from .profile import Profile, load_profile
from .run import RunContext

log = logging.getLogger(__name__)

__all__ = ["DEVICE_ENV", "RUNS_ENV", "open_run", "notebook_run_dir", "describe_run", "run_results", "stop_if",
           "stopped", "show", "markdown", "save_tables", "paper_comparison"]

#: Environment variable that chooses the device of notebooks whose ``device`` parameter is ``None``.
DEVICE_ENV = "WISEFT_DEVICE"
#: Environment variable naming the folder of run folders for notebooks whose ``run_dir`` parameter is ``None``.
RUNS_ENV = "WISEFT_RUNS"
#: A file that marks the folder holding the pipeline notebooks (``<repo>/notebooks``).
_MARKER = Path("notebooks") / "01_data.ipynb"


# ------------------------------------------------------------------------------------------ opening a run
def notebook_run_dir(profile_name: str, start: str | os.PathLike | None = None) -> Path:
    """``runs/<profile>`` of the repository a notebook runs in (or ``$WISEFT_RUNS/<profile>``).

    ``$WISEFT_RUNS``, when set, is the folder of run folders (a scratch folder to run the notebooks from
    scratch without touching ``runs/``). Otherwise the repository is the first of ``start`` (default: the
    working directory, which Jupyter sets to the notebook's folder) and its parents that holds
    ``notebooks/01_data.ipynb``; else the source tree wiseft is imported from, when it has one; else the
    working directory.
    """
    from .io import safe_name

    name = safe_name(profile_name, "profile name")
    if os.environ.get(RUNS_ENV):
        return Path(os.environ[RUNS_ENV]).expanduser() / name
    here = Path(start if start is not None else Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / _MARKER).is_file():
            return folder / "runs" / name
    source_tree = Path(__file__).resolve().parents[1]
    if (source_tree / _MARKER).is_file():
        return source_tree / "runs" / name
    return here / "runs" / name


def open_run(profile: str | os.PathLike, overrides: Sequence[str] = (), run_dir: str | os.PathLike | None = None,
             device: str | None = None) -> RunContext:
    """The run a notebook works on, from its four parameters.

    Args:
        profile: a packaged profile name (``mini``) or the path of a profile YAML.
        overrides: ``key=value`` strings, as ``--set`` takes them.
        run_dir: the run folder; ``None`` means ``runs/<profile name>`` of the repository
            (:func:`notebook_run_dir`).
        device: ``cpu``, ``cuda``, ``auto`` …; ``None`` means ``$WISEFT_DEVICE`` when set, else the profile's.

    Raises:
        ProfileError: for an unknown profile or a bad override (shown as its message in a notebook).
    """
    _install_error_display()
    cfg = load_profile(profile, list(overrides or ()))
    folder = Path(run_dir).expanduser() if run_dir is not None else notebook_run_dir(cfg.name)
    chosen = device or os.environ.get(DEVICE_ENV) or None
    return RunContext(cfg, folder.resolve(), chosen)


def describe_run(ctx: RunContext) -> str:
    """Profile, run folder and device (volatile: printed in cells nbval does not check), then one line per dataset
    with a preprocessing choice of the protocol (ObjectNet's border crop: the paper's uncropped images or not)."""
    from .steps.common import preprocessing_notes

    lines = [f"profile {ctx.profile.name} ({ctx.profile.source}); run folder {ctx.dir}; device {ctx.device}"]
    return "\n".join(lines + preprocessing_notes(ctx.profile))


def run_results(ctx: RunContext) -> pd.DataFrame:
    """The results rows of the run; for a suite profile, every member's rows too."""
    from .figures import load_run_results

    return load_run_results(ctx.dir, [m.name for m in ctx.profile.suite_members()])


# ------------------------------------------------------------------------------------------ errors
def _ipython():
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency of the notebook extras
        return None
    return get_ipython()


def _show_message_only(shell, etype, value, tb, tb_offset=None):
    """IPython handler for WiseftError: the message (it names the fix), not a traceback into the library."""
    shell.showtraceback((etype, value, tb), exception_only=True)
    return None


def _install_error_display() -> None:
    shell = _ipython()
    if shell is not None and WiseftError not in tuple(getattr(shell, "custom_exceptions", ())):
        shell.set_custom_exc((WiseftError,), _show_message_only)


# ------------------------------------------------------------------------------------------ stopping early
class _Stop:
    """The input transformer that turns every later cell into a note, once a notebook has stopped."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self.before: set[str] = set()

    def __call__(self, lines: list[str]) -> list[str]:
        source = "".join(lines).strip()
        # Cells that ran before the stop still run (rerunning from the top in JupyterLab works), and so does
        # the cell that calls stop_if (it lifts the stop once the data is there).
        if self.reason is None or source in self.before or "stop_if(" in source or not source:
            return lines
        return [f"print({f'(skipped: {self.reason})'!r})\n"]


_STOP = _Stop()


def stopped() -> str | None:
    """The reason the current notebook stopped early, or ``None``."""
    return _STOP.reason


def stop_if(reason: str | None) -> None:
    """End the notebook here, cleanly, when ``reason`` is not ``None``.

    Prints the reason; every later cell of the notebook then prints ``(skipped: …)`` instead of running, and
    the run counts as successful (papermill, nbval). Calling it again with ``None`` (the data is now there)
    lifts the stop. Outside IPython (a notebook exported as a script) the process exits with status 0.

    Example:
        >>> spec = get_figure("fig9")                        # doctest: +SKIP
        >>> stop_if(spec.requires(df))                       # doctest: +SKIP
        Not drawn: no further-shift datasets in the results ...
    """
    shell = _ipython()
    transformers = getattr(shell, "input_transformers_post", None) if shell is not None else None
    if reason is None:
        _STOP.reason = None
        if transformers is not None and _STOP in transformers:
            transformers.remove(_STOP)
        return
    reason = str(reason).strip().rstrip(".")
    print(f"Not drawn: {reason}.\nThe remaining cells of this notebook are skipped; nothing is written.")
    if transformers is None:
        raise SystemExit(0)
    history = shell.user_ns.get("In", []) if hasattr(shell, "user_ns") else []
    _STOP.before = {str(cell).strip() for cell in history if str(cell).strip()}
    _STOP.reason = reason
    if _STOP not in transformers:
        transformers.append(_STOP)


# ------------------------------------------------------------------------------------------ showing
def show(fig: Any, dpi: int = 90) -> None:
    """Display a matplotlib figure inline (as PNG, whatever the backend) and close it."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    try:
        from IPython.display import Image, display
    except ImportError:  # pragma: no cover
        return
    display(Image(data=buffer.getvalue(), format="png"))


def markdown(table: pd.DataFrame, title: str | None = None) -> str:
    """A table as Markdown with one decimal and the paper's dataset names (what ``save_table`` writes)."""
    from .figures.tables import to_markdown

    if table is None or table.empty:
        return f"{title}: (empty)" if title else "(empty table)"
    return to_markdown(table, title=title).rstrip()


def save_tables(figures_dir: str | os.PathLike, tables: dict[str, pd.DataFrame], title: str | None = None
                ) -> list[Path]:
    """``save_table`` for each non-empty table of ``{file stem: table}``; returns the paths written.

    Args:
        figures_dir: where to write (``ctx.figures_dir``).
        tables: the tables by file stem (``sweep_table_e2e``).
        title: the Markdown title; the stem is appended.
    """
    from .figures import save_table

    paths: list[Path] = []
    for stem, table in tables.items():
        if table is not None and not table.empty:
            paths += save_table(table, figures_dir, stem, title=f"{title} ({stem})" if title else None)
    return paths


def paper_comparison(df: pd.DataFrame, profile: Profile, tables: Sequence[str] = ()) -> str:
    """The run's numbers beside the paper's, with the differences, when the profile names a paper setting.

    Args:
        df: the run's results rows.
        profile: the run's profile (``figures.paper_table`` selects the paper's setting).
        tables: keep only stored paper tables whose name starts with one of these (``"table1"``).

    Returns:
        The comparison as text, or a sentence saying why there is nothing to compare.
    """
    from .figures.paper import compare_with_paper, format_comparison

    key = profile.figures.paper_table
    if key is None:
        return (f"The {profile.name} profile has no counterpart among the paper's tables (figures.paper_table is "
                "not set): nothing to compare.")
    comparison = compare_with_paper(df, key)
    if tables:
        comparison = comparison[comparison["table"].str.startswith(tuple(tables))].reset_index(drop=True)
    return format_comparison(comparison, key)
