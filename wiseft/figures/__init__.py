"""The paper's figures and tables, one function each, behind a small registry.

Each entry takes the results DataFrame of a run (``load_results(run / "results.jsonl")``; Fig. 5 takes the
analyses table instead) and returns a matplotlib Figure or, for tables, a DataFrame in percent. ``requires(df)``
says what the data lacks (``None`` when the entry can be drawn), so a notebook prints "this profile has no X;
skipping" and stops cleanly instead of faking a figure.

Example:
    >>> from wiseft.figures import get_figure, save_figure
    >>> spec = get_figure("fig1")
    >>> missing = spec.requires(df)                       # doctest: +SKIP
    >>> if missing is None:                               # doctest: +SKIP
    ...     save_figure(spec.draw(df), run.figures_dir, "fig1")
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import pandas as pd
from matplotlib.figure import Figure

from ..errors import WiseftError
from ..io import atomic_path, atomic_write_text, safe_name
from ..results import load_results
from . import baselines, curves, diversity, overview, scatter, tables
from .explorer import alpha_explorer

log = logging.getLogger(__name__)

__all__ = ["FigureSpec", "list_figures", "get_figure", "save_figure", "save_table", "load_run_results",
           "load_analyses", "alpha_explorer"]


@dataclass(frozen=True)
class FigureSpec:
    """One paper figure or table.

    Attributes:
        name: registry name and file stem (``fig1``, ``table1``).
        paper: the paper's label (``Fig. 1``).
        title: one line saying what it shows.
        kind: ``figure`` (draw returns a Figure) or ``table`` (a DataFrame in percent).
        draw: ``draw(df, **options)``.
        requires: ``requires(df) -> str | None``; the reason it cannot be drawn, or ``None``.
        source: ``results`` (the results rows) or ``analyses`` (the diversity analyses table, Fig. 5).
        scope: ``run`` (one profile's run) or ``suite`` (all members of a suite profile together).
        step: the pipeline step whose outputs it needs.
    """

    name: str
    paper: str
    title: str
    kind: Literal["figure", "table"]
    draw: Callable[..., Any]
    requires: Callable[[pd.DataFrame], str | None]
    source: Literal["results", "analyses"] = "results"
    scope: Literal["run", "suite"] = "run"
    step: str = "interpolate"


_SPECS = [
    FigureSpec("fig1", "Fig. 1", "Reference vs. average shift accuracy: zero-shot, fine-tuned, WiSE-FT", "figure",
               overview.fig1, scatter.requires_scatter),
    FigureSpec("fig3", "Fig. 3", "Fine-tuning variants (learning rate, epochs) and their WiSE-FT curves", "figure",
               baselines.fig3, baselines.requires_fig3),
    FigureSpec("fig5", "Fig. 5", "Diversity between the zero-shot and fine-tuned models, per dataset", "figure",
               diversity.fig5, diversity.requires_fig5, source="analyses", step="baselines"),
    FigureSpec("fig6", "Fig. 6", "Accuracy vs. α per dataset, with the line between the endpoints", "figure",
               curves.fig6, curves.requires_fig6),
    FigureSpec("fig7", "Fig. 7", "Each shift vs. the (class-subsampled) reference", "figure",
               scatter.fig7, scatter.requires_scatter),
    FigureSpec("fig9", "Fig. 9", "Further shifts: video, CIFAR-10.1/10.2, WILDS", "figure",
               scatter.fig9, scatter.requires_fig9),
    FigureSpec("fig10", "Fig. 10", "Weight-space vs. output-space ensembles", "figure",
               scatter.fig10, scatter.requires_fig10),
    FigureSpec("fig11", "Fig. 11", "Debiased EMA vs. WiSE-FT", "figure",
               baselines.fig11, baselines.requires_baselines(["ema"]), step="baselines"),
    FigureSpec("fig12", "Fig. 12", "EMA biased toward the zero-shot weights vs. WiSE-FT", "figure",
               baselines.fig12, baselines.requires_baselines(["ema_biased"]), step="baselines"),
    FigureSpec("fig13", "Fig. 13", "Baselines (random interpolation, ensembles, distillation, regularisation)",
               "figure", baselines.fig13,
               baselines.requires_baselines(["random_interp", "ose_prob", "distill", "lc_l2sp", "l2sp", "lpft"]),
               step="baselines"),
    FigureSpec("fig16", "Fig. 16", "Accuracy vs. α on the transfer datasets", "figure",
               curves.fig16, curves.requires_fig16, scope="suite"),
    FigureSpec("fig17", "Fig. 17", "Low-data regime: gains vs. examples per class", "figure",
               curves.fig17, curves.requires_fig17),
    FigureSpec("table1", "Table 1", "Zero-shot, fine-tuned and WiSE-FT (α = 0.5 and optimal α)", "table",
               tables.table1, tables.requires_table1),
    FigureSpec("sweep_table", "Tables 4, 5", "The full α sweep, E2E and LC", "table",
               tables.sweep_table, tables.requires_sweep_table),
    FigureSpec("table6", "Table 6", "Further shifts: zero-shot, fine-tuned, WiSE-FT", "table",
               tables.table6, scatter.requires_fig9),
    FigureSpec("table2", "Table 2", "Transfer datasets: fine-tuned vs. WiSE-FT", "table",
               tables.table2, curves.requires_fig16, scope="suite"),
]
_REGISTRY = {spec.name: spec for spec in _SPECS}


def list_figures(scope: str | None = None) -> list[str]:
    """Names of the registered figures and tables (optionally only those of one ``scope``)."""
    return [s.name for s in _SPECS if scope is None or s.scope == scope]


def get_figure(name: str) -> FigureSpec:
    """The entry called ``name``.

    Raises:
        WiseftError: listing the known names.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise WiseftError(f"unknown figure {name!r}; known figures and tables: {', '.join(_REGISTRY)}") from None


def save_figure(fig: Figure, figures_dir: str | os.PathLike, name: str,
                formats: Sequence[str] = ("png", "pdf"), dpi: int = 200) -> list[Path]:
    """Write ``fig`` as ``<figures_dir>/<name>.<fmt>`` for each format, each atomically; return the paths."""
    stem = safe_name(name, "figure name")
    paths = []
    for fmt in formats:
        path = Path(figures_dir) / f"{stem}.{safe_name(fmt, 'format')}"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight")
        paths.append(path)
        log.info("wrote %s", path)
    return paths


def save_table(table: pd.DataFrame, figures_dir: str | os.PathLike, name: str,
               formats: Sequence[str] = ("md", "csv"), title: str | None = None) -> list[Path]:
    """Write a table as Markdown (one decimal) and CSV (full precision), each atomically; return the paths."""
    stem = safe_name(name, "table name")
    paths = []
    for fmt in formats:
        path = Path(figures_dir) / f"{stem}.{fmt}"
        if fmt == "md":
            atomic_write_text(path, tables.to_markdown(table, title=title))
        elif fmt == "csv":
            atomic_write_text(path, table.to_csv())
        else:
            raise WiseftError(f"table format {fmt!r} is not supported; use md or csv")
        paths.append(path)
        log.info("wrote %s", path)
    return paths


def load_run_results(run_dir: str | os.PathLike, members: Sequence[str] = ()) -> pd.DataFrame:
    """The results of a run folder; for a suite, the rows of every member sub-folder concatenated.

    Args:
        run_dir: ``runs/<profile>``.
        members: names of the suite's member profiles (their runs live in ``<run_dir>/<member>/``).
    """
    run_dir = Path(run_dir)
    frames = [load_results(run_dir / "results.jsonl")]
    frames += [load_results(run_dir / safe_name(m, "profile name") / "results.jsonl") for m in members]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else load_results(run_dir / "results.jsonl")


def load_analyses(run_dir: str | os.PathLike) -> pd.DataFrame | None:
    """``<run_dir>/analyses.csv`` (the diversity analyses, see :func:`wiseft.figures.diversity.fig5`) or None."""
    path = Path(run_dir) / "analyses.csv"
    return pd.read_csv(path) if path.is_file() else None
