"""95% intervals on the plotted points and the effective-robustness line with its 95% band (Figs. 1, 7).

Points: each accuracy is a binomial proportion of ``n`` test images, so a single dataset gets the exact
Clopper–Pearson interval (:func:`wiseft.robustness.clopper_pearson`); an average over shifts gets the normal
interval of a mean of independent proportions. Line: least squares in logit space through the zero-shot models
(and any user-supplied zero-shot group), with the 95% confidence band of the fitted mean
(``t · s · sqrt(1/n + (x − x̄)² / Sxx)``), as in the effective-robustness literature; it needs three models, so a
run with fewer gets a visible note on the axes saying why there is no line.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from scipy import stats

from ..robustness import clopper_pearson, inv_logit, logit
from . import data as D
from .style import plottable

__all__ = ["MIN_FIT_MODELS", "point_intervals", "draw_errorbars", "draw_er_line", "no_line_note"]

#: Models needed for a fitted line with a confidence band (two points fit any line and leave no residual).
MIN_FIT_MODELS = 3


def _sizes(attrs: Mapping) -> dict[str, int]:
    return dict(attrs.get("n") or {})


def point_intervals(rows: pd.DataFrame, column: str, attrs: Mapping) -> tuple[np.ndarray, np.ndarray]:
    """``(low, high)`` 95% bounds (fractions) of ``rows[column]``; NaN where the sample sizes are unknown.

    ``column`` is a dataset (exact interval from its ``n``) or ``avg_shifts`` (normal interval of the mean of the
    shifts' proportions).
    """
    n = _sizes(attrs)
    values = rows[column].to_numpy(dtype=float)
    if column == D.AVG_SHIFTS:
        shifts = list(attrs.get("shifts") or [])
        if not shifts or any(not n.get(s) for s in shifts):
            return np.full_like(values, np.nan), np.full_like(values, np.nan)
        var = sum(rows[s].to_numpy(dtype=float) * (1 - rows[s].to_numpy(dtype=float)) / n[s] for s in shifts)
        half = 1.96 * np.sqrt(var) / len(shifts)
        return np.clip(values - half, 0, 1), np.clip(values + half, 0, 1)
    size = n.get(column)
    if not size:
        return np.full_like(values, np.nan), np.full_like(values, np.nan)
    k = np.clip(np.round(np.nan_to_num(values) * size), 0, size)
    low, high = clopper_pearson(k, np.full_like(k, size))
    return np.asarray(low, dtype=float), np.asarray(high, dtype=float)


def draw_errorbars(ax: Axes, x: np.ndarray, y: np.ndarray, ci: tuple[np.ndarray, ...] | None, color: str,
                   scale: float = 1.0) -> None:
    """Horizontal and vertical 95% bars through points (``ci = (x_low, x_high, y_low, y_high)``, fractions).

    ``scale`` multiplies everything (100 for axes in percent). Unknown bounds (NaN) draw no bar.
    """
    if ci is None or all(np.isnan(c).all() for c in ci):
        return
    xl, xh, yl, yh = (plottable(np.where(np.isnan(c), v, c)) for c, v in zip(ci, (x, x, y, y)))
    ax.errorbar(scale * x, scale * y, xerr=[scale * np.maximum(x - xl, 0), scale * np.maximum(xh - x, 0)],
                yerr=[scale * np.maximum(y - yl, 0), scale * np.maximum(yh - y, 0)], fmt="none", ecolor=color,
                elinewidth=0.9, capsize=2, alpha=0.8, zorder=3.5)


def no_line_note(n_models: int) -> str:
    """Why no effective-robustness line is drawn, for a reader of the figure."""
    return (f"no effective-robustness line: {n_models} zero-shot model{'s' if n_models != 1 else ''} "
            f"(a fit with a 95% band needs ≥{MIN_FIT_MODELS}; add figures.baseline_models)")


def draw_er_line(ax: Axes, ref: Sequence[float], shift: Sequence[float], label: str, color: str) -> str | None:
    """The logit-space fit of ``shift`` on ``ref`` across the axes, with its 95% band.

    Returns:
        ``None`` when drawn, else the note (:func:`no_line_note`) the caller shows instead.
    """
    x = np.asarray(logit(plottable(ref)), dtype=float)
    y = np.asarray(logit(plottable(shift)), dtype=float)
    if len(x) < MIN_FIT_MODELS or np.ptp(x) == 0:
        return no_line_note(len(x))
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (slope * x + intercept)
    s = math.sqrt(float(np.sum(resid ** 2)) / (len(x) - 2))
    sxx = float(np.sum((x - x.mean()) ** 2))
    lo, hi = ax.get_xlim()
    z = np.linspace(float(logit(lo)), float(logit(hi)), 200)
    fit = slope * z + intercept
    half = stats.t.ppf(0.975, len(x) - 2) * s * np.sqrt(1 / len(x) + (z - x.mean()) ** 2 / sxx)
    ax.fill_between(inv_logit(z), inv_logit(fit - half), inv_logit(fit + half), color=color,
                    alpha=0.15, linewidth=0, zorder=0.5)
    ax.plot(inv_logit(z), inv_logit(fit), color=color, linestyle="--", linewidth=1.3, zorder=1,
            label=f"{label} (95% band)")
    ax.set_xlim(lo, hi)
    return None
