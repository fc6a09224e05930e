"""The look of the paper's figures: colours, markers, logit-scaled axes with percent ticks.

Every figure function draws inside :func:`paper_style`, so notebooks and the pipeline produce the same look
without touching global matplotlib state.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import matplotlib
import numpy as np
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

from ..errors import WiseftError
from ..robustness import fit_logit_line, inv_logit, logit

__all__ = ["COLORS", "MARKERS", "PALETTE", "MARKER_CYCLE", "series_look", "paper_style", "logit_axes", "draw_fit",
           "draw_diagonal", "alpha_marker_kw", "legend_outside"]

#: One colour per series kind, close to the paper's Fig. 1 (purple zero-shot, pink/orange WiSE-FT curves).
COLORS = {
    "zeroshot": "#6a3d9a",
    "finetuned_e2e": "#e31a1c",
    "finetuned_lc": "#ff7f00",
    "wiseft_e2e": "#e7298a",
    "wiseft_lc": "#f4a582",
    "ose": "#1f78b4",
    "ose_prob": "#a6cee3",
    "fisher": "#33a02c",
    "baseline": "#1f78b4",
    "standard": "#4d4d4d",
    "diagonal": "#9e9e9e",
    "linear": "#7f7f7f",
}
MARKERS = {"zeroshot": "*", "finetuned": "D", "alpha05": "o", "baseline": "s"}

#: Colours for the other series of a figure (baselines, variants, measures), distinct from each other and from
#: :data:`COLORS`' zero-shot purple and WiSE-FT pinks; paired with :data:`MARKER_CYCLE` so that two series never
#: look alike even in greyscale.
PALETTE = ("#1f78b4", "#33a02c", "#8c510a", "#17becf", "#000000", "#b8860b", "#7570b3", "#66a61e", "#a6761d",
           "#525252", "#01665e", "#c51b7d")
MARKER_CYCLE = ("s", "^", "v", "P", "X", "h", "<", ">", "p", "d", "8", "H")


def series_look(i: int) -> tuple[str, str]:
    """``(colour, marker)`` of the ``i``-th extra series of a figure; distinct for the first 144."""
    return PALETTE[i % len(PALETTE)], MARKER_CYCLE[(i + i // len(PALETTE)) % len(MARKER_CYCLE)]


def legend_outside(ax: Axes, **kw) -> None:
    """The axes' legend to the right of the axes, clear of the data."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                  fontsize=kw.pop("fontsize", 7), **kw)

#: logit axes have no 0% or 100%: such accuracies (every test image right, or none) are drawn this far inside,
#: i.e. at 99.95% and 0.05%, half an image of a 1000-image set (a continuity correction), not at 1e-6 from the
#: edge, which would stretch the axes over ten decades and hide the point.
PLOT_EDGE = 5e-4


def plottable(values) -> np.ndarray:
    """Accuracies (fractions) as drawn on logit axes: clipped to ``[PLOT_EDGE, 1 - PLOT_EDGE]``."""
    return np.clip(np.asarray(values, dtype=float), PLOT_EDGE, 1.0 - PLOT_EDGE)


_TICKS = np.array([0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999])


@contextlib.contextmanager
def paper_style() -> Iterator[None]:
    """Seaborn's white grid with the paper's font sizes, restored on exit."""
    rc = {"axes.titlesize": 11, "axes.labelsize": 10, "legend.fontsize": 8, "xtick.labelsize": 8,
          "ytick.labelsize": 8, "figure.dpi": 100, "savefig.bbox": "tight", "axes.spines.top": False,
          "axes.spines.right": False, "legend.frameon": True, "legend.framealpha": 0.9}
    with matplotlib.rc_context(), sns.axes_style("whitegrid"), sns.plotting_context("paper", rc=rc):
        matplotlib.rcParams.update(rc)
        yield


def _percent(value: float, _pos=None) -> str:
    return f"{100 * value:.4g}%"


def _ticks_for(lo: float, hi: float) -> list[float]:
    inside = [t for t in _TICKS if lo <= t <= hi]
    if len(inside) < 3:  # a narrow range (a zoom): use round percents instead
        step = 0.01 if hi - lo < 0.1 else 0.05
        inside = list(np.arange(np.ceil(lo / step) * step, hi + 1e-9, step))
    return [float(round(t, 4)) for t in inside]


def _limits(values: Sequence[float], pad: float = 0.25) -> tuple[float, float]:
    z = logit(plottable([v for v in values if np.isfinite(v)]))
    if z.size == 0:
        return 0.05, 0.95
    lo, hi = float(z.min()), float(z.max())
    span = max(hi - lo, 0.4)
    return float(inv_logit(lo - pad * span)), float(inv_logit(hi + pad * span))


def logit_axes(ax: Axes, xs: Sequence[float], ys: Sequence[float], xlabel: str, ylabel: str,
               square: bool = False, diagonal_share: float = 0.0) -> None:
    """Logit-scale both axes around the data, with ticks labelled in percent (as in the paper).

    Args:
        xs, ys: every plotted value (fractions), used to choose the limits.
        square: use the same limits on both axes.
        diagonal_share: stretch the y range until y = x crosses at least this share of the x range (0.3: the
            line is visible over a third of the panel even when every model lies far below it).
    """
    xlim, ylim = _limits(xs), _limits(ys)
    if square:
        lo, hi = min(xlim[0], ylim[0]), max(xlim[1], ylim[1])
        xlim = ylim = (lo, hi)
    elif diagonal_share > 0:
        zx0, zx1 = float(logit(xlim[0])), float(logit(xlim[1]))
        zy0, zy1 = float(logit(ylim[0])), float(logit(ylim[1]))
        want_hi = zx0 + diagonal_share * (zx1 - zx0)   # models below y = x: raise the top
        want_lo = zx1 - diagonal_share * (zx1 - zx0)   # models above y = x: lower the bottom
        if zy1 < want_hi and zy0 < zx0:
            ylim = (ylim[0], float(inv_logit(want_hi)))
        elif zy0 > want_lo and zy1 > zx1:
            ylim = (float(inv_logit(want_lo)), ylim[1])
    for axis, lim, setter in ((ax.xaxis, xlim, ax.set_xlim), (ax.yaxis, ylim, ax.set_ylim)):
        scale = ax.set_xscale if axis is ax.xaxis else ax.set_yscale
        scale("logit")
        setter(*lim)
        axis.set_major_locator(FixedLocator(_ticks_for(*lim)))
        axis.set_major_formatter(FuncFormatter(_percent))
        axis.set_minor_formatter(NullFormatter())
        setattr(axis, "_wiseft_prune_ticks", True)  # wiseft.figures.layout.finalize thins colliding labels
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


def draw_fit(ax: Axes, ref: Sequence[float], shift: Sequence[float], label: str, color: str,
             linestyle: str = "-") -> tuple[float, float] | None:
    """Draw the least-squares line of ``shift`` on ``ref`` in logit space across the axes' x range.

    Returns:
        ``(slope, intercept)`` of the fit, or ``None`` (and nothing drawn) with fewer than two distinct points.
    """
    try:
        fit = fit_logit_line(np.asarray(ref, dtype=float), np.asarray(shift, dtype=float))
    except WiseftError:  # fewer than two models, or all at one reference accuracy: no line to draw
        return None
    slope, intercept = fit.slope, fit.intercept
    lo, hi = ax.get_xlim()
    z = np.linspace(logit(lo), logit(hi), 200)
    ax.plot(inv_logit(z), inv_logit(slope * z + intercept), color=color, linestyle=linestyle,
            linewidth=1.2, label=label, zorder=1)
    return slope, intercept


def draw_diagonal(ax: Axes) -> None:
    """The y = x line (on logit axes it stays straight), across the whole axes where it passes through them."""
    lo = min(ax.get_xlim()[0], ax.get_ylim()[0])
    hi = max(ax.get_xlim()[1], ax.get_ylim()[1])
    xlim, ylim = ax.get_xlim(), ax.get_ylim()
    if lo < hi:
        z = np.linspace(logit(lo), logit(hi), 50)
        ax.plot(inv_logit(z), inv_logit(z), color=COLORS["diagonal"], linestyle=":", linewidth=1.2,
                label="y = x", zorder=0)
        ax.set_xlim(xlim)
        ax.set_ylim(ylim)


def alpha_marker_kw(color: str) -> dict:
    """Marker style of the α = 0.5 point on a WiSE-FT curve."""
    return dict(marker=MARKERS["alpha05"], s=55, facecolor="white", edgecolor=color, linewidth=1.8, zorder=5)
