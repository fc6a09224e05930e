"""Task 3 of the assignment and the second assignment (choosing α without shift data), with their checks.

- :func:`losing_shifts`: the shifts on which the run's fine-tuned model is *worse* than zero-shot, the ones where
  WiSE-FT's robustness story shows (in ``mini``: handwritten digits and rotations);
- :func:`plot_sweep`: the student's curves beside wiseft's, in %, one panel per dataset plus the shift average;
- :func:`check_task3`: the best α on the reference and under shift, and the datasets where θ_0.5 beats the
  straight line between the endpoints' accuracies, checked against the student's own (verified) sweep;
- :func:`check_alpha_choice`: assignment 2, α chosen on the reference's held-out split, not on the shifts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .course_checks import CourseError, as_sweep, report_lines

log = logging.getLogger(__name__)

__all__ = ["losing_shifts", "plot_sweep", "Task3Check", "check_task3", "AlphaChoiceCheck", "check_alpha_choice"]

#: Two shifts to prefer when they lose under fine-tuning (the mini world's clearest cases).
PREFERRED_SHIFTS = ("world-handwritten", "world-rotation")


def losing_shifts(results: pd.DataFrame, n: int = 2, mode: str = "e2e",
                  prefer: Sequence[str] = PREFERRED_SHIFTS) -> list[str]:
    """Up to ``n`` shifts on which the fine-tuned model (``mode``) scores below the zero-shot model.

    ``prefer`` ones come first when they lose; then the others, largest loss first. When no shift loses, the
    profile's first ``n`` shifts (with a warning); a profile without shifts gives an empty list.

    Raises:
        CourseError: when the run has no zero-shot or fine-tuned results yet.
    """
    from .figures import data as D

    st = D.settings_table(results)
    zs, ft = D.zeroshot_point(st), D.finetuned_point(st, mode)
    if zs is None or ft is None:
        raise CourseError(f"the run has no zero-shot and fine-tuned ({mode}) results yet; run notebooks 01 to 04")
    losses = {s: float(ft[s] - zs[s]) for s in st.attrs["shifts"] if ft[s] < zs[s]}
    order = [s for s in prefer if s in losses] + sorted((s for s in losses if s not in prefer), key=losses.get)
    if not order:
        log.warning("no shift loses under fine-tuning in this run; using the profile's first %d shift(s)", n)
        order = list(st.attrs["shifts"])
    return order[:n]


def _wide(obj: Any, what: str, mode: str = "e2e") -> pd.DataFrame:
    return as_sweep(obj, mode, what).pivot_table(index="alpha", columns="dataset", values="value", sort=False)


def plot_sweep(student: Any, reference: Any, reference_set: str, shifts: Sequence[str]) -> Figure:
    """Your accuracy vs α beside wiseft's, in %: the reference, each shift, and the average over ``shifts``."""
    from .figures.data import display_name
    from .figures.style import COLORS, paper_style

    yours, theirs = _wide(student, "your results"), _wide(reference, "the reference results")
    for w in (yours, theirs):
        present = [s for s in shifts if s in w.columns]
        w["avg shifts"] = w[present].mean(axis=1) if len(present) == len(shifts) else np.nan
    panels = [reference_set, *shifts, "avg shifts"]
    with paper_style():
        fig = Figure(figsize=(3.4 * len(panels), 3.3))
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        for ax, d in zip(axes, panels):
            if d in theirs.columns:
                ax.plot(theirs.index, 100 * theirs[d], color=COLORS["wiseft_e2e"], linewidth=2.5, alpha=0.6,
                        label="wiseft's sweep")
            if d in yours.columns:
                ax.plot(yours.index, 100 * yours[d], color="black", linestyle="--", marker="o", markersize=3.5,
                        label="your sweep")
            ax.set_title("avg. over the shifts" if d == "avg shifts" else display_name(d))
            ax.set_xlabel("α")
            ax.set_ylabel("accuracy (%)")
        handles, labels = axes[0].get_legend_handles_labels()
        fig.tight_layout(rect=(0, 0.1, 1, 1))
        fig.legend(handles, labels, loc="lower center", ncol=2, frameon=False)
    return fig


@dataclass
class Task3Check:
    """The outcome of :func:`check_task3`; prints as the hint, then the detail."""

    ok: bool
    messages: list[str] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return report_lines("Your Task 3 answers agree with your sweep.", self.ok, "your Task 3 answers",
                            self.messages, self.hints)

    __repr__ = __str__


def _best(series: pd.Series, tol: float) -> set[float]:
    return {float(a) for a, v in series.items() if v >= series.max() - tol}


def check_task3(student: Any, *, best_alpha_reference: float, best_alpha_shifts: float,
                above_line: Sequence[str], reference_set: str, shifts: Sequence[str],
                tol: float = 0.001) -> Task3Check:
    """Check the Task 3 answers against the student's own sweep.

    Args:
        student: the sweep of Task 2 (``{alpha: {dataset: accuracy}}`` or a frame).
        best_alpha_reference: the α with the highest reference accuracy.
        best_alpha_shifts: the α with the highest *average* accuracy over ``shifts`` (not checked when the
            profile has no shifts).
        above_line: the datasets on which θ at α = 0.5 scores above (acc(θ_0) + acc(θ_1)) / 2.
        tol: accuracies within ``tol`` of the best count as tied.
    """
    from .figures.data import display_name

    w = _wide(student, "your results")
    missing = [d for d in (reference_set, *shifts) if d not in w.columns]
    if missing or not {0.0, 0.5, 1.0} <= set(w.index):
        raise CourseError(f"your sweep needs α = 0, 0.5 and 1 on {', '.join((reference_set, *shifts))}; "
                          f"it lacks {', '.join(missing) or 'one of those α'} (finish Task 2 first)")
    messages, hints = [], []
    ref_best = _best(w[reference_set], tol)
    if round(float(best_alpha_reference), 4) not in {round(a, 4) for a in ref_best}:
        messages.append(f"best α on {display_name(reference_set)}: you said {best_alpha_reference:g}, your sweep peaks "
                        f"at α = {', '.join(f'{a:g}' for a in sorted(ref_best))}.")
    shift_best = _best(w[list(shifts)].mean(axis=1), tol) if shifts else set()
    if shifts and round(float(best_alpha_shifts), 4) not in {round(a, 4) for a in shift_best}:
        messages.append(f"best α under shift: you said {best_alpha_shifts:g}, the average over the shifts peaks at "
                        f"α = {', '.join(f'{a:g}' for a in sorted(shift_best))}.")
        singles = {s: _best(w[s], tol) for s in shifts}
        if any(round(float(best_alpha_shifts), 4) in {round(a, 4) for a in b} for b in singles.values()):
            hints.append("you took the best α of one shift; the question asks for the best α of their average.")
    line = {d: w.loc[0.5, d] - (w.loc[0.0, d] + w.loc[1.0, d]) / 2 for d in (reference_set, *shifts)}
    truly_above = {d for d, g in line.items() if g > 0}
    said = set(above_line)
    for d in sorted(truly_above - said):
        messages.append(f"{display_name(d)}: θ_0.5 is {100 * line[d]:+.1f} pp above the line, but you left it out.")
    for d in sorted(said - truly_above):
        messages.append(f"{display_name(d)}: θ_0.5 is {100 * line.get(d, np.nan):+.1f} pp from the line, not above it.")
    if said != truly_above:
        hints.append("compare θ_0.5's accuracy with (acc(θ_0) + acc(θ_1)) / 2 on each dataset: the line is the "
                     "average of the endpoints' accuracies, not the better endpoint.")
    if messages and not hints:
        hints.append("read the answers off your own sweep (the table above): the check uses your numbers.")
    return Task3Check(not messages, messages, hints)


@dataclass
class AlphaChoiceCheck:
    """The outcome of :func:`check_alpha_choice`; ``summary`` compares the held-out α with α = 0.5 and the
    optimum under shift (which needs the shift data the choice may not use)."""

    ok: bool
    messages: list[str] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)
    summary: pd.DataFrame = field(default_factory=pd.DataFrame)

    def __str__(self) -> str:
        table = self.summary.to_string() if len(self.summary) else ""
        head = report_lines("Right: that is the α the held-out split picks.", self.ok, "your α", self.messages,
                            self.hints)
        return head + ("\n\n" + table if table else "")

    __repr__ = __str__


def check_alpha_choice(alpha: float, results: pd.DataFrame, *, mode: str = "e2e", tol: float = 0.0
                       ) -> AlphaChoiceCheck:
    """Assignment 2: is ``alpha`` the α that maximises the held-out split's accuracy (smallest on ties)?

    Args:
        alpha: the student's choice.
        results: the run's results rows (``wiseft.notebook.run_results(ctx)``).
        mode: the fine-tuning mode whose sweep is used.
        tol: held-out values within ``tol`` of the best count as tied (the smallest tied α wins).
    """
    from .baselines.select_alpha import select_alpha_from_results
    from .figures import data as D

    sweep = results[(results["method"] == "wiseft") & (results["mode"] == mode)]
    choice = select_alpha_from_results(sweep, mode=mode, tol=tol)
    st = D.settings_table(results)
    curve = D.sweep(st, mode)
    shift_alpha, _ = D.optimal_alpha(curve, D.AVG_SHIFTS)
    ref = st.attrs["reference"]

    def row(a: float) -> dict:
        hit = curve[np.isclose(curve["alpha"], a)]
        get = (lambda c: round(100 * float(hit[c].iloc[0]), 1) if len(hit) else np.nan)  # noqa: E731
        return {"α": a, f"{D.display_name(ref)} (%)": get(ref), "avg shifts (%)": get(D.AVG_SHIFTS)}

    summary = pd.DataFrame({"held-out choice": row(choice.alpha), "paper default": row(0.5),
                            "best under shift (uses shift data)": row(shift_alpha)}).T
    messages, hints = [], []
    if not np.isclose(float(alpha), choice.alpha):
        messages.append(f"you chose α = {float(alpha):g}; the held-out split ({choice.dataset}) is best at "
                        f"α = {choice.alpha:g}.")
        if np.isclose(float(alpha), shift_alpha):
            hints.append("you chose the α that is best under shift: that uses the shift data, which the setting "
                         "forbids (it is Table 1's optimal α). Choose on the held-out split only.")
        elif np.isclose(float(alpha), 0.5):
            hints.append("0.5 is the paper's default, not a choice made on data: pick the α with the highest "
                         "held-out accuracy.")
        else:
            hints.append("take the α whose held-out accuracy is highest (rows with role 'heldout'); on ties, "
                         "the smallest such α.")
    return AlphaChoiceCheck(not messages, messages, hints, summary)
