"""The assignment's checks: each compares a student's work with wiseft's and says what is off, hint first.

- :func:`check_interpolation`: θ_α as a state dict, or the student's ``interpolate(theta_0, theta_1, alpha)``
  function, tried at asymmetric α (0, 0.25, 0.5, 0.8, 1), so a reversed mixing cannot hide at α = 0.5;
- :func:`check_sweep`: per-α accuracies against the run's sweep (:func:`reference_sweep`).

Every result prints as the most specific hint first, then at most :data:`MAX_DETAIL` lines of detail.
:func:`accuracy` scores a model on one evaluation set. Task 3 and the second assignment are checked in
:mod:`wiseft.course_tasks`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from .errors import WiseftError

__all__ = ["CourseError", "MAX_DETAIL", "SweepCheck", "check_sweep", "InterpolationCheck", "check_interpolation",
           "accuracy", "reference_sweep", "CHECK_ALPHAS", "report_lines", "as_sweep"]

#: Lines of detail printed under the hint (the rest is summarised as "… and N more").
MAX_DETAIL = 5
#: α values at which a student's interpolation function is tried: asymmetric, so 1 − α ≠ α.
CHECK_ALPHAS = (0.0, 0.25, 0.5, 0.8, 1.0)


class CourseError(WiseftError, ValueError):
    """A malformed assignment notebook (unbalanced solution markers) or a failed check."""


def report_lines(ok_text: str, ok: bool, what: str, messages: Sequence[str], hints: Sequence[str]) -> str:
    """Hint first, then at most MAX_DETAIL lines of detail."""
    if ok:
        return ok_text
    lines = [f"Hint: {h}" for h in hints[:1]] + [f"{len(messages)} problem(s) with {what}:"]
    lines += [f"- {m}" for m in messages[:MAX_DETAIL]]
    if len(messages) > MAX_DETAIL:
        lines.append(f"- … and {len(messages) - MAX_DETAIL} more (see .table / .messages)")
    lines += [f"Also: {h}" for h in hints[1:2]]
    return "\n".join(lines)


@dataclass
class SweepCheck:
    """The outcome of :func:`check_sweep`; prints as the sentences a student reads.

    Attributes:
        ok: every number within tolerance and nothing missing.
        messages: one sentence per problem.
        hints: what the pattern of differences suggests.
        table: ``alpha, dataset, yours, wiseft, diff`` (fractions; diff in fraction points).
    """

    ok: bool
    messages: list[str] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)
    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    tol: float = 0.005

    def __str__(self) -> str:
        return report_lines(f"All {len(self.table)} numbers match wiseft's within {100 * self.tol:.1f} pp. "
                       "Your interpolation and sweep are right.", self.ok, "your sweep", self.messages, self.hints)

    __repr__ = __str__

    def raise_if_failed(self) -> None:
        """Raise :class:`CourseError` with the full explanation unless the check passed."""
        if not self.ok:
            raise CourseError(str(self))


_VALUE_COLUMNS = ("value", "accuracy", "acc", "top1")


def as_sweep(obj: Any, mode: str, what: str) -> pd.DataFrame:
    """``alpha, dataset, value`` (fractions) from a results frame, a long or wide frame, or a mapping."""
    if isinstance(obj, Mapping):
        recs = []
        for alpha, v in obj.items():
            items = v.items() if isinstance(v, Mapping) else [("reference", v)]
            recs += [dict(alpha=float(alpha), dataset=str(d), value=float(x)) for d, x in items]
        frame = pd.DataFrame(recs, columns=["alpha", "dataset", "value"])
    elif isinstance(obj, pd.DataFrame):
        frame = obj.copy()
        if "method" in frame.columns:  # a wiseft results store
            from .figures.data import primary_metrics

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


def _close(a: np.ndarray, b: np.ndarray, tol: float) -> bool:
    return bool(len(a)) and bool(np.all(np.abs(a - b) <= tol))


def _diagnose(t: pd.DataFrame, ref: pd.DataFrame, tol: float) -> list[str]:
    """Name the likely mistake from the pattern of differences."""
    hints = []
    wide_ref = ref.pivot_table(index="alpha", columns="dataset", values="value")
    bad = t[t["diff"].abs() > tol]
    if bad.empty:
        return hints
    ends = bad["alpha"].isin([0.0, 1.0])
    if ends.any():
        which = sorted(bad.loc[ends, "alpha"].unique())
        ends_named = {0.0: "α = 0 (the zero-shot model)", 1.0: "α = 1 (the fine-tuned model)"}
        names = " and ".join(ends_named[a] for a in which)
        hints.append(f"{names} should reproduce the endpoint exactly: check which weights you load as θ_zero-shot "
                     "and θ_fine-tuned, and that you evaluate with the matching head.")
    mid = t[(t["alpha"] > 0) & (t["alpha"] < 1)]
    if mid.empty:
        return hints
    flipped = np.array([wide_ref.loc[round(1 - a, 4), d] if round(1 - a, 4) in wide_ref.index else np.nan
                        for a, d in zip(mid["alpha"], mid["dataset"])])
    line = np.array([(1 - a) * wide_ref.loc[0.0, d] + a * wide_ref.loc[1.0, d]
                     if {0.0, 1.0} <= set(wide_ref.index) else np.nan for a, d in zip(mid["alpha"], mid["dataset"])])
    yours = mid["yours"].to_numpy()
    if not mid["diff"].abs().le(tol).all():
        if _close(yours[~np.isnan(flipped)], flipped[~np.isnan(flipped)], tol):
            hints.append("your numbers match wiseft's at 1 − α: the mixing is reversed. WiSE-FT is "
                         "θ_α = (1 − α)·θ_zero-shot + α·θ_fine-tuned, so α = 0 is the zero-shot model.")
        elif _close(yours[~np.isnan(line)], line[~np.isnan(line)], tol):
            hints.append("your numbers lie on the straight line between the endpoints' accuracies: you averaged "
                         "the accuracies instead of evaluating a model with averaged weights.")
        elif mid.groupby("dataset")["yours"].nunique().max() == 1:
            hints.append("your accuracy does not change with α: did you load the interpolated weights into the model "
                         "(model.load_state_dict(theta)) before evaluating?")
        elif not ends.any():
            hints.append("the endpoints are right but the mixtures are not: did you interpolate every parameter, "
                         "the classification head too (head.weight, head.bias), and only floating-point tensors?")
    return hints


def check_sweep(student_results: Any, reference_results: Any, tol: float = 0.005, *, mode: str = "e2e",
                datasets: Sequence[str] | None = None) -> SweepCheck:
    """Compare a student's per-α accuracies with wiseft's and explain every difference in words.

    Args:
        student_results: ``{alpha: {dataset: accuracy}}``, or a DataFrame with ``alpha`` and either
            ``dataset`` + ``value``/``accuracy`` columns or one column per dataset. Fractions or percent.
        reference_results: wiseft's numbers: a results-store DataFrame (the ``wiseft`` rows of ``mode`` are
            used) or the same shapes as ``student_results``.
        tol: allowed absolute difference, as a fraction (0.005 = 0.5 pp).
        mode: ``e2e`` or ``lc``, when ``reference_results`` is a results store.
        datasets: restrict the check to these datasets.

    Returns:
        A :class:`SweepCheck`; ``print`` it, or call ``raise_if_failed()``.

    Example:
        >>> check_sweep({0.0: {"ref": 0.5}, 1.0: {"ref": 0.8}}, {0.0: {"ref": 0.5}, 1.0: {"ref": 0.8}}).ok
        True
    """
    from .figures.data import display_name

    yours = as_sweep(student_results, mode, "your results")
    ref = as_sweep(reference_results, mode, "the reference results")
    if datasets is not None:
        yours, ref = yours[yours["dataset"].isin(datasets)], ref[ref["dataset"].isin(datasets)]
    if ref.empty:
        raise CourseError("the reference results hold no WiSE-FT sweep to compare with; run wiseft's interpolate "
                          "step first")
    messages: list[str] = []
    for d in [d for d in dict.fromkeys(ref["dataset"]) if d not in set(yours["dataset"])]:
        messages.append(f"{display_name(d)}: your results have no numbers for this dataset.")
    have = set(yours["dataset"])
    missing_alpha = sorted(set(ref["alpha"]) - set(yours["alpha"]))
    if missing_alpha:
        messages.append("your sweep has no numbers at α = " + ", ".join(f"{a:g}" for a in missing_alpha) + ".")
    t = ref.merge(yours, on=["alpha", "dataset"], suffixes=("_ref", "_yours"))
    t = t.rename(columns={"value_ref": "wiseft", "value_yours": "yours"})
    t["diff"] = t["yours"] - t["wiseft"]
    t = t.sort_values(["alpha", "dataset"], kind="stable").reset_index(drop=True)
    for r in t[t["diff"].abs() > tol].itertuples():
        messages.append(f"α={r.alpha:.2f}: your {display_name(r.dataset)} accuracy {100 * r.yours:.1f}% differs from "
                        f"wiseft's {100 * r.wiseft:.1f}% ({100 * r.diff:+.1f} pp).")
    hints = _diagnose(t, ref, tol) if len(t) else []
    if not have & set(ref["dataset"]):
        hints.append("none of your dataset names match wiseft's (" + ", ".join(dict.fromkeys(ref["dataset"]))
                     + "); use the registry names.")
    ok = not messages and len(t) > 0
    return SweepCheck(ok=ok, messages=messages, hints=hints,
                      table=t[["alpha", "dataset", "yours", "wiseft", "diff"]], tol=tol)


# ------------------------------------------------------------------------------------- assignment helpers
def accuracy(model: Any, eval_set: Any, *, device: Any = "cpu", batch_size: int = 256) -> float:
    """The primary metric (top-1 for most sets) of ``model`` on one :class:`~wiseft.datasets.EvalSet`, a fraction.

    Scores logits through the set's protocol, as wiseft's evaluation engine does, so the numbers compare with
    the run's results.
    """
    import torch

    model = model.to(device).eval()
    loader = torch.utils.data.DataLoader(eval_set.dataset, batch_size=batch_size, shuffle=False)
    preds, labels = [], []
    with torch.no_grad():
        for images, targets in loader:
            logits = eval_set.protocol.project_logits(model(images.to(device)))
            preds.append(logits.argmax(dim=-1).cpu().numpy())
            labels.append(np.asarray(targets).reshape(-1))
    metrics = eval_set.protocol.metrics(np.concatenate(preds), np.concatenate(labels), eval_set.metadata)
    return float(next(iter(metrics.values())))


def reference_sweep(ctx: Any, alphas: Sequence[float], datasets: Sequence[str], mode: str = "e2e") -> pd.DataFrame:
    """wiseft's own WiSE-FT rows of a run, at ``alphas`` on ``datasets``: what :func:`check_sweep` compares with.

    Raises:
        CourseError: when the run has no such sweep yet, saying which step produces it.
    """
    from .results import load_results

    frame = load_results(ctx.results_path)
    wanted = {round(float(a), 4) for a in alphas}
    if not frame.empty:
        frame = frame[(frame["method"] == "wiseft") & (frame["mode"] == mode) & frame["dataset"].isin(list(datasets))]
        frame = frame[frame["alpha"].round(4).isin(wanted)]
    if frame.empty:
        raise CourseError(f"{ctx.results_path} holds no WiSE-FT {mode} sweep on {', '.join(datasets)}; run the "
                          f"pipeline first: wiseft run --profile {ctx.profile.name} (or its notebooks 01 to 04)")
    return frame.reset_index(drop=True)


@dataclass
class InterpolationCheck:
    """The outcome of :func:`check_interpolation`; prints as the hint, then the detail."""

    ok: bool
    messages: list[str] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)
    alphas: tuple[float, ...] = ()

    def __str__(self) -> str:
        tried = f" at α = {', '.join(f'{a:g}' for a in self.alphas)}" if self.alphas else ""
        return report_lines(f"Your θ_α matches wiseft's interpolation in every tensor{tried}.", self.ok, "your θ_α",
                       self.messages, self.hints)

    __repr__ = __str__


def _compare_theta(theta: Any, theta_0: Mapping[str, Any], theta_1: Mapping[str, Any], alpha: float,
                   tol: float) -> tuple[list[str], list[str]]:
    """(messages, hints) for one θ_α; the hints name the likely mistake, most specific first."""
    import torch

    from .interpolation import interpolate_state_dicts

    at = f"α = {alpha:g}: "
    if not isinstance(theta, Mapping):
        return [f"{at}expected a dict of tensors like theta_0, got {type(theta).__name__}"], []
    expected = interpolate_state_dicts(theta_0, theta_1, alpha)
    messages, hints, wrong = [], [], []
    missing = [k for k in expected if k not in theta]
    if missing:
        messages.append(f"{at}{len(missing)} tensor(s) missing, e.g. {missing[0]!r}")
        hints.append("interpolate every entry of the state dict: the image encoder and the head")
    extra = [k for k in theta if k not in expected]
    if extra:
        messages.append(f"{at}{len(extra)} unexpected key(s), e.g. {extra[0]!r}")
    for key, want in expected.items():
        if key not in theta:
            continue
        got = torch.as_tensor(theta[key])
        if got.shape != want.shape:
            messages.append(f"{at}{key}: shape {tuple(got.shape)}, expected {tuple(want.shape)}")
        elif not torch.allclose(got.double(), want.double(), atol=tol, rtol=1e-5):
            wrong.append(key)
    if wrong:
        messages.append(f"{at}{len(wrong)} of {len(expected)} tensors differ from (1 − α)·θ_0 + α·θ_1, "
                        f"e.g. {wrong[0]!r}")
        flipped = interpolate_state_dicts(theta_0, theta_1, 1 - alpha)
        copies = [k for k in wrong if any(torch.equal(torch.as_tensor(theta[k]), end[k]) for end in (theta_0, theta_1))]
        if all(torch.allclose(torch.as_tensor(theta[k]).double(), flipped[k].double(), atol=tol) for k in wrong):
            hints.append("the mixing is reversed: your θ at α equals wiseft's at 1 − α. WiSE-FT is "
                         "θ_α = (1 − α)·θ_0 + α·θ_1, so α = 0 must give θ_0 (zero-shot) and α = 1 θ_1 (fine-tuned).")
        elif len(copies) == len(wrong):
            mixed = [k for k in expected if k not in wrong and k in theta]
            head_only = mixed and all(k.startswith(("head", "classification_head", "fc")) for k in mixed) and \
                any(k.startswith(("head", "classification_head", "fc")) for k in expected)
            hints.append("only the head was mixed: the image encoder's tensors (e.g. " + repr(wrong[0]) + ") are "
                         "copies of one endpoint. WiSE-FT mixes every parameter, encoder and head."
                         if head_only else f"{len(copies)} tensors (e.g. {copies[0]!r}) are copies of one endpoint: "
                         "mix every key, not only some.")
    return messages, hints


def check_interpolation(theta: Mapping[str, Any] | Callable[..., Any], theta_0: Mapping[str, Any],
                        theta_1: Mapping[str, Any], alpha: float | None = None,
                        tol: float = 1e-5) -> InterpolationCheck:
    """Compare a student's θ_α with wiseft's :func:`~wiseft.interpolation.interpolate_state_dicts`.

    Args:
        theta: the student's interpolated state dict (at ``alpha``), or their function
            ``interpolate(theta_0, theta_1, alpha)``, which is then tried at every α of :data:`CHECK_ALPHAS`
            (asymmetric values: a reversed mixing is invisible at α = 0.5 alone).
        theta_0, theta_1: the zero-shot and fine-tuned state dicts.
        alpha: the mixing coefficient of a state dict (ignored for a function).
        tol: allowed absolute difference per element.
    """
    if callable(theta) and not isinstance(theta, Mapping):
        messages, hints = [], []
        for a in CHECK_ALPHAS:
            try:
                got = theta(theta_0, theta_1, a)
            except Exception as e:  # noqa: BLE001 - the student's code: report its error as a finding
                messages.append(f"α = {a:g}: your function raised {type(e).__name__}: {e}")
                continue
            m, h = _compare_theta(got, theta_0, theta_1, a, tol)
            messages += m
            hints += [x for x in h if x not in hints]
        return InterpolationCheck(not messages, messages, hints, CHECK_ALPHAS)
    if alpha is None:
        raise CourseError("check_interpolation: give the α of your state dict (or pass your interpolate function)")
    messages, hints = _compare_theta(theta, theta_0, theta_1, alpha, tol)
    return InterpolationCheck(not messages, messages, hints, (alpha,))
