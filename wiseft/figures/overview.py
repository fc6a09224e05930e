"""Paper Fig. 1: reference accuracy vs. the average over the shifts, with a zoom on the fine-tuned end.

The left panel is the paper's overview on logit axes: zero-shot and fine-tuned models with 95% intervals, the
WiSE-FT curves (α = 0.5 ringed), y = x across the panel, and the effective-robustness line with its 95% band
when the run has enough zero-shot models (else a note on the panel says why not). When the profile names a
setting of the paper (``figures.paper_table``), the paper's own points are drawn beside the run's, grey and
labelled "paper". The right panel zooms on the fine-tuned end (α ≥ 0.5 and the fine-tuned models) on linear
percent axes, and the region it shows is outlined on the left panel.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter, MaxNLocator

from . import data as D
from .intervals import draw_errorbars
from .layout import finalize
from .scatter import (Series, _fits, _gain_text, avg_label, axis_label, baseline_model_points, core_series,
                      draw_panel, figure_legend, load_baseline_models)
from .style import alpha_marker_kw, paper_style, plottable

__all__ = ["fig1", "paper_series"]

_PAPER_GREY = "#9e9e9e"


def paper_series(paper_table: str | None, x: str, y: str) -> list[Series]:
    """The paper's own zero-shot, fine-tuned and WiSE-FT numbers on ``x`` vs ``y`` (grey, labelled "paper")."""
    if not paper_table:
        return []
    from .paper import load_paper_numbers, paper_tables_for

    frames = [load_paper_numbers(t) for t in paper_tables_for(paper_table)]
    nums = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if nums.empty or not {x, y} <= set(nums["dataset"]):
        return []
    nums = nums[nums["dataset"].isin([x, y])].assign(a=nums["alpha"].fillna(-1.0))
    wide = nums.pivot_table(index=["method", "mode", "a"], columns="dataset", values="value", aggfunc="first")
    wide = (wide.dropna(subset=[x, y]) / 100.0).reset_index()
    out: list[Series] = []
    looks = {("zeroshot", ""): ("paper: zero-shot", "*", 150),
             ("finetuned", "e2e"): ("paper: fine-tuned (E2E)", "D", 50),
             ("finetuned", "lc"): ("paper: fine-tuned (LC)", "d", 50)}
    # A sweep table has no separate endpoints: its α = 0 row is the zero-shot model, α = 1 the fine-tuned one.
    sweep_end = {("zeroshot", ""): ("e2e", 0.0), ("finetuned", "e2e"): ("e2e", 1.0), ("finetuned", "lc"): ("lc", 1.0)}
    for (method, mode), (label, marker, size) in looks.items():
        rows = wide[(wide["method"] == method) & (wide["mode"] == mode)]
        if rows.empty:
            sweep_mode, at = sweep_end[(method, mode)]
            rows = wide[(wide["method"] == "wiseft") & (wide["mode"] == sweep_mode) & np.isclose(wide["a"], at)]
        if len(rows):
            out.append(Series(label, plottable(rows[x].iloc[:1]), plottable(rows[y].iloc[:1]), _PAPER_GREY,
                              marker=marker, size=size, hollow=True))
    curve = wide[(wide["method"] == "wiseft") & (wide["mode"] == "e2e")].sort_values("a")
    if curve["a"].nunique() >= 2:
        out.append(Series("paper: WiSE-FT (E2E)", plottable(curve[x]), plottable(curve[y]), _PAPER_GREY, curve=True,
                          alpha_values=curve["a"].to_numpy(float), linestyle=":", hollow=True))
    return out


def _zoom(ax, series: list[Series], main_ax) -> None:
    """Linear percent axes around the fine-tuned end: α ≥ 0.5 on the curves and the fine-tuned points."""
    near = []
    for s in series:
        if s.hollow:
            continue
        if s.curve and s.alpha_values is not None:
            keep = s.alpha_values >= 0.5 - 1e-9
            near.append(Series(s.label, s.x[keep], s.y[keep], s.color, curve=True,
                               alpha_values=s.alpha_values[keep], linestyle=s.linestyle))
        elif s.label.startswith("fine-tuned"):
            near.append(s)
    if not near:
        ax.set_visible(False)
        return
    xs = np.concatenate([s.x for s in near])
    ys = np.concatenate([s.y for s in near])
    for s in near:
        if s.curve:
            ax.plot(100 * s.x, 100 * s.y, color=s.color, linestyle=s.linestyle, linewidth=2.0, marker=".",
                    markersize=5, label=s.label, zorder=3)
            half = np.isclose(s.alpha_values, 0.5)
            ax.scatter(100 * s.x[half], 100 * s.y[half], **alpha_marker_kw(s.color))
        else:
            ax.scatter(100 * s.x, 100 * s.y, s=s.size, color=s.color, marker=s.marker, edgecolor="black",
                       linewidth=0.5, label=s.label, zorder=4)
            draw_errorbars(ax, s.x, s.y, s.ci, s.color, scale=100)
    pad_x = max(np.ptp(xs) * 0.15, 0.003)
    pad_y = max(np.ptp(ys) * 0.15, 0.003)
    box = (xs.min() - pad_x, xs.max() + pad_x, ys.min() - pad_y, ys.max() + pad_y)
    ax.set_xlim(100 * box[0], 100 * box[1])
    ax.set_ylim(100 * box[2], 100 * box[3])
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(MaxNLocator(5))
        axis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:.3g}%"))
    main_ax.add_patch(Rectangle((box[0], box[2]), box[1] - box[0], box[3] - box[2], fill=False,
                                edgecolor="#555555", linewidth=0.8, linestyle="-", zorder=1))
    ax.set_title("Zoom on the fine-tuned end (α ≥ 0.5, linear axes)")


def fig1(df: pd.DataFrame, *, baseline_models: pd.DataFrame | str | Path | None = None, zoom: bool = True,
         paper_table: str | None = None) -> Figure:
    """Paper Fig. 1: reference accuracy vs. average accuracy over the shifts.

    Args:
        df: results rows.
        baseline_models: a CSV path or frame with ``name, group, dataset, top1`` (profile key
            ``figures.baseline_models``); a group whose name contains "zero" joins the effective-robustness fit.
        zoom: add the zoom panel on the fine-tuned end.
        paper_table: the profile's ``figures.paper_table``; the paper's own points are drawn beside the run's.
    """
    st = D.settings_table(df)
    ref, shifts = st.attrs["reference"], st.attrs["shifts"]
    if isinstance(baseline_models, (str, Path)):
        baseline_models = load_baseline_models(baseline_models)
    models = baseline_model_points(baseline_models, ref, shifts)
    series = core_series(st, ref, D.AVG_SHIFTS)
    paper = paper_series(paper_table, ref, D.AVG_SHIFTS)
    xlabel, ylabel = axis_label(ref, st.attrs["metrics"][ref]), avg_label(st)
    with paper_style():
        fig, axes = plt.subplots(1, 2 if zoom else 1, figsize=(11 if zoom else 6, 5.4), squeeze=False)
        draw_panel(axes[0, 0], paper + series, xlabel, ylabel, fits=_fits(st, ref, D.AVG_SHIFTS, models),
                   models=models, title="Reference vs. distribution shifts (logit axes)", diagonal_share=0.3,
                   legend=False)
        if zoom:
            _zoom(axes[0, 1], series, axes[0, 0])
            axes[0, 1].set_xlabel(xlabel)
            axes[0, 1].set_ylabel(ylabel)
        notes = [t for t in (_gain_text(st, ref, D.AVG_SHIFTS, m) for m in D.modes_with_sweep(st)) if t]
        fig.suptitle(f"Fig. 1 — {D.run_context(st)}" + ("\n" + "; ".join(notes) if notes else ""), fontsize=10)
        figure_legend(fig, axes)
        finalize(fig)
    return fig
