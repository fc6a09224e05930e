"""An interactive α explorer for people stepping through the notebooks (no retraining: the run's sweep rows).

A slider over the α values the run evaluated moves a marker along the Fig. 1 WiSE-FT curve (reference vs. the
average over the shifts) and updates a table of every dataset's accuracy at that α beside the zero-shot (α = 0)
and fine-tuned (α = 1) ends.

Example (in JupyterLab):
    >>> from wiseft.figures.explorer import alpha_explorer
    >>> alpha_explorer(df).show()                        # doctest: +SKIP

Batch executions (``wiseft run``'s papermill, nbval) set ``WISEFT_BATCH=1``; :meth:`AlphaExplorer.show` then
prints one line instead of a widget, so recorded outputs stay deterministic.
"""

from __future__ import annotations

import io
import os

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..errors import WiseftError
from . import data as D
from .scatter import _xy, avg_label, axis_label, core_series, draw_panel
from .style import paper_style

__all__ = ["AlphaExplorer", "alpha_explorer", "BATCH_ENV"]

#: Set to ``1`` by batch executions; the explorer then does not display a widget.
BATCH_ENV = "WISEFT_BATCH"


class AlphaExplorer:
    """The widgets of :func:`alpha_explorer`: ``slider``, ``image`` (the Fig. 1 panel), ``table`` (HTML) and
    ``widget`` (all three in a box). ``point`` is the marker of the current α on the figure."""

    def __init__(self, df: pd.DataFrame, mode: str = "e2e"):
        import ipywidgets as W

        st = D.settings_table(df)
        self.curve = D.sweep(st, mode)
        if self.curve["alpha"].nunique() < 2:
            raise WiseftError(f"the run has no WiSE-FT sweep in mode {mode!r}; run the interpolate step first")
        self.st, self.mode = st, mode
        self.ref, self.datasets = st.attrs["reference"], [*st.attrs["references"][:1], *st.attrs["shifts"]]
        alphas = [float(a) for a in self.curve["alpha"]]
        start = min(alphas, key=lambda a: abs(a - 0.5))
        self.slider = W.SelectionSlider(options=[(f"{a:g}", a) for a in alphas], value=start, description="α",
                                        continuous_update=True, layout=W.Layout(width="420px"))
        self.image = W.Image(format="png")
        self.table = W.HTML()
        self.figure = self._figure()
        self.slider.observe(lambda change: self.update(change["new"]), names="value")
        self.widget = W.VBox([self.slider, W.HBox([self.image, self.table])])
        self.update(start)

    def _figure(self) -> Figure:
        with paper_style():
            fig = Figure(figsize=(6.2, 4.6))
            ax = fig.add_subplot()
            series = core_series(self.st, self.ref, D.AVG_SHIFTS, modes=(self.mode,), other_models=False)
            draw_panel(ax, series, axis_label(self.ref, self.st.attrs["metrics"][self.ref]), avg_label(self.st),
                       diagonal=False, legend=False, title=f"WiSE-FT ({self.mode.upper()}) — {D.run_context(self.st)}")
            self.point = ax.scatter([np.nan], [np.nan], s=180, facecolor="none", edgecolor="black", linewidth=2.2,
                                    zorder=7)
            self.label = ax.annotate("", (0.5, 0.5), textcoords="offset points", xytext=(10, -14), fontsize=9)
            fig.tight_layout()
        return fig

    def row(self, alpha: float) -> pd.Series:
        """The sweep's row at ``alpha``."""
        hit = self.curve[np.isclose(self.curve["alpha"], alpha)]
        if hit.empty:
            raise WiseftError(f"α = {alpha:g} was not evaluated; the run's α values are {list(self.curve['alpha'])}")
        return hit.iloc[0]

    def update(self, alpha: float) -> None:
        """Move the marker to ``alpha`` and refresh the table (what the slider calls)."""
        row = self.row(alpha)
        x, y = _xy(row, self.ref, D.AVG_SHIFTS)
        self.point.set_offsets(np.column_stack([x, y]))
        self.label.xy = (float(x[0]), float(y[0]))
        self.label.set_text(f"α = {alpha:g}")
        buf = io.BytesIO()
        with matplotlib.rc_context({"savefig.bbox": "tight"}):
            self.figure.savefig(buf, format="png", dpi=90)
        self.image.value = buf.getvalue()
        ends = {a: self.row(a) if np.isclose(self.curve["alpha"], a).any() else None for a in (0.0, 1.0)}
        lines = ["<table><tr><th>dataset</th><th>α = 0 (%)</th>"
                 f"<th>α = {alpha:g} (%)</th><th>α = 1 (%)</th></tr>"]
        for d in [*self.datasets, D.AVG_SHIFTS]:
            cells = [ends[0.0], row, ends[1.0]]
            vals = [f"{100 * c[d]:.1f}" if c is not None else "" for c in cells]
            name = D.display_name(d)
            lines.append(f"<tr><td>{name}</td><td>{vals[0]}</td><td><b>{vals[1]}</b></td><td>{vals[2]}</td></tr>")
        self.table.value = "".join(lines) + "</table>"

    def show(self) -> None:
        """Display the explorer in a live notebook; in batch executions print one line instead."""
        if os.environ.get(BATCH_ENV) == "1":
            print("α explorer: interactive only (open this notebook in JupyterLab and run this cell).")
            return
        from IPython.display import display

        display(self.widget)


def alpha_explorer(df: pd.DataFrame, mode: str = "e2e") -> AlphaExplorer:
    """A slider over the run's α values that moves the Fig. 1 point and updates the per-dataset accuracies.

    Raises:
        WiseftError: when the run has no sweep in ``mode``.
    """
    return AlphaExplorer(df, mode)
