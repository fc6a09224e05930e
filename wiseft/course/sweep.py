"""Check a student's α sweep (per-α accuracies) against wiseft's own sweep of the run, and name the mistake.

:func:`check_sweep` compares every (α, dataset) number and reads the pattern of differences. The hints, most
specific first: the numbers equal wiseft's at 1 − α (α reversed); they lie on the straight line between the
endpoints' accuracies (accuracies averaged instead of weights); they do not move with α (θ_α never loaded); one end
is right and the other is not (only part of the network mixed, e.g. only the head); an end is wrong (wrong
checkpoint); only the mixtures are wrong.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .report import Check, CourseError

__all__ = ["as_sweep", "check_sweep"]

_VALUE_COLUMNS = ("value", "accuracy", "acc", "top1")

HINT_REVERSED = ("your numbers equal wiseft's at 1 − α: the mixing is reversed. WiSE-FT is "
                 "θ_α = (1 − α)·θ₀ + α·θ₁, so α = 0 is the zero-shot model and α = 1 the fine-tuned one.")
HINT_AVERAGED = ("your numbers lie on the straight line between the endpoints' accuracies: you averaged the two "
                 "models' accuracies instead of evaluating one model with the averaged weights θ_α.")
HINT_NOT_LOADED = ("your accuracy does not change with α: load each θ_α into the model "
                   "(model.load_state_dict(theta)) before you evaluate it.")
HINT_PARTIAL = ("α = {good} is right but α = {bad} is not {name}: at α = {bad} part of your network still holds "
                "θ{keep}'s weights — did you mix only some tensors (e.g. only the classification head head.*, "
                "keeping the image encoder of one end)? Mix every key of the state dict.")
HINT_ENDS = ("{which} should reproduce the endpoint exactly: check which checkpoints you load as θ₀ (zero-shot) and "
             "θ₁ (fine-tuned), and which evaluation sets you score.")
HINT_MIXTURES = ("the endpoints are right but the mixtures are not: use the same α for every tensor, and mix only "
                 "floating-point tensors.")


def as_sweep(obj: Any, mode: str = "e2e", what: str = "your results") -> pd.DataFrame:
    """``alpha, dataset, value`` (fractions) from a results frame, a long or wide frame, or a mapping.

    Accepts ``{alpha: {dataset: accuracy}}``, a DataFrame with ``alpha`` and either ``dataset`` + a value column
    (``value``, ``accuracy``, ``acc``, ``top1``) or one column per dataset, or a wiseft results store (its
    ``wiseft`` rows of ``mode``). Percentages are turned into fractions.

    Raises:
        CourseError: naming ``what`` and the columns it has, when the shape is none of those.
    """
    if isinstance(obj, Mapping):
        recs = []
        for alpha, v in obj.items():
            items = v.items() if isinstance(v, Mapping) else [("reference", v)]
            recs += [dict(alpha=float(alpha), dataset=str(d), value=float(x)) for d, x in items]
        frame = pd.DataFrame(recs, columns=["alpha", "dataset", "value"])
    elif isinstance(obj, pd.DataFrame):
        frame = obj.copy()
        if "method" in frame.columns:  # a wiseft results store
            from ..figures.data import primary_metrics

            metrics = primary_metrics(frame)
            frame = frame[(frame["method"] == "wiseft") & (frame["mode"] == mode)]
            frame = frame[frame["metric"] == frame["dataset"].map(metrics)]
        if "alpha" not in frame.columns:
            raise CourseError(f"{what}: expected a column 'alpha', got columns {list(frame.columns)}")
        if "dataset" in frame.columns:
            col = next((c for c in _VALUE_COLUMNS if c in frame.columns), None)
            if col is None:
                raise CourseError(f"{what}: expected a value column ({', '.join(_VALUE_COLUMNS)}), "
                                  f"got columns {list(frame.columns)}")
            frame = frame[["alpha", "dataset", col]].rename(columns={col: "value"})
        else:  # wide: one column per dataset
            frame = frame.melt(id_vars="alpha", var_name="dataset", value_name="value")
    else:
        raise CourseError(f"{what}: expected a DataFrame or a mapping alpha -> {{dataset: accuracy}}, "
                          f"got {type(obj).__name__}")
    frame["alpha"] = pd.to_numeric(frame["alpha"], errors="coerce").round(4)
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce")
    frame = frame.dropna(subset=["alpha", "value"])
    if len(frame) and frame["value"].max() > 1.0:  # percentages
        frame["value"] = frame["value"] / 100.0
    return frame.drop_duplicates(subset=["alpha", "dataset"], keep="last").reset_index(drop=True)


def _all_close(yours: np.ndarray, expected: np.ndarray, tol: float) -> bool:
    known = ~np.isnan(expected)
    return bool(known.sum() >= 2) and bool(np.all(np.abs(yours[known] - expected[known]) <= tol))


def _diagnose(t: pd.DataFrame, ref: pd.DataFrame, tol: float) -> list[str]:
    """The likely mistakes behind the differences in ``t``, the most specific first."""
    bad = t["diff"].abs() > tol
    if not bad.any():
        return []
    wide = ref.pivot_table(index="alpha", columns="dataset", values="value")

    def at(a: float, d: str) -> float:
        return wide.loc[a, d] if a in wide.index and d in wide.columns else np.nan

    yours = t["yours"].to_numpy()
    flipped = np.array([at(round(1 - a, 4), d) for a, d in zip(t["alpha"], t["dataset"])])
    line = np.array([(1 - a) * at(0.0, d) + a * at(1.0, d) for a, d in zip(t["alpha"], t["dataset"])])
    mid = ((t["alpha"] > 0) & (t["alpha"] < 1)).to_numpy()
    hints = []
    if _all_close(yours, flipped, tol) and bad[t["alpha"] != 0.5].any():
        hints.append(HINT_REVERSED)
    elif mid.any() and _all_close(yours, line, tol):
        hints.append(HINT_AVERAGED)
    elif (t.loc[mid, "alpha"].nunique() >= 2
          and t[mid].groupby("dataset")["yours"].agg(lambda v: v.max() - v.min()).le(tol).all()):
        hints.append(HINT_NOT_LOADED)
    end_bad = {a: bool(bad[t["alpha"] == a].any()) for a in (0.0, 1.0) if (t["alpha"] == a).any()}
    if not hints and len(end_bad) == 2 and end_bad[0.0] != end_bad[1.0] and bad[mid].any():
        good, wrong = (0.0, 1.0) if end_bad[1.0] else (1.0, 0.0)
        name = "the fine-tuned model" if wrong == 1.0 else "the zero-shot model"
        hints.append(HINT_PARTIAL.format(good=f"{good:g}", bad=f"{wrong:g}", name=name,
                                         keep="₀" if wrong == 1.0 else "₁"))
    elif not hints and any(end_bad.values()):
        names = {0.0: "α = 0 (the zero-shot model)", 1.0: "α = 1 (the fine-tuned model)"}
        hints.append(HINT_ENDS.format(which=" and ".join(names[a] for a, b in end_bad.items() if b)))
    elif not hints:
        hints.append(HINT_MIXTURES)
    return hints


def check_sweep(student_results: Any, reference_results: Any, tol: float = 0.005, *, mode: str = "e2e",
                datasets: Sequence[str] | None = None) -> Check:
    """Compare a student's per-α accuracies with wiseft's and explain the differences in words.

    Args:
        student_results: ``{alpha: {dataset: accuracy}}``, or a DataFrame (see :func:`as_sweep`). Fractions or %.
        reference_results: wiseft's numbers: a results-store DataFrame (the ``wiseft`` rows of ``mode`` are
            used) or the same shapes as ``student_results``.
        tol: allowed absolute difference, as a fraction (0.005 = 0.5 pp).
        mode: ``e2e`` or ``lc``, when ``reference_results`` is a results store.
        datasets: restrict the check to these datasets.

    Returns:
        A :class:`~wiseft.course.report.Check` with ``table`` = ``alpha, dataset, yours, wiseft, diff``
        (fractions).

    Example:
        >>> check_sweep({0.0: {"ref": 0.5}, 1.0: {"ref": 0.8}}, {0.0: {"ref": 0.5}, 1.0: {"ref": 0.8}}).ok
        True
    """
    from ..figures.data import display_name

    yours = as_sweep(student_results, mode, "your results")
    ref = as_sweep(reference_results, mode, "the reference results")
    if datasets is not None:
        yours, ref = yours[yours["dataset"].isin(datasets)], ref[ref["dataset"].isin(datasets)]
    if ref.empty:
        raise CourseError("the reference results hold no WiSE-FT sweep to compare with; run wiseft's interpolate "
                          "step first")
    messages: list[str] = []
    hints: list[str] = []
    absent = [d for d in dict.fromkeys(ref["dataset"]) if d not in set(yours["dataset"])]
    if absent and not set(yours["dataset"]) & set(ref["dataset"]):
        hints.append("none of your dataset names match wiseft's (" + ", ".join(dict.fromkeys(ref["dataset"]))
                     + "); key your results by each set's name, s.name.")
    messages += [f"{display_name(d)}: your results have no numbers for this dataset." for d in absent]
    missing_alpha = sorted(set(ref["alpha"]) - set(yours["alpha"]))
    if missing_alpha:
        messages.append("your sweep has no numbers at α = " + ", ".join(f"{a:g}" for a in missing_alpha) + ".")
    t = ref.merge(yours, on=["alpha", "dataset"], suffixes=("_ref", "_yours"))
    t = t.rename(columns={"value_ref": "wiseft", "value_yours": "yours"})
    t["diff"] = t["yours"] - t["wiseft"]
    t = t.sort_values(["alpha", "dataset"], kind="stable").reset_index(drop=True)
    off = t[t["diff"].abs() > tol]
    for r in off.itertuples():
        messages.append(f"α={r.alpha:.2f}: your {display_name(r.dataset)} accuracy {100 * r.yours:.1f}% differs from "
                        f"wiseft's {100 * r.wiseft:.1f}% ({100 * r.diff:+.1f} pp).")
    if len(t):
        hints += _diagnose(t, ref, tol)
    ok = not messages and len(t) > 0
    summary = (f"{len(off)} of {len(t)} numbers differ from wiseft's by more than {100 * tol:.1f} pp"
               + (f"; {len(messages) - len(off)} other problem(s)" if len(messages) > len(off) else "") + ":")
    return Check(ok=ok, passed=f"All {len(t)} numbers match wiseft's within {100 * tol:.1f} pp. Your interpolation "
                               "and sweep are right.",
                 summary=summary, messages=messages, hints=hints,
                 table=t[["alpha", "dataset", "yours", "wiseft", "diff"]])
