"""Assignment 1, Task 3: the robustness curves, checked and drawn beside wiseft's.

The student turns the sweep into a table in % (rows α, one column per evaluation set) with a ``shift average``
column — the mean over *every* shift of the profile — and names the best α of the reference set, of the shifts
that fine-tuning hurts, and of the shift average. :func:`check_robustness` compares both with wiseft's numbers;
:func:`plot_sweep` draws the student's curves beside wiseft's.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .report import Check

__all__ = ["SHIFT_AVERAGE", "wiseft_curves", "check_robustness", "plot_sweep", "finish_axes"]

#: The column of the shift average in the student's table.
SHIFT_AVERAGE = "shift average"


def wiseft_curves(reference: pd.DataFrame) -> pd.DataFrame:
    """wiseft's sweep in % (rows α, one column per set, plus :data:`SHIFT_AVERAGE` over the ``shift`` rows)."""
    wide = 100 * reference.pivot_table(index="alpha", columns="dataset", values="value", sort=False)
    shifts = list(dict.fromkeys(reference.loc[reference["role"] == "shift", "dataset"]))
    wide[SHIFT_AVERAGE] = wide[shifts].mean(axis=1)
    wide.index = wide.index.round(4)
    return wide


def shift_average_hint(yours: pd.Series, ref: pd.DataFrame, reference: pd.DataFrame, shown: Sequence[str],
                       tol: float) -> str:
    """What the student's shift average ``yours`` (in %) equals instead of the mean over every shift."""
    roles = reference.drop_duplicates("dataset").set_index("dataset")["role"]
    shifts = [d for d in ref.columns if roles.get(d) == "shift"]
    ref_sets = [d for d in ref.columns if roles.get(d) == "reference"]
    candidates = [
        (ref[ref_sets + shifts].mean(axis=1), f"your average includes the reference set ({', '.join(ref_sets)}): "
                                              "average the shifts only."),
        (ref[list(shown)].mean(axis=1) if shown else None,
         f"you averaged only {' and '.join(shown)}: the shift average is the mean over all {len(shifts)} shifts."),
        (ref[shifts].mean(axis=1) / 100, "your shift average is in fractions: multiply it by 100."),
    ]
    for curve, hint in candidates:
        if curve is not None and np.allclose(yours.to_numpy(), curve.reindex(yours.index).to_numpy(), atol=tol):
            return hint
    return f"the shift average is the mean over every shift of the profile ({', '.join(shifts)}), at each α."


def check_robustness(table: Any, best: Any, reference: pd.DataFrame, shown: Sequence[str],
                     tol: float = 0.5) -> Check:
    """Check the student's table in % (with a ``shift average`` column) and best α per curve against wiseft's.

    Args:
        table: rows α, columns the evaluation sets' names and :data:`SHIFT_AVERAGE`, in %.
        best: ``{name: α}`` for the reference set, each of ``shown`` and :data:`SHIFT_AVERAGE`.
        reference: wiseft's rows of every set (:func:`~wiseft.course.evaluate.reference_sweep`).
        shown: the shifts the assignment looks at.
        tol: allowed difference in pp; an α whose accuracy lies within ``tol`` of the curve's best counts as best.
    """
    from ..figures.data import display_name

    ref = wiseft_curves(reference)
    ref_name = next(iter(dict.fromkeys(reference.loc[reference["role"] == "reference", "dataset"])))
    curves = [ref_name, *shown, SHIFT_AVERAGE]
    messages: list[str] = []
    hints: list[str] = []
    if not isinstance(table, pd.DataFrame):
        return Check(False, summary="`table` must be a DataFrame (rows α, columns the sets), got "
                                    f"{type(table).__name__}.")
    mine = table.copy()
    mine.index = pd.to_numeric(pd.Index(mine.index), errors="coerce").round(4)
    mine = mine.apply(pd.to_numeric, errors="coerce")
    if mine.max().max() <= 1.0:
        hints.append("your table is in fractions: multiply by 100, the plots and wiseft's tables are in %.")
        mine = 100 * mine
    common = [a for a in ref.index if a in mine.index]
    for name in curves:
        if name not in mine.columns:
            messages.append(f"your table has no column {name!r}.")
            continue
        diff = (mine.loc[common, name] - ref.loc[common, name]).abs()
        if (diff > tol).any():
            a = diff.idxmax()
            messages.append(f"{display_name(name)} at α={a:g}: yours {mine.loc[a, name]:.1f}%, wiseft's "
                            f"{ref.loc[a, name]:.1f}%.")
            if name == SHIFT_AVERAGE:
                yours = mine[SHIFT_AVERAGE].loc[common]
                hints.insert(0, shift_average_hint(yours, ref.loc[common],
                                              reference, shown, tol))
    if not isinstance(best, Mapping):
        best = {}
        messages.append("`best` must be a dict {name: α}.")
    for name in curves:
        if name not in best:
            messages.append(f"`best` has no entry {name!r}.")
            continue
        alpha, curve = float(best[name]), ref.loc[common, name] if common else ref[name]
        near = list(curve.index[curve >= curve.max() - tol])
        if round(alpha, 4) not in curve.index and round(alpha, 4) in mine.index and name in mine.columns:
            # an α wiseft did not evaluate (a coarser grid): judged by the student's own, already checked, numbers
            value = mine.loc[round(alpha, 4), name]
            if value >= max(curve.max(), mine[name].max()) - tol:
                near.append(alpha)
        if alpha > 1:
            hints.append(f"best[{name!r}] = {alpha:g} is an accuracy, not an α: take the α where the curve is "
                         "highest (idxmax), not the highest value (max).")
        elif not np.isclose(near, alpha).any():
            if np.isclose(alpha, curve.idxmin()):
                hints.append(f"best[{name!r}] = {alpha:g} is where that curve is lowest: use idxmax, not idxmin.")
            else:
                got = f" gives {curve.loc[round(alpha, 4)]:.1f}%" if round(alpha, 4) in curve.index else ""
                messages.append(f"{display_name(name)}: wiseft's best α is {curve.idxmax():g} "
                                f"({curve.max():.1f}%); your α = {alpha:g}{got}.")
    ok = not messages and not hints
    return Check(ok, passed=f"Your table and best α values match wiseft's ({len(curves)} curves, within {tol:g} pp).",
                 summary=f"{len(messages) + len(hints)} problem(s) with your table or best α values:",
                 messages=messages, hints=hints, table=ref[curves])


def plot_sweep(table: pd.DataFrame, reference: pd.DataFrame, columns: Sequence[str], title: str = "") -> Any:
    """The student's curves (thin, dots) over wiseft's (wide, pale), in %, one colour per set; the figure."""
    import matplotlib.pyplot as plt

    from ..figures.data import display_name

    ref = wiseft_curves(reference)
    mine = table if table.max().max() > 1.0 else 100 * table
    fig, ax = plt.subplots(figsize=(8, 4.5))
    colors = plt.get_cmap("tab10").colors
    for i, name in enumerate(columns):
        c = colors[i % len(colors)]
        ax.plot(ref.index, ref[name], "-", color=c, lw=6, alpha=0.25, solid_capstyle="round",
                label=f"{display_name(name)} (wiseft)")
        if name in mine.columns:
            ax.plot(mine.index, mine[name], "-o", color=c, lw=1.2, ms=4, label=f"{display_name(name)} (yours)")
    return finish_axes(fig, ax, "α   (0 = zero-shot θ₀, 1 = fine-tuned θ₁)", "top-1 accuracy (%)",
                       title or "WiSE-FT sweep: yours (dots) and wiseft's (wide pale lines)")


def finish_axes(fig: Any, ax: Any, xlabel: str, ylabel: str, title: str) -> Any:
    """Labels, a light grid and the legend outside the data, right of the axes; returns ``fig``."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    fig.tight_layout()
    return fig
