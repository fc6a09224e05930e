"""Choosing the mixing coefficient α without any shifted data.

The paper's "optimal α" picks α per table column on the very set it reports (Table 1 caption), which a user
cannot do for a shift they have not seen. The paper's answer is a default, α = 0.5, and its App. B shows the
optimum is only 0–0.4 pp better on average. The kit offers one more principled choice that needs no shifted
data: the α that maximises accuracy on a **held-out validation split of the reference set** (rows with
``role="heldout"`` in the results store), reported beside α = 0.5.

Tie rule: among the αs whose held-out value is within ``tol`` of the best (exact ties by default), the
*smallest* α wins. Why: on the reference distribution the WiSE-FT curve is flat near its top (e.g. ViT-L/14@336
E2E ImageNet: 87.1 at both α = 0.6 and 0.7, paper Table 4), while under shift accuracy peaks at a smaller α
(α ≈ 0.3–0.4 for the shift average in Tables 4–5) and falls steadily toward α = 1. Between αs the reference
split cannot tell apart, the one closer to the zero-shot model is therefore the one expected to be more robust.
Setting ``tol`` to about one binomial standard error, sqrt(p(1 − p)/n), extends the rule to differences the
held-out split is too small to resolve.

Example:
    >>> choice = select_alpha_from_results(load_results("runs/mini/results.jsonl"), mode="e2e")  # doctest: +SKIP
    >>> choice.alpha, choice.value, choice.default_alpha, choice.default_value                  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..errors import WiseftError

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_ALPHA", "AlphaChoice", "select_alpha", "select_alpha_from_results"]

#: The paper's recommendation when nothing else is known (Sec. 3; App. B).
DEFAULT_ALPHA = 0.5

#: Columns that identify one α curve in the results store; more than one curve left after filtering is ambiguous.
_CURVE_KEYS = ("run_id", "profile", "model", "pretrained", "mode", "dataset", "metric")


@dataclass(frozen=True)
class AlphaChoice:
    """The selected α with its held-out value, and the paper's default beside it.

    Attributes:
        alpha: the selected α.
        value: the held-out metric at ``alpha``.
        default_alpha: the paper's default (0.5).
        default_value: the held-out metric at ``default_alpha``, or ``None`` if that α was not evaluated.
        curve: the (α, value) pairs the choice was made from, sorted by α.
        tol: the tie tolerance used.
        metric: the metric's name (``top1`` …) when chosen from a results frame.
        dataset: the held-out set's name when chosen from a results frame.
        mode: ``e2e`` / ``lc`` when chosen from a results frame.
    """

    alpha: float
    value: float
    default_alpha: float
    default_value: float | None
    curve: tuple[tuple[float, float], ...]
    tol: float = 0.0
    metric: str | None = None
    dataset: str | None = None
    mode: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON (the curve as a list of pairs)."""
        d = asdict(self)
        d["curve"] = [list(p) for p in self.curve]
        return d


def select_alpha(alphas: Sequence[float], values: Sequence[float], *, tol: float = 0.0,
                 default_alpha: float = DEFAULT_ALPHA) -> AlphaChoice:
    """Pick α maximising ``values``; ties (within ``tol``) go to the smallest α (see the module docstring).

    Args:
        alphas: the evaluated α values, each in [0, 1], no duplicates.
        values: the held-out metric at each α (higher is better).
        tol: values ≥ best − tol count as tied; ≥ 0.
        default_alpha: reported beside the choice (the paper's 0.5).

    Raises:
        WiseftError: for empty or mismatched inputs, duplicate or out-of-range α, non-finite values, or tol < 0.
    """
    a = np.asarray(alphas, dtype=np.float64).ravel()
    v = np.asarray(values, dtype=np.float64).ravel()
    if a.size == 0 or a.size != v.size:
        raise WiseftError(f"select_alpha: need one value per alpha, got {a.size} alphas and {v.size} values")
    if not np.isfinite(v).all() or not np.isfinite(a).all():
        raise WiseftError("select_alpha: alphas and values must be finite")
    if (a < 0).any() or (a > 1).any():
        raise WiseftError(f"select_alpha: alphas must lie in [0, 1], got {sorted(a.tolist())}")
    if np.unique(a).size != a.size:
        raise WiseftError(f"select_alpha: duplicate alphas {sorted(a.tolist())}; filter the rows to one curve")
    if not (math.isfinite(tol) and tol >= 0):
        raise WiseftError(f"select_alpha: tol {tol!r} must be finite and >= 0")
    order = np.argsort(a)
    a, v = a[order], v[order]
    best = v.max()
    i = int(np.flatnonzero(v >= best - tol)[0])  # sorted by α, so the first tied entry is the smallest α
    near_default = np.flatnonzero(np.isclose(a, default_alpha, rtol=0.0, atol=1e-9))
    default_value = float(v[near_default[0]]) if near_default.size else None
    if default_value is None:
        log.warning("select_alpha: the default alpha %.2f was not evaluated; add it to the alpha grid", default_alpha)
    return AlphaChoice(alpha=float(a[i]), value=float(v[i]), default_alpha=float(default_alpha),
                       default_value=default_value, curve=tuple(zip(a.tolist(), v.tolist())), tol=float(tol))


def select_alpha_from_results(frame: pd.DataFrame, *, method: str = "wiseft", mode: str | None = None,
                              metric: str | None = None, dataset: str | None = None, run_id: str | None = None,
                              tol: float = 0.0, default_alpha: float = DEFAULT_ALPHA) -> AlphaChoice:
    """:func:`select_alpha` over the held-out rows of a results frame (schema: :mod:`wiseft.results`).

    Uses rows with ``role == "heldout"``, the given ``method`` and a non-null ``alpha``; the other arguments
    narrow the rows further. Exactly one curve (one run, model, mode, dataset and metric) must remain.

    Args:
        frame: rows as returned by :func:`wiseft.results.load_results`.
        method: the α-indexed method (``wiseft``; ``ose`` for output-space ensembles).
        mode: ``e2e`` or ``lc``.
        metric: e.g. ``top1``; needed when the held-out set reports several metrics.
        dataset: the held-out set's name.
        run_id: one run, when the frame holds several.
        tol, default_alpha: as in :func:`select_alpha`.

    Raises:
        WiseftError: if no held-out rows match, or if several curves remain (the message lists them and names
            the argument that separates them).
    """
    missing = [c for c in ("role", "method", "alpha", "value", *_CURVE_KEYS) if c not in frame.columns]
    if missing:
        raise WiseftError(f"select_alpha_from_results: the frame lacks the columns {missing}; load it with "
                          "wiseft.results.load_results")
    rows = frame[(frame["role"] == "heldout") & (frame["method"] == method) & frame["alpha"].notna()]
    for col, want in (("mode", mode), ("metric", metric), ("dataset", dataset), ("run_id", run_id)):
        if want is not None:
            rows = rows[rows[col] == want]
    if rows.empty:
        raise WiseftError(
            f"select_alpha_from_results: no rows with role='heldout', method={method!r}, mode={mode!r}, "
            f"metric={metric!r}, dataset={dataset!r}, run_id={run_id!r}; evaluate the alpha grid on the reference "
            "set's held-out split first")
    curves = rows[list(_CURVE_KEYS)].astype(str).drop_duplicates()
    if len(curves) > 1:
        varying = [c for c in _CURVE_KEYS if curves[c].nunique() > 1]
        listing = "; ".join(", ".join(f"{c}={r[c]}" for c in varying) for _, r in curves.head(6).iterrows())
        raise WiseftError(f"select_alpha_from_results: {len(curves)} curves match ({listing}); pick one by "
                          f"filtering on {', '.join(varying)} (arguments mode/metric/dataset/run_id, or filter "
                          "the frame)")
    choice = select_alpha(rows["alpha"].to_numpy(), rows["value"].to_numpy(), tol=tol, default_alpha=default_alpha)
    first = rows.iloc[0]
    return AlphaChoice(**{**asdict(choice), "curve": choice.curve, "metric": first["metric"],
                          "dataset": first["dataset"], "mode": first["mode"]})
