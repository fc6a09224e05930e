"""Effective robustness (Taori et al. 2020; paper Figs. 1, 7): logit axes, linear fits, intervals.

Accuracies on a reference distribution and on a shift lie roughly on a line once both are logit-transformed.
A fit of that line over a set of models (e.g. standard ImageNet models, or CLIP zero-shot models) predicts
the shift accuracy expected from a reference accuracy; a model's *effective robustness* is how far its shift
accuracy lies above that prediction (in accuracy, not logit, units). 95% Clopper–Pearson intervals show the
sampling error of single points.

All accuracies are fractions in [0, 1].

Example:
    >>> fit = fit_logit_line([0.60, 0.70, 0.80], [0.45, 0.55, 0.66])
    >>> round(effective_robustness(0.75, 0.70, fit), 3) > 0
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .errors import WiseftError

__all__ = ["logit", "inv_logit", "LogitFit", "fit_logit_line", "effective_robustness", "clopper_pearson"]

#: Accuracies are clipped to [EPS, 1 − EPS] before the logit so that 0 % and 100 % stay finite.
EPS = 1e-6


def logit(p: float | Sequence[float] | np.ndarray) -> np.ndarray | float:
    """log(p / (1 − p)), with ``p`` clipped to [EPS, 1 − EPS]."""
    arr = np.clip(np.asarray(p, dtype=np.float64), EPS, 1.0 - EPS)
    out = np.log(arr) - np.log1p(-arr)
    return float(out) if out.ndim == 0 else out


def inv_logit(z: float | Sequence[float] | np.ndarray) -> np.ndarray | float:
    """The inverse of :func:`logit`: 1 / (1 + e^−z)."""
    out = 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))
    return float(out) if out.ndim == 0 else out


@dataclass(frozen=True)
class LogitFit:
    """logit(shift) ≈ slope · logit(reference) + intercept, fitted by least squares.

    Attributes:
        slope: slope in logit space.
        intercept: intercept in logit space.
        n: number of models in the fit.
        r2: coefficient of determination in logit space.
    """

    slope: float
    intercept: float
    n: int
    r2: float

    def predict(self, reference_acc: float | Sequence[float] | np.ndarray) -> np.ndarray | float:
        """Shift accuracy the fit expects at ``reference_acc``."""
        return inv_logit(self.slope * np.asarray(logit(reference_acc)) + self.intercept)


def fit_logit_line(reference_acc: Sequence[float], shift_acc: Sequence[float]) -> LogitFit:
    """Least-squares line through (logit reference, logit shift) accuracies of a set of models.

    Raises:
        WiseftError: fewer than two models, mismatched lengths, values outside [0, 1], or all reference
            accuracies equal.
    """
    x, y = np.asarray(reference_acc, dtype=np.float64), np.asarray(shift_acc, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise WiseftError(f"fit_logit_line: need two 1-D sequences of equal length; got shapes {x.shape}, {y.shape}")
    if x.size < 2:
        raise WiseftError(f"fit_logit_line: need at least two models; got {x.size}")
    for name, arr in (("reference", x), ("shift", y)):
        if np.any(~np.isfinite(arr)) or np.any((arr < 0) | (arr > 1)):
            raise WiseftError(f"fit_logit_line: {name} accuracies must be fractions in [0, 1]; got {arr.tolist()}")
    lx, ly = np.asarray(logit(x)), np.asarray(logit(y))
    if np.ptp(lx) == 0:
        raise WiseftError("fit_logit_line: all reference accuracies are equal; a line cannot be fitted")
    slope, intercept = np.polyfit(lx, ly, 1)
    residual = ly - (slope * lx + intercept)
    total = np.sum((ly - ly.mean()) ** 2)
    r2 = 1.0 - float(np.sum(residual ** 2) / total) if total > 0 else 1.0
    return LogitFit(slope=float(slope), intercept=float(intercept), n=int(x.size), r2=r2)


def effective_robustness(reference_acc: float | np.ndarray, shift_acc: float | np.ndarray, fit: LogitFit
                         ) -> float | np.ndarray:
    """ρ = shift accuracy − the fit's prediction at the reference accuracy (accuracy units)."""
    out = np.asarray(shift_acc, dtype=np.float64) - np.asarray(fit.predict(reference_acc))
    return float(out) if out.ndim == 0 else out


def clopper_pearson(k: int | np.ndarray, n: int | np.ndarray, confidence: float = 0.95
                    ) -> tuple[float, float] | tuple[np.ndarray, np.ndarray]:
    """Exact (Clopper–Pearson) binomial interval for ``k`` successes out of ``n``.

    Args:
        k: number correct (accuracy × n, rounded).
        n: number of examples.
        confidence: coverage, 0.95 for the paper's 95% intervals.

    Returns:
        ``(low, high)`` fractions; 0 and 1 at the edges.
    """
    from scipy.stats import beta

    k_arr, n_arr = np.asarray(k, dtype=np.float64), np.asarray(n, dtype=np.float64)
    if np.any(n_arr <= 0) or np.any(k_arr < 0) or np.any(k_arr > n_arr):
        raise WiseftError(f"clopper_pearson: need 0 ≤ k ≤ n and n > 0; got k={k}, n={n}")
    if not 0.0 < confidence < 1.0:
        raise WiseftError(f"clopper_pearson: confidence must be in (0, 1); got {confidence}")
    tail = (1.0 - confidence) / 2.0
    low = np.where(k_arr == 0, 0.0, beta.ppf(tail, np.maximum(k_arr, 1e-12), n_arr - k_arr + 1))
    high = np.where(k_arr == n_arr, 1.0, beta.ppf(1.0 - tail, k_arr + 1, np.maximum(n_arr - k_arr, 1e-12)))
    if low.ndim == 0:
        return float(low), float(high)
    return low, high
