"""Alternatives to WiSE-FT beside its curve (paper Figs. 3, 11, 12, 13) and the diversity analyses (Fig. 5).

Baseline rows follow the results store's conventions: ``method`` names the baseline and the knob that was
swept sits in ``extra`` (``lambda`` for ``l2sp``/``lc_l2sp``, ``decay`` for ``ema``/``ema_biased``, ``alpha`` for
``distill``); the output-space ensembles and random interpolation use the ``alpha`` column as WiSE-FT does.
Fig. 3 reads ``method='variant'`` rows named by ``extra.name`` (their fine-tuned endpoint at α = 1 or without
α, and their own WiSE-FT sweep at other α).
"""

from __future__ import annotations

import json
import math
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from . import data as D
from .diversity import ANALYSIS_MEASURES, fig5, requires_fig5
from .layout import finalize
from .scatter import Series, avg_label, axis_label, core_series, draw_panel, figure_legend, requires_scatter
from .style import paper_style, series_look

__all__ = ["BASELINE_METHODS", "fig3", "fig5", "fig11", "fig12", "fig13", "baseline_series", "requires_baselines",
           "requires_fig3", "requires_fig5", "ANALYSIS_MEASURES"]

#: method -> (mode it is compared in, knob in ``extra`` (None: the α column), label of the panel)
BASELINE_METHODS = {
    "random_interp": ("lc", None, "Random interpolation (one model per example)"),
    "ose_prob": ("lc", None, "Output-space ensemble (softmax probabilities)"),
    "distill": ("lc", "alpha", "Distillation from the zero-shot model"),
    "lc_l2sp": ("lc", "lambda", "LC regularised to the zero-shot head"),
    "l2sp": ("e2e", "lambda", "E2E regularised to the zero-shot weights (L2-SP)"),
    "lpft": ("e2e", None, "LP-FT (linear probe, then fine-tune)"),
    "ema": ("e2e", "decay", "EMA of the weights (debiased)"),
    "ema_biased": ("e2e", "decay", "EMA biased toward the zero-shot weights"),
}
_FIG13_METHODS = ("random_interp", "ose_prob", "distill", "lc_l2sp", "l2sp", "lpft")
#: How each method's knob is written beside its points ("α" of distillation is its loss weight, not WiSE-FT's α).
_KNOB_LABEL = {"distill": "distill. weight ", "l2sp": "λ=", "lc_l2sp": "λ=", "ema": "β=", "ema_biased": "β="}
_LINESTYLES = ("--", ":", "-.", (0, (5, 1, 1, 1)), (0, (1, 1)), (0, (8, 2)))


def _fmt(v) -> str:
    return f"{v:g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)


def baseline_series(st: pd.DataFrame, method: str, ref: str, y: str, look: int | None = None) -> list[Series]:
    """The rows of one baseline as points labelled by their knob, or a curve when swept over α.

    Args:
        look: index into :func:`wiseft.figures.style.series_look` (default: the method's place in
            :data:`BASELINE_METHODS`), so that every baseline has its own colour and marker.
    """
    mode, knob, label = BASELINE_METHODS[method]
    index = list(BASELINE_METHODS).index(method) if look is None else look
    color, marker = series_look(index)
    rows = st[st["method"] == method]
    rows = rows[rows["mode"].isin([mode, ""])] if (rows["mode"] == mode).any() else rows
    if rows.empty:
        return []
    if knob is None and rows["alpha"].nunique() >= 2:
        curve = rows.sort_values("alpha")
        return [Series(label, curve[ref].to_numpy(float), curve[y].to_numpy(float), color, curve=True,
                       alpha_values=curve["alpha"].to_numpy(float), linestyle=_LINESTYLES[index % len(_LINESTYLES)])]
    col = f"extra_{knob}" if knob else None
    if col and col in rows.columns:
        rows = rows.sort_values(col)
        notes = [f"{_KNOB_LABEL.get(method, knob + '=')}{_fmt(v)}" for v in rows[col]]
    else:
        notes = [] if len(rows) == 1 else [_fmt(a) for a in rows["alpha"]]
    return [Series(label, rows[ref].to_numpy(float), rows[y].to_numpy(float), color, marker=marker, size=42,
                   annotations=notes)]


def requires_baselines(methods: Sequence[str]):
    """A ``requires`` for figures that show any of ``methods``."""

    def requires(df: pd.DataFrame) -> str | None:
        missing = requires_scatter(df)
        if missing:
            return missing
        present = set(df["method"])
        if not present & set(methods):
            return (f"this profile has no rows of {', '.join(methods)}; add them to baselines.methods and run the "
                    "baselines step")
        return None

    return requires


def _baseline_figure(df: pd.DataFrame, methods: Sequence[str], title: str, ncols: int = 3) -> Figure:
    st = D.settings_table(df)
    ref = st.attrs["reference"]
    methods = [m for m in methods if (st["method"] == m).any()]
    ncols = max(1, min(ncols, len(methods)))
    nrows = math.ceil(len(methods) / ncols)
    xlabel, ylabel = axis_label(ref, st.attrs["metrics"][ref]), avg_label(st)
    single = len(methods) == 1
    with paper_style():
        fig, axes = plt.subplots(nrows, ncols, figsize=(7.5 if single else 4.8 * ncols, 4.6 if single else 4.3 * nrows),
                                 squeeze=False)
        for ax, method in zip(axes.flat, methods):
            mode = BASELINE_METHODS[method][0]
            series = core_series(st, ref, D.AVG_SHIFTS, modes=(mode,), other_models=False)
            series += baseline_series(st, method, ref, D.AVG_SHIFTS)
            draw_panel(ax, series, xlabel, ylabel, diagonal=False, title=BASELINE_METHODS[method][2],
                       legend=single)
        for ax in list(axes.flat)[len(methods):]:
            ax.set_visible(False)
        fig.suptitle(f"{title} — {D.run_context(st)}", fontsize=10)
        if single:
            fig.tight_layout()
        else:
            figure_legend(fig, axes)
        finalize(fig)
    return fig


def fig11(df: pd.DataFrame) -> Figure:
    """Paper Fig. 11: debiased EMA of the fine-tuning weights (one point per decay β) beside WiSE-FT (E2E)."""
    return _baseline_figure(df, ["ema"], "Fig. 11: debiased EMA vs. WiSE-FT")


def fig12(df: pd.DataFrame) -> Figure:
    """Paper Fig. 12: EMA started at the zero-shot weights (one point per decay β) beside WiSE-FT (E2E)."""
    return _baseline_figure(df, ["ema_biased"], "Fig. 12: EMA biased toward the zero-shot weights vs. WiSE-FT")


def fig13(df: pd.DataFrame, *, methods: Sequence[str] = _FIG13_METHODS) -> Figure:
    """Paper Fig. 13: one panel per baseline beside the WiSE-FT curve of its mode.

    LC panels: random interpolation, softmax-probability ensemble, distillation (its points labelled by the
    distillation loss weight, not WiSE-FT's α), regularise-to-zero-shot; E2E panels (the appendix discusses them
    with Fig. 3c): L2-SP and LP-FT. Each baseline has its own colour and marker.
    """
    return _baseline_figure(df, methods, "Fig. 13: baselines vs. WiSE-FT")


# ---------------------------------------------------------------------------------------------- Fig. 3
def requires_fig3(df: pd.DataFrame) -> str | None:
    """Fig. 3 needs fine-tuning variants (``method='variant'`` rows with ``extra.name``)."""
    missing = requires_scatter(df)
    if missing:
        return missing
    if not (df["method"] == "variant").any():
        return "this profile has no fine-tuning variants (finetune.variants); Fig. 3 needs them"
    return None


def _variant_name(knobs: dict) -> str:
    parts = [f"{k} {_fmt(knobs[k])}" for k in ("lr", "epochs", "optimizer") if k in knobs]
    return f"{knobs.get('name', '?')}" + (f" ({', '.join(parts)})" if parts else "")


def fig3(df: pd.DataFrame) -> Figure:
    """Paper Fig. 3: fine-tuning hyperparameter variants and the WiSE-FT curve of each.

    Left: the fine-tuned endpoint of every variant (learning rate, epochs …) beside the zero-shot model, the
    default fine-tuning run (the profile's ``finetune.e2e``) and its WiSE-FT curve. Right: each variant's own
    WiSE-FT curve beside the default's, α = 0.5 ringed. Every variant has its own colour, marker and line style.
    """
    st = D.settings_table(df)
    ref = st.attrs["reference"]
    var = st[st["method"] == "variant"]
    knobs = {json.loads(k).get("name", k): json.loads(k) for k in var["knobs"]}
    names = list(knobs)
    core = core_series(st, ref, D.AVG_SHIFTS, modes=("e2e",), other_models=False)
    for s in core:
        s.label = s.label.replace("(E2E)", "(E2E, default settings)")
    left, right = list(core), list(core)
    for i, name in enumerate(names):
        color, marker = series_look(i)
        rows = var[var["knobs"].map(lambda k: json.loads(k).get("name", k)) == name]
        end = rows[rows["alpha"].isna() | np.isclose(rows["alpha"].fillna(-1), 1.0)]
        if len(end):
            left.append(Series(f"fine-tuned: {_variant_name(knobs[name])}", end[ref].to_numpy(float)[-1:],
                               end[D.AVG_SHIFTS].to_numpy(float)[-1:], color, marker=marker, size=50))
        curve = rows.dropna(subset=["alpha"]).sort_values("alpha")
        if curve["alpha"].nunique() >= 2:
            right.append(Series(f"WiSE-FT: {_variant_name(knobs[name])}", curve[ref].to_numpy(float),
                                curve[D.AVG_SHIFTS].to_numpy(float), color, curve=True,
                                alpha_values=curve["alpha"].to_numpy(float),
                                linestyle=_LINESTYLES[i % len(_LINESTYLES)]))
    xlabel, ylabel = axis_label(ref, st.attrs["metrics"][ref]), avg_label(st)
    with paper_style():
        fig, axes = plt.subplots(1, 2, figsize=(11, 5.0))
        draw_panel(axes[0], left, xlabel, ylabel, diagonal=False, title="Fine-tuned endpoint of each variant",
                   legend=False)
        draw_panel(axes[1], right, xlabel, ylabel, diagonal=False, title="WiSE-FT curve of each variant",
                   legend=False)
        fig.suptitle(f"Fig. 3: fine-tuning hyperparameters — {D.run_context(st)}", fontsize=10)
        figure_legend(fig, axes)
        finalize(fig)
    return fig
