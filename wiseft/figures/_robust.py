"""Logit-space helpers for the effective-robustness plots.

The library's home for these is :mod:`wiseft.robustness`; when it is importable its functions are used. Until
it lands, this module carries minimal private equivalents with the same signatures, so figure code is written
against one API: ``logit(p)``, ``inverse_logit(z)``, ``fit_linear_logit(ref, shift) -> (slope, intercept)``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["logit", "inverse_logit", "fit_linear_logit"]

# Accuracies of exactly 0 or 1 have no logit; clip them just inside (0, 1) so plots and fits stay finite.
_EPS = 1e-6

try:  # pragma: no cover - exercised once wiseft.robustness exists
    from ..robustness import fit_linear_logit, inverse_logit, logit  # type: ignore[attr-defined]
except ImportError:

    def logit(p):
        """``log(p / (1 - p))`` of accuracies given as fractions, clipped to (1e-6, 1 - 1e-6)."""
        p = np.clip(np.asarray(p, dtype=float), _EPS, 1.0 - _EPS)
        return np.log(p) - np.log1p(-p)

    def inverse_logit(z):
        """The sigmoid, mapping logit-space values back to fractions."""
        return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=float)))

    def fit_linear_logit(ref, shift) -> tuple[float, float]:
        """Least-squares line ``logit(shift) = slope * logit(ref) + intercept``.

        Raises:
            ValueError: with fewer than two points or when every reference accuracy is the same.
        """
        x, y = logit(ref), logit(shift)
        if x.size < 2 or np.allclose(x, x[0]):
            raise ValueError("a linear fit in logit space needs at least two points with different reference accuracy")
        slope, intercept = np.polyfit(x, y, 1)
        return float(slope), float(intercept)
