"""Making a drawn figure legible: point labels that avoid each other, tick labels that do not collide.

Figure functions *defer* their point labels (:func:`defer_label`) and call :func:`finalize` last: it lays the
figure out, drops tick labels that would touch their neighbours, and places each label at the first of a ring
of offsets around its point where it overlaps no other text, legend or marker and stays inside the axes.
Placement works in display space with the figure's own renderer, so what it avoids is what is drawn.

Example:
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> _ = ax.scatter([0.2, 0.21], [0.5, 0.5])
    >>> defer_label(ax, "λ=0.01", 0.2, 0.5); defer_label(ax, "λ=1", 0.21, 0.5)
    >>> finalize(fig)
    >>> len(ax.texts)
    2
"""

from __future__ import annotations

import itertools
from typing import Iterable

import numpy as np
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.ticker import FixedLocator
from matplotlib.transforms import Bbox

__all__ = ["defer_label", "finalize", "text_boxes", "data_points", "legend_boxes", "handle_key"]

_PENDING = "_wiseft_pending_labels"
#: Attribute set on an axis whose tick labels :func:`finalize` may thin out (percent ticks of logit axes).
PRUNE = "_wiseft_prune_ticks"
#: Offsets (points) tried around a point, nearest first: the four diagonals, then the sides, then further out.
_DIRECTIONS = [(1, 1), (1, -1), (-1, 1), (-1, -1), (1, 0), (-1, 0), (0, 1), (0, -1)]
_RADII = (5, 10, 16, 24, 34)


def defer_label(ax: Axes, text: str, x: float, y: float, color: str = "black", fontsize: float = 7) -> None:
    """Ask :func:`finalize` to label the point ``(x, y)`` (data coordinates) of ``ax`` with ``text``."""
    getattr(ax, _PENDING, None) or setattr(ax, _PENDING, [])
    getattr(ax, _PENDING).append((text, float(x), float(y), color, fontsize))


def _renderer(fig: Figure):
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def text_boxes(ax: Axes, renderer) -> list[tuple[str, Bbox]]:
    """``(description, display bbox)`` of every visible, non-empty text drawn by ``ax``.

    Tick labels (major ticks inside the view), axis labels, titles and the axes' texts and annotations.
    """
    out: list[tuple[str, Bbox]] = []
    for axis, name in ((ax.xaxis, "x tick"), (ax.yaxis, "y tick")):
        lo, hi = sorted(axis.get_view_interval())
        for tick in axis.get_major_ticks():
            label = tick.label1
            if label.get_visible() and label.get_text() and tick.get_visible() and lo <= tick.get_loc() <= hi:
                out.append((f"{name} {label.get_text()!r}", label.get_window_extent(renderer)))
    for label, name in ((ax.xaxis.label, "x label"), (ax.yaxis.label, "y label")):
        if label.get_visible() and label.get_text():
            out.append((f"{name} {label.get_text()!r}", label.get_window_extent(renderer)))
    for loc in ("left", "center", "right"):
        title = ax._left_title if loc == "left" else ax.title if loc == "center" else ax._right_title
        if title.get_visible() and title.get_text():
            out.append((f"title {title.get_text()!r}", title.get_window_extent(renderer)))
    for text in ax.texts:
        if text.get_visible() and text.get_text():
            out.append((f"text {text.get_text()!r}", text.get_window_extent(renderer)))
    return out


def legend_boxes(ax: Axes, renderer) -> list[tuple[str, Bbox]]:
    """The display bbox of the axes' legend, as a one-item list (empty without a legend)."""
    legend = ax.get_legend()
    return [("legend", legend.get_window_extent(renderer))] if legend is not None and legend.get_visible() else []


def data_points(ax: Axes) -> tuple[np.ndarray, list[Bbox]]:
    """Display coordinates of the data drawn in ``ax`` (scatter points, line vertices) and bar rectangles."""
    pts: list[np.ndarray] = []
    for coll in ax.collections:
        if isinstance(coll, PathCollection) and coll.get_visible() and len(coll.get_offsets()):
            pts.append(coll.get_offset_transform().transform(np.asarray(coll.get_offsets(), dtype=float)))
    for line in ax.lines:
        if line.get_visible():
            xy = np.asarray(line.get_xydata(), dtype=float)
            xy = xy[np.isfinite(xy).all(axis=1)] if xy.size else xy
            if len(xy):
                pts.append(line.get_transform().transform(xy))
    bars = [p.get_window_extent() for p in ax.patches
            if isinstance(p, Rectangle) and p.get_visible() and p.get_width() * p.get_height() != 0]
    points = np.concatenate(pts) if pts else np.empty((0, 2))
    inside = ax.bbox
    keep = ((points[:, 0] >= inside.x0) & (points[:, 0] <= inside.x1) & (points[:, 1] >= inside.y0)
            & (points[:, 1] <= inside.y1)) if len(points) else np.zeros(0, bool)
    return points[keep], bars


def _prune_ticks(axis: Axis, renderer, gap_points: float = 4.0) -> bool:
    """Drop tick labels (and their ticks) closer than ``gap_points`` to the previous kept one; True if any was."""
    if not getattr(axis, PRUNE, False):  # only numeric scales opt in; category labels each carry a name
        return False
    lo, hi = sorted(axis.get_view_interval())
    ticks = [t for t in axis.get_major_ticks() if lo <= t.get_loc() <= hi and t.label1.get_text()]
    ticks.sort(key=lambda t: t.get_loc())
    kept, last = [], None
    gap = gap_points * axis.get_figure(root=True).dpi / 72.0
    for tick in ticks:
        box = tick.label1.get_window_extent(renderer).expanded(1.0, 1.0)
        padded = Bbox.from_extents(box.x0 - gap, box.y0 - gap, box.x1 + gap, box.y1 + gap)
        if last is None or not padded.overlaps(last):
            kept.append(tick.get_loc())
            last = box
    if len(kept) == len(ticks):
        return False
    axis.set_major_locator(FixedLocator(kept))
    return True


def _place(ax: Axes, renderer, obstacles: list[Bbox], points: np.ndarray) -> None:
    pending = getattr(ax, _PENDING, None) or []
    setattr(ax, _PENDING, [])
    inside = ax.bbox
    for text, x, y, color, fontsize in pending:
        best, best_score = None, None
        for radius, (dx, dy) in itertools.product(_RADII, _DIRECTIONS):
            ann = ax.annotate(text, (x, y), textcoords="offset points", xytext=(dx * radius, dy * radius),
                              fontsize=fontsize, color=color, zorder=6,
                              ha="left" if dx > 0 else "right" if dx < 0 else "center",
                              va="bottom" if dy > 0 else "top" if dy < 0 else "center")
            box = ann.get_window_extent(renderer)
            out = not (inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1)
            hits = sum(box.overlaps(o) for o in obstacles)
            covered = int(((points[:, 0] > box.x0) & (points[:, 0] < box.x1) & (points[:, 1] > box.y0)
                           & (points[:, 1] < box.y1)).sum()) if len(points) else 0
            score = (100 * out + 10 * hits + covered, radius)
            if best_score is None or score < best_score:
                if best is not None:
                    best.remove()
                best, best_score = ann, score
            else:
                ann.remove()
            if score[0] == 0:
                break
        if best is not None:
            obstacles.append(best.get_window_extent(renderer))


def finalize(fig: Figure, axes: Iterable[Axes] | None = None) -> Figure:
    """Prune colliding tick labels and place deferred labels on every axes of ``fig``; return ``fig``."""
    renderer = _renderer(fig)
    axes = list(axes) if axes is not None else [ax for ax in fig.axes if ax.get_visible()]
    if any([_prune_ticks(axis, renderer) for ax in axes for axis in (ax.xaxis, ax.yaxis)]):
        renderer = _renderer(fig)
    for ax in axes:
        if getattr(ax, _PENDING, None):
            obstacles = [b for _, b in text_boxes(ax, renderer)] + [b for _, b in legend_boxes(ax, renderer)]
            points, _ = data_points(ax)
            _place(ax, renderer, obstacles, points)
    return fig


def _marker_path(marker):
    from matplotlib.markers import MarkerStyle

    style = MarkerStyle(marker)
    return style.get_path().transformed(style.get_transform())


def _shape(path) -> tuple:
    verts = np.asarray(path.vertices, dtype=float)
    scale = np.abs(verts).max() if verts.size else 1.0
    return tuple(np.round(verts / (scale or 1.0), 2).ravel())


def handle_key(handle) -> tuple:
    """What tells a legend entry apart: ``(kind, colour, marker shape, line style, hatch)``."""
    from matplotlib.colors import to_hex

    if isinstance(handle, Line2D):
        marker = handle.get_marker()
        shape = None if marker in (None, "None", "", " ") else _shape(_marker_path(marker))
        ls = handle.get_linestyle() if handle.get_linestyle() not in ("None", "", " ") else None
        if ls is None:  # a marker-only line looks like a scatter point: compare it as one
            return ("points", to_hex(handle.get_markerfacecolor()), shape, None, None)
        return ("line", to_hex(handle.get_color()), shape, ls, None)
    if isinstance(handle, PathCollection):
        face = handle.get_facecolor()
        edge = handle.get_edgecolor()
        color = to_hex(face[0]) if len(face) and face[0][3] > 0 else to_hex(edge[0]) if len(edge) else None
        shape = _shape(handle.get_paths()[0]) if handle.get_paths() else None
        return ("points", color, shape, None, None)
    if isinstance(handle, Rectangle):
        return ("patch", to_hex(handle.get_facecolor()), None, None, handle.get_hatch())
    return (type(handle).__name__, id(handle), None, None, None)
