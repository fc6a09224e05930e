"""Generate, check and record the repository's notebooks.

The notebooks under ``notebooks/`` are built from :mod:`wiseft.pipeline.notebook_text`, so that every one has
the same structure: title and explanation, imports, one ``parameters`` cell (defaults: the ``mini`` profile), the
cell that opens the run, then short cells calling ``wiseft``. Figure and table notebooks share one template
driven by the figure registry (:func:`wiseft.figures.get_figure`).

Command line (from the repository root; ``python -m wiseft.pipeline ...`` is the same)::

    python -m wiseft.pipeline.notebooks make      # (re)write notebooks/ from the generator, keeping recorded
                                                  # outputs of cells whose code did not change; strip the course
    python -m wiseft.pipeline.notebooks check     # exit 1 when a notebook differs from the generator
    python -m wiseft.pipeline.notebooks record    # execute every notebook in place, in pipeline order, as nbval
                                                  # does (defaults = mini), so the outputs nbval checks are fresh

``record`` is what ``scripts/record_notebooks.sh`` runs, with the same environment as ``scripts/run_tests.sh``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from ..errors import PipelineError
from ..io import atomic_write_text
from . import notebook_text as T
from .steps import list_steps, get_step

log = logging.getLogger(__name__)

__all__ = ["COURSE_SOLVED", "COURSE_STUDENT", "COURSES", "notebook_paths", "build_notebook", "write_notebooks",
           "check_notebooks", "record_notebooks", "pipeline_rank", "main"]

COURSE_SOLVED = "course/wiseft_assignment_solved.ipynb"
COURSE_STUDENT = "course/wiseft_assignment.ipynb"
#: Every course assignment, solved copy -> students' copy (stripped), in the order nbval runs the solved ones.
COURSES = {COURSE_SOLVED: COURSE_STUDENT,
           "course/wiseft_choose_alpha_solved.ipynb": "course/wiseft_choose_alpha.ipynb"}
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def notebook_paths() -> list[str]:
    """Every generated notebook (relative to ``notebooks/``) in execution order: the steps, then the courses."""
    return [get_step(name).notebook for name in list_steps()] + list(COURSES)


def pipeline_rank(path: str | os.PathLike, notebooks_dir: str | os.PathLike) -> int:
    """Position of a notebook in execution order (pytest sorts nbval's items with it); unknown ones go last."""
    try:
        rel = Path(path).resolve().relative_to(Path(notebooks_dir).resolve()).as_posix()
    except ValueError:
        return len(notebook_paths()) + 1
    order = notebook_paths()
    return order.index(rel) if rel in order else len(order)


# -------------------------------------------------------------------------------------------- building
def _cells(rel: str) -> list[tuple[str, str]]:
    if rel in T.PIPELINE:
        return T.PIPELINE[rel]
    if rel in COURSES:
        return {COURSE_SOLVED: T.COURSE}.get(rel, T.COURSE_CHOOSE_ALPHA)
    if rel.startswith("figures/"):
        return _figure_cells(Path(rel).stem)
    raise PipelineError(f"no notebook text for {rel!r}; add it to wiseft/pipeline/notebook_text.py")


def _figure_cells(name: str) -> list[tuple[str, str]]:
    """The shared template of a figure or table notebook."""
    from ..figures import get_figure

    spec = get_figure(name)
    if name not in T.FIGURES:
        raise PipelineError(f"no notebook text for figure {name!r}; add it to notebook_text.FIGURES")
    text, draw_args = T.FIGURES[name]
    step = get_step(name)
    suite = " It is drawn once over every member of a suite profile." if spec.scope == "suite" else ""
    kind = "figure" if spec.kind == "figure" else "table"
    written = ("`figures/{0}.png` and `.pdf`" if kind == "figure" else "`figures/{0}.md` and `.csv`").format(name)
    intro = (f"# {spec.paper} · {spec.title}\n\n{text}\n\nThis notebook reads the run's "
             f"{'diversity analyses (`analyses.csv`)' if spec.source == 'analyses' else 'results (`results.jsonl`)'}, "
             f"writes {written}, and shows the {kind} below. When the profile's data cannot feed it, the notebook "
             f"says what is missing and stops without drawing anything.{suite} "
             f"(Pipeline step `{step.name}`, after `{'`, `'.join(step.depends)}`.)")
    load = "df = load_analyses(ctx.dir)" if spec.source == "analyses" else "df = run_results(ctx)"
    figures = ["get_figure", "load_analyses" if spec.source == "analyses" else None,
               "alpha_explorer" if name == "fig1" else None,
               "save_figure" if kind == "figure" else "save_table" if name != "sweep_table" else None]
    helpers = ["describe_run", "open_run", "stop_if", "show" if kind == "figure" else "markdown",
               "describe_written" if kind != "figure" else None,
               "paper_comparison" if name in T.PAPER_TABLES else None,
               "run_results" if spec.source != "analyses" else None, "save_tables" if name == "sweep_table" else None]
    imports = ("from wiseft.check import check_run\n" if name == "table1" else "") + (
               f"from wiseft.figures import {', '.join(sorted(n for n in figures if n))}\n"
               "from wiseft.figures.claims import what_this_run_shows\n"
               f"from wiseft.notebook import {', '.join(sorted(n for n in helpers if n))}")
    cells: list[tuple[str, str]] = [
        ("md", intro), ("md", T.PARAMETERS_NOTE), ("code", imports), ("params", T.PARAMETERS), ("code", T.OPEN_RUN),
        ("code", f"spec = get_figure({name!r})\n{load}"),
        ("md", "Can the run's data feed it? If not, the reason is printed and the remaining cells are skipped."),
        ("code", f"{T.CHECK}\nstop_if(spec.requires(df))"),
    ]
    if kind == "figure":
        cells += [("code", f"fig = spec.draw(df{', ' + draw_args if draw_args else ''})\n"
                           "save_figure(fig, ctx.figures_dir, spec.name, formats=ctx.profile.figures.formats)\n"
                           "show(fig)")]
        if name == "fig1":  # its α explorer follows the drawing
            cells += [("md", "**Explore α.** In JupyterLab, the slider below moves along the WiSE-FT curve and shows "
                             "every dataset's accuracy at that α beside the two ends, from the run's sweep (no "
                             "retraining). Batch executions print one line instead."),
                      ("code", "alpha_explorer(df).show()")]
    elif name == "sweep_table":
        cells += [("code", "e2e = spec.draw(df, mode='e2e')\nlc = spec.draw(df, mode='lc')"),
                  ("code", f"{T.CHECK}\nprint(markdown(e2e, title='WiSE-FT sweep, E2E (%)'))"),
                  ("code", f"{T.CHECK}\nprint(markdown(lc, title='WiSE-FT sweep, LC (%)'))"),
                  ("md", "Written as `sweep_table_e2e` and `sweep_table_lc` (a mode the profile does not fine-tune "
                         "is left out)."),
                  ("code", "print(describe_written(save_tables(ctx.figures_dir, {'sweep_table_e2e': e2e, "
                           "'sweep_table_lc': lc}, title=spec.paper + ': ' + spec.title)))")]
    else:
        cells += [("code", "table = spec.draw(df)"),
                  ("code", f"{T.CHECK}\nprint(markdown(table, title=spec.paper + ' (%)'))"),
                  ("code", "print(describe_written(save_table(table, ctx.figures_dir, spec.name, "
                           "title=f'{spec.paper}: {spec.title} (%)')))")]
    if name == "table1":
        cells += [("md", T.CHECK_RUN_NOTE), ("code", T.CHECK_RUN)]
    if name in T.PAPER_TABLES:
        cells += [("md", "Beside the paper: when the profile matches a setting of the paper (`figures.paper_table`), "
                         "the run's numbers, the paper's in brackets, and the difference in pp."),
                  ("code", f"{T.CHECK}\nprint(paper_comparison(df, ctx.profile, {T.PAPER_TABLES[name]!r}))")]
    cells += [("md", T.WHAT_THIS_RUN_SHOWS),
              ("code", f"{T.CHECK}\nprint(what_this_run_shows(df, spec.name))")]
    return cells


def build_notebook(rel: str) -> Any:
    """The notebook ``rel`` (a path relative to ``notebooks/``) as the generator writes it, without outputs."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    for kind, source in _cells(rel):
        if kind == "md":
            nb.cells.append(nbformat.v4.new_markdown_cell(source))
        elif kind == "params":
            nb.cells.append(nbformat.v4.new_code_cell(source, metadata={"tags": ["parameters"]}))
        else:
            nb.cells.append(nbformat.v4.new_code_cell(source))
    for i, cell in enumerate(nb.cells):  # stable ids keep diffs of regenerated notebooks small
        cell["id"] = f"{Path(rel).stem.replace('_', '-')[:40]}-{i:02d}"
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def _signature(nb: Any) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(c.cell_type, c.source, tuple(c.get("metadata", {}).get("tags", []))) for c in nb.cells]


def _keep_outputs(new: Any, old: Any) -> None:
    """Copy recorded outputs from ``old`` into ``new`` for code cells whose source is unchanged."""
    old_code = {c.source: c for c in old.cells if c.cell_type == "code"}
    for cell in new.cells:
        if cell.cell_type == "code" and cell.source in old_code:
            cell.outputs = old_code[cell.source].get("outputs", [])
            cell.execution_count = old_code[cell.source].get("execution_count")


def _write(nb: Any, path: Path) -> None:
    import nbformat

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, nbformat.writes(nb) + "\n")


def write_notebooks(notebooks_dir: str | os.PathLike, only: Sequence[str] | None = None) -> list[Path]:
    """Write the generated notebooks (keeping recorded outputs of unchanged cells) and the students' copy."""
    import nbformat

    folder = Path(notebooks_dir)
    written = []
    for rel in notebook_paths():
        if only and rel not in only and Path(rel).stem not in only:
            continue
        path = folder / rel
        nb = build_notebook(rel)
        if path.is_file():
            old = nbformat.read(path, as_version=4)
            if _signature(old) == _signature(nb):
                continue
            _keep_outputs(nb, old)
        _write(nb, path)
        written.append(path)
    written += _write_student_copy(folder)
    return written


def _write_student_copy(folder: Path) -> list[Path]:
    """Strip every solved course notebook into its students' copy (when that copy is out of date)."""
    import nbformat

    from ..course import strip_notebook

    written = []
    for solved_rel, student_rel in COURSES.items():
        solved, student = folder / solved_rel, folder / student_rel
        if not solved.is_file():
            continue
        stripped = strip_notebook(nbformat.read(solved, as_version=4))
        stripped.metadata.pop("widgets", None)
        if student.is_file() and _signature(nbformat.read(student, as_version=4)) == _signature(stripped):
            continue
        _write(stripped, student)
        written.append(student)
    return written


def check_notebooks(notebooks_dir: str | os.PathLike) -> list[str]:
    """What differs between ``notebooks_dir`` and the generator (cell types, sources, tags); empty when none."""
    import nbformat

    from ..course import strip_notebook

    folder = Path(notebooks_dir)
    problems = []
    for rel in notebook_paths():
        path = folder / rel
        if not path.is_file():
            problems.append(f"{rel}: missing")
            continue
        got, want = _signature(nbformat.read(path, as_version=4)), _signature(build_notebook(rel))
        if got != want:
            first = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
            problems.append(f"{rel}: differs from the generator from cell {first + 1} on")
    for solved_rel, student_rel in COURSES.items():
        solved, student = folder / solved_rel, folder / student_rel
        if solved.is_file():
            want = _signature(strip_notebook(nbformat.read(solved, as_version=4)))
            if not student.is_file() or _signature(nbformat.read(student, as_version=4)) != want:
                problems.append(f"{student_rel}: not the stripped copy of {solved_rel}")
    return problems


# -------------------------------------------------------------------------------------------- recording
def record_notebooks(notebooks_dir: str | os.PathLike, only: Sequence[str] | None = None, *,
                     kernel_name: str | None = None, timeout: int | None = None) -> list[Path]:
    """Execute each notebook in place, in pipeline order, the way nbval runs it; write its outputs back.

    The kernel starts in the notebook's folder with the parameters cell's defaults (the ``mini`` profile, run
    folder ``runs/mini`` of the repository), exactly as ``pytest --nbval-lax notebooks`` will. A failing cell
    stops the recording with the notebook's name; notebooks recorded before it keep their new outputs.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    from .execute import kernel_env, resolve_kernel
    from .kernels import EncryptedAsyncKernelManager

    folder = Path(notebooks_dir).resolve()
    kernel = resolve_kernel(kernel_name)
    done = []
    for rel in notebook_paths():
        if only and rel not in only and Path(rel).stem not in only:
            continue
        path = folder / rel
        nb = nbformat.read(path, as_version=4)
        started = time.time()
        client = NotebookClient(nb, kernel_name=kernel, timeout=timeout, record_timing=False,
                                resources={"metadata": {"path": str(path.parent)}},
                                kernel_manager_class=EncryptedAsyncKernelManager)
        try:
            with kernel_env():
                client.execute()
        except CellExecutionError as e:
            raise PipelineError(f"recording {rel} failed: {e.ename}: {e.evalue} (the notebooks recorded before it "
                                "keep their new outputs; fix the cause and rerun with --only)") from e
        _write(nb, path)
        done.append(path)
        log.info("recorded %s in %.0f s", rel, time.time() - started)
    _write_student_copy(folder)
    return done


# -------------------------------------------------------------------------------------------- CLI
def main(argv: Sequence[str] | None = None) -> int:
    """``python -m wiseft.pipeline.notebooks make|check|record [--notebooks DIR] [--only NAME ...]``."""
    from .runner import default_notebooks_dir

    parser = argparse.ArgumentParser(prog="python -m wiseft.pipeline.notebooks",
                                     description="Generate, check and record the repository's notebooks.")
    parser.add_argument("command", choices=["make", "check", "record"])
    parser.add_argument("--notebooks", default=None, help="the notebooks folder (default: the repository's)")
    parser.add_argument("--only", nargs="+", default=None, metavar="NAME",
                        help="only these notebooks (step names such as fig1, or paths relative to notebooks/)")
    parser.add_argument("--kernel", default=None, help="Jupyter kernel for record (default: $WISEFT_KERNEL or python3)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.command == "record" else logging.WARNING, format="%(message)s")
    folder = Path(args.notebooks) if args.notebooks else default_notebooks_dir()
    only = None
    if args.only:  # step names -> notebook paths
        steps = set(list_steps())
        only = [get_step(n).notebook if n in steps else n for n in args.only]
    try:
        if args.command == "make":
            for path in write_notebooks(folder, only):
                print(f"wrote {path}")
        elif args.command == "check":
            problems = check_notebooks(folder)
            for p in problems:
                print(p)
            if problems:
                print("Regenerate with: python -m wiseft.pipeline.notebooks make", file=sys.stderr)
                return 1
            print(f"{len(notebook_paths()) + len(COURSES)} notebooks match the generator")
        else:
            for path in record_notebooks(folder, only, kernel_name=args.kernel):
                print(f"recorded {path}")
    except PipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
