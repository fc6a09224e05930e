"""Assignment 2: choose α without shift data, then see what that choice gives under shift.

The student sweeps α on the reference's **held-out split** only, picks α by the rule of
:func:`wiseft.baselines.select_alpha.select_alpha` (the best held-out accuracy; αs within one binomial standard error
of it count as ties, and the smallest of them wins), then scores that α, the paper's default α = 0.5 and the two
endpoints on the reference test set and on every shift. :func:`check_choice` and :func:`check_outcome` compare with
wiseft's numbers of the run; :func:`plot_choice` draws the student's points on wiseft's reference-vs-shift curve.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from .report import Check
from .robustness import SHIFT_AVERAGE, finish_axes, shift_average_hint, wiseft_curves

__all__ = ["OUTCOME_ROWS", "heldout_choice", "check_choice", "check_outcome", "plot_choice"]

#: The rows of the student's outcome table, and the α each stands for (``None``: the held-out choice).
OUTCOME_ROWS = {"zero-shot": 0.0, "α = 0.5": 0.5, "held-out choice": None, "fine-tuned": 1.0}


def _curve(reference: pd.DataFrame, dataset: str) -> pd.Series:
    rows = reference[reference["dataset"] == dataset]
    return rows.groupby(rows["alpha"].round(4))["value"].mean().sort_index()


def heldout_choice(reference: pd.DataFrame, heldout: str, tol: float | None = None) -> Any:
    """wiseft's choice on the held-out rows of ``reference``: an :class:`~wiseft.baselines.select_alpha.AlphaChoice`.

    ``tol`` defaults to one binomial standard error of the best held-out accuracy, sqrt(p(1 − p)/n), with n the
    held-out set's size from the rows' ``n`` column.
    """
    from ..baselines.select_alpha import select_alpha

    curve = _curve(reference, heldout)
    if tol is None:
        p = float(curve.max())
        n = int(reference.loc[reference["dataset"] == heldout, "n"].max())
        tol = math.sqrt(p * (1 - p) / n)
    return select_alpha(curve.index.to_numpy(), curve.to_numpy(), tol=tol)


def check_choice(chosen: Any, reference: pd.DataFrame, heldout: str) -> Check:
    """Check the student's α chosen on the held-out split ``heldout`` against wiseft's rule, and name the mistake.

    Args:
        chosen: the student's α.
        reference: wiseft's rows of the held-out set, the reference test set and every shift (with ``role``, ``n``).
        heldout: the held-out set's name (``world-print:heldout``).
    """
    want = heldout_choice(reference, heldout)
    curve = _curve(reference, heldout)
    passed = (f"Right: α = {want.alpha:g} (held-out {100 * want.value:.1f}%; every α within one standard error, "
              f"{100 * want.tol:.1f} pp, of the best counts as a tie and the smallest wins).")
    try:
        alpha = float(chosen)
    except (TypeError, ValueError):
        return Check(False, summary=f"`chosen` must be a number, an α of your grid; got {type(chosen).__name__}.")
    if math.isclose(alpha, want.alpha, abs_tol=1e-6):
        return Check(True, passed=passed)
    ties = curve.index[curve >= curve.max() - want.tol]
    wc = wiseft_curves(reference)
    ref_name = next(iter(dict.fromkeys(reference.loc[reference["role"] == "reference", "dataset"])))
    candidates = [
        (alpha > 1, f"{alpha:g} is an accuracy, not an α: take the α where the held-out curve is highest."),
        (any(math.isclose(alpha, float(t)) for t in ties),
         f"α = {alpha:g} is one of the αs within one standard error ({100 * want.tol:.1f} pp) of the best held-out "
         f"accuracy ({', '.join(f'{a:g}' for a in ties)}): the split cannot tell them apart, so take the smallest — "
         "the one closest to the zero-shot model, which keeps more robustness."),
        (math.isclose(alpha, float(wc[SHIFT_AVERAGE].idxmax())),
         f"α = {alpha:g} is the best α on the shift average: you used shift data, which this task rules out. "
         "Choose on the held-out split only."),
        (math.isclose(alpha, float(wc[ref_name].idxmax())),
         f"α = {alpha:g} is the best α on the reference *test* set ({ref_name}): choose on the held-out split, "
         "which is not used for reporting."),
        (math.isclose(alpha, 0.5), "α = 0.5 is the paper's default, not a choice made on the held-out split."),
        (math.isclose(alpha, float(curve.idxmin())), f"α = {alpha:g} is where the held-out curve is lowest."),
    ]
    hint = next((h for hit, h in candidates if hit), None)
    at = f" (held-out {100 * curve.loc[round(alpha, 4)]:.1f}%)" if round(alpha, 4) in curve.index else ""
    return Check(False, summary=f"The rule gives α = {want.alpha:g} (held-out {100 * want.value:.1f}%); "
                                f"you chose α = {alpha:g}{at}.", hints=[hint] if hint else [])


def check_outcome(outcome: Any, chosen: float, reference: pd.DataFrame, tol: float = 0.5) -> Check:
    """Check the student's outcome table: rows :data:`OUTCOME_ROWS`, columns ``alpha``, the reference set, and
    :data:`SHIFT_AVERAGE`, in %; compared with wiseft's sweep at those α within ``tol`` pp."""
    wc = wiseft_curves(reference)
    ref_name = next(iter(dict.fromkeys(reference.loc[reference["role"] == "reference", "dataset"])))
    columns = ["alpha", ref_name, SHIFT_AVERAGE]
    if not isinstance(outcome, pd.DataFrame):
        return Check(False, summary=f"`outcome` must be a DataFrame, got {type(outcome).__name__}.")
    messages = [f"`outcome` has no row {r!r}." for r in OUTCOME_ROWS if r not in outcome.index]
    messages += [f"`outcome` has no column {c!r}." for c in columns if c not in outcome.columns]
    hints: list[str] = []
    if messages:
        return Check(False, summary=f"`outcome` needs the rows {list(OUTCOME_ROWS)} and the columns {columns}:",
                     messages=messages)
    mine = outcome.loc[list(OUTCOME_ROWS), columns].apply(pd.to_numeric, errors="coerce")
    if mine[[ref_name, SHIFT_AVERAGE]].max().max() <= 1.0:
        hints.append("your table is in fractions: multiply by 100, wiseft's numbers are in %.")
        mine[[ref_name, SHIFT_AVERAGE]] *= 100
    for row, alpha in OUTCOME_ROWS.items():
        want_alpha = float(chosen) if alpha is None else alpha
        got_alpha = round(float(mine.loc[row, "alpha"]), 4)
        if not math.isclose(got_alpha, want_alpha, abs_tol=1e-6):
            messages.append(f"{row}: α should be {want_alpha:g}, your table says {got_alpha:g}.")
            continue
        for col in (ref_name, SHIFT_AVERAGE):
            if got_alpha in wc.index and abs(mine.loc[row, col] - wc.loc[got_alpha, col]) > tol:
                messages.append(f"{row} (α={got_alpha:g}), {col}: yours {mine.loc[row, col]:.1f}%, wiseft's "
                                f"{wc.loc[got_alpha, col]:.1f}%.")
    avg_off = [m for m in messages if SHIFT_AVERAGE in m]
    if avg_off:
        alphas = sorted({round(float(a), 4) for a in mine["alpha"]} & set(wc.index))
        yours = pd.Series(mine.groupby(mine["alpha"].round(4))[SHIFT_AVERAGE].first().loc[alphas].to_numpy(),
                          index=alphas)
        hints.insert(0, shift_average_hint(yours, wc.loc[alphas], reference, [], tol))
    return Check(not messages and not hints, passed=f"Your outcome table matches wiseft's numbers within {tol:g} pp.",
                 summary=f"{len(messages)} number(s) in `outcome` differ from wiseft's:", messages=messages,
                 hints=hints, table=wc.loc[sorted({0.0, 0.5, 1.0, round(float(chosen), 4)} & set(wc.index)),
                                           [ref_name, SHIFT_AVERAGE]])


def plot_choice(outcome: pd.DataFrame, reference: pd.DataFrame, title: str = "") -> Any:
    """wiseft's WiSE-FT curve, reference accuracy against shift average (%), with the student's rows marked."""
    import matplotlib.pyplot as plt

    wc = wiseft_curves(reference)
    ref_name = next(iter(dict.fromkeys(reference.loc[reference["role"] == "reference", "dataset"])))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(wc[ref_name], wc[SHIFT_AVERAGE], "-", color="0.6", lw=2, label="WiSE-FT, α from 0 to 1 (wiseft)")
    for a in wc.index[:: max(1, len(wc) // 5)]:
        ax.annotate(f"α={a:g}", (wc.loc[a, ref_name], wc.loc[a, SHIFT_AVERAGE]), textcoords="offset points",
                    xytext=(0, -12), ha="center", fontsize=7, color="0.4")
    markers = dict(zip(OUTCOME_ROWS, ["s", "D", "*", "o"]))
    scale = 1.0 if outcome[[ref_name, SHIFT_AVERAGE]].max().max() > 1.0 else 100.0
    for i, (row, r) in enumerate(outcome.iterrows()):
        ax.plot(scale * r[ref_name], scale * r[SHIFT_AVERAGE], markers.get(row, "o"), ms=11 if row == "held-out "
                "choice" else 8, color=plt.get_cmap("tab10").colors[i % 10], ls="none",
                label=f"{row} (yours)" if "α" in str(row) else f"{row} (α = {r['alpha']:g}, yours)")
    return finish_axes(fig, ax, f"{ref_name}, reference test set: top-1 (%)", "average over the shifts: top-1 (%)",
                       title or "Choosing α without shift data")

