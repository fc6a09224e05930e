"""Can a reader tell a figure's parts apart? Overlapping text, legends over data, legend entries that look alike.

:func:`legibility_problems` lists what a reader would trip over, one sentence each; an empty list means none of
the checked faults. The figure tests run it over every drawn figure; ``wiseft`` logs it when saving figures.

Example:
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> _ = ax.plot([0, 1], [0, 1], label="a"); _ = ax.plot([0, 1], [1, 0], label="b")
    >>> _ = ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1))
    >>> legibility_problems(fig)
    []
"""

from __future__ import annotations

import itertools

from matplotlib.figure import Figure

from .layout import data_points, handle_key, legend_boxes, text_boxes

__all__ = ["legibility_problems"]


def _legend_problems(legend, where: str) -> list[str]:
    problems = []
    seen: dict[tuple, str] = {}
    for handle, text in zip(legend.legend_handles, legend.get_texts()):
        key = handle_key(handle)
        label = text.get_text()
        if key in seen:
            problems.append(f"{where}: legend entries {seen[key]!r} and {label!r} look the same "
                            "(colour, marker and line style)")
        seen.setdefault(key, label)
    labels = [t.get_text() for t in legend.get_texts()]
    for label in {x for x in labels if labels.count(x) > 1}:
        problems.append(f"{where}: the legend lists {label!r} twice")
    return problems


def legibility_problems(fig: Figure) -> list[str]:
    """What overlaps or cannot be told apart in ``fig``, one sentence per fault (empty: none found).

    Checked inside each visible axes: no two texts (tick labels, axis labels, titles, annotations, the legend)
    overlap or come closer than one point; the legend covers no data point, line vertex or bar; no two legend
    entries share colour, marker and line style. Figure-level legends are checked for look-alike entries too.
    """
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    problems: list[str] = []
    for i, ax in enumerate(a for a in fig.axes if a.get_visible()):
        where = f"panel {i + 1}" + (f" ({ax.get_title()!r})" if ax.get_title() else "")
        boxes = text_boxes(ax, renderer) + legend_boxes(ax, renderer)
        gap = fig.dpi / 72.0  # closer than one point reads as touching ("60%70%")
        for (na, a), (nb, b) in itertools.combinations(boxes, 2):
            if a.padded(gap / 2).overlaps(b.padded(gap / 2)):
                problems.append(f"{where}: {na} overlaps {nb}")
        legend = ax.get_legend()
        if legend is not None and legend.get_visible():
            box = legend.get_window_extent(renderer)
            points, bars = data_points(ax)
            covered = int(((points[:, 0] > box.x0) & (points[:, 0] < box.x1) & (points[:, 1] > box.y0)
                           & (points[:, 1] < box.y1)).sum()) if len(points) else 0
            if covered:
                problems.append(f"{where}: the legend covers {covered} data point(s)")
            if any(box.overlaps(b) for b in bars):
                problems.append(f"{where}: the legend covers bars")
            problems += _legend_problems(legend, where)
    for j, legend in enumerate(fig.legends):
        problems += _legend_problems(legend, f"figure legend {j + 1}")
    return problems
