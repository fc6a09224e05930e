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
import seaborn as sns
from matplotlib.figure import Figure

from . import data as D
from .scatter import Series, core_series, draw_panel, figure_legend, requires_scatter
from .style import COLORS, paper_style

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
_GREEK = {"alpha": "α", "lambda": "λ", "decay": "β"}


def _fmt(v) -> str:
    return f"{v:g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)


def baseline_series(st: pd.DataFrame, method: str, ref: str, y: str, color: str = COLORS["baseline"]) -> list[Series]:
    """The rows of one baseline as points labelled by their knob, or a curve when swept over α."""
    mode, knob, label = BASELINE_METHODS[method]
    rows = st[st["method"] == method]
    rows = rows[rows["mode"].isin([mode, ""])] if (rows["mode"] == mode).any() else rows
    if rows.empty:
        return []
    out: list[Series] = []
    if knob is None and rows["alpha"].nunique() >= 2:
        curve = rows.sort_values("alpha")
        out.append(Series(label, curve[ref].to_numpy(float), curve[y].to_numpy(float), color, curve=True,
                          alpha_values=curve["alpha"].to_numpy(float), linestyle="--"))
        return out
    col = f"extra_{knob}" if knob else None
    if col and col in rows.columns:
        rows = rows.sort_values(col)
        notes = [f"{_GREEK.get(knob, knob)}={_fmt(v)}" for v in rows[col]]
    else:
        notes = [] if len(rows) == 1 else [_fmt(a) for a in rows["alpha"]]
    out.append(Series(label, rows[ref].to_numpy(float), rows[y].to_numpy(float), color, marker="s", size=40,
                      annotations=notes))
    return out


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
    xlabel = f"{D.display_name(ref)} ({D.metric_name(st.attrs['metrics'][ref])})"
    ylabel = f"Avg. over {len(st.attrs['shifts'])} distribution shifts"
    with paper_style():
        fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 4.2 * nrows), squeeze=False)
        for ax, method in zip(axes.flat, methods):
            mode = BASELINE_METHODS[method][0]
            series = core_series(st, ref, D.AVG_SHIFTS, modes=(mode,), other_models=False)
            series += baseline_series(st, method, ref, D.AVG_SHIFTS)
            draw_panel(ax, series, xlabel, ylabel, diagonal=False, title=BASELINE_METHODS[method][2],
                       legend=len(methods) == 1)
        for ax in list(axes.flat)[len(methods):]:
            ax.set_visible(False)
        fig.suptitle(title, y=1.0)
        fig.tight_layout()
        if len(methods) > 1:
            figure_legend(fig, axes)
    return fig


def fig11(df: pd.DataFrame) -> Figure:
    """Paper Fig. 11: debiased EMA of the fine-tuning weights (one point per decay β) beside WiSE-FT (E2E)."""
    return _baseline_figure(df, ["ema"], "Debiased EMA vs. WiSE-FT")


def fig12(df: pd.DataFrame) -> Figure:
    """Paper Fig. 12: EMA started at the zero-shot weights (one point per decay β) beside WiSE-FT (E2E)."""
    return _baseline_figure(df, ["ema_biased"], "EMA biased toward the zero-shot weights vs. WiSE-FT")


def fig13(df: pd.DataFrame, *, methods: Sequence[str] = _FIG13_METHODS) -> Figure:
    """Paper Fig. 13: one panel per baseline beside the WiSE-FT curve of its mode.

    LC panels: random interpolation, softmax-probability ensemble, distillation, regularise-to-zero-shot;
    E2E panels (the appendix discusses them with Fig. 3c): L2-SP and LP-FT.
    """
    return _baseline_figure(df, methods, "Baselines vs. WiSE-FT")


# ---------------------------------------------------------------------------------------------- Fig. 3
def requires_fig3(df: pd.DataFrame) -> str | None:
    """Fig. 3 needs fine-tuning variants (``method='variant'`` rows with ``extra.name``)."""
    missing = requires_scatter(df)
    if missing:
        return missing
    if not (df["method"] == "variant").any():
        return "this profile has no fine-tuning variants (finetune.variants); Fig. 3 needs them"
    return None


def fig3(df: pd.DataFrame) -> Figure:
    """Paper Fig. 3: fine-tuning hyperparameter variants and the WiSE-FT curve of each.

    Left: the fine-tuned endpoint of every variant (learning rate, epochs …) beside the zero-shot model and the
    default run's WiSE-FT curve. Right: each variant's own WiSE-FT curve, α = 0.5 marked.
    """
    st = D.settings_table(df)
    ref = st.attrs["reference"]
    var = st[st["method"] == "variant"]
    names = list(dict.fromkeys(json.loads(k).get("name", k) for k in var["knobs"]))
    palette = dict(zip(names, sns.color_palette("crest", n_colors=max(len(names), 1))))
    left = core_series(st, ref, D.AVG_SHIFTS, modes=("e2e",), other_models=False)
    right = [s for s in left if not s.curve]
    for name in names:
        rows = var[var["knobs"].map(lambda k: json.loads(k).get("name", k)) == name]
        end = rows[rows["alpha"].isna() | np.isclose(rows["alpha"].fillna(-1), 1.0)]
        if len(end):
            left.append(Series(f"fine-tuned: {name}", end[ref].to_numpy(float)[-1:],
                               end[D.AVG_SHIFTS].to_numpy(float)[-1:], palette[name], marker="D", size=45,
                               annotations=[name]))
        curve = rows.dropna(subset=["alpha"]).sort_values("alpha")
        if curve["alpha"].nunique() >= 2:
            right.append(Series(f"WiSE-FT: {name}", curve[ref].to_numpy(float), curve[D.AVG_SHIFTS].to_numpy(float),
                                palette[name], curve=True, alpha_values=curve["alpha"].to_numpy(float)))
    xlabel = f"{D.display_name(ref)} ({D.metric_name(st.attrs['metrics'][ref])})"
    ylabel = f"Avg. over {len(st.attrs['shifts'])} distribution shifts"
    with paper_style():
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.8))
        draw_panel(axes[0], left, xlabel, ylabel, diagonal=False, title="Fine-tuning variants")
        draw_panel(axes[1], right, xlabel, ylabel, diagonal=False, title="WiSE-FT of each variant")
        fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------- Fig. 5
#: Measures Fig. 5 knows, by panel.
ANALYSIS_MEASURES = {
    "Diversity between zero-shot and fine-tuned": ("prediction_diversity", "kappa_complement", "cka_complement"),
    "Mean KL divergence": ("kl_divergence",),
    "Who decides at α = 0.5": ("zs_overrides", "zs_overridden"),
    "Confidence gap δ_zs − δ_ft": ("confidence_gap_diff",),
}


def _analyses(frame: pd.DataFrame) -> pd.DataFrame:
    a = frame.copy()
    if "comparison" not in a.columns:
        a["comparison"] = "zeroshot_vs_finetuned"
    a["comparison"] = a["comparison"].fillna("zeroshot_vs_finetuned")
    a["value"] = pd.to_numeric(a["value"], errors="coerce")
    gaps = a[a["measure"].isin(["confidence_gap_zs", "confidence_gap_ft"])]
    if not (a["measure"] == "confidence_gap_diff").any() and not gaps.empty:
        wide = gaps.pivot_table(index=["dataset", "comparison"], columns="measure", values="value", aggfunc="last")
        if {"confidence_gap_zs", "confidence_gap_ft"} <= set(wide.columns):
            diff = (wide["confidence_gap_zs"] - wide["confidence_gap_ft"]).rename("value").reset_index()
            diff["measure"] = "confidence_gap_diff"
            a = pd.concat([a, diff], ignore_index=True)
    return a


def requires_fig5(analyses: pd.DataFrame | None) -> str | None:
    """Fig. 5 needs an analyses frame (see :func:`fig5`) with at least one known measure."""
    if analyses is None or analyses.empty:
        return "no diversity analyses (analyses.csv); set baselines.analyses: true and run the baselines step"
    missing = {"dataset", "measure", "value"} - set(analyses.columns)
    if missing:
        return f"the analyses table lacks the columns {sorted(missing)} (expected dataset, measure, value)"
    known = {m for ms in ANALYSIS_MEASURES.values() for m in ms} | {"confidence_gap_zs", "confidence_gap_ft"}
    if not set(analyses["measure"]) & known:
        return f"the analyses table has none of the measures Fig. 5 draws ({', '.join(sorted(known))})"
    return None


def fig5(analyses: pd.DataFrame) -> Figure:
    """Paper Fig. 5 (and Figs. 27–30 for one model): why WiSE-FT works, per dataset.

    Args:
        analyses: a tidy frame, one row per number, columns:

            - ``dataset``: registry name (``imagenet``, ``imagenet-a`` …);
            - ``measure``: ``prediction_diversity``, ``kappa_complement``, ``cka_complement`` (fractions),
              ``kl_divergence`` (nats), ``zs_overrides`` / ``zs_overridden`` (fractions of examples where, at
              α = 0.5, the zero-shot model's prediction wins against / loses to the fine-tuned one),
              ``confidence_gap_zs`` / ``confidence_gap_ft`` (mean top-1 minus top-2 logit of each model) or
              directly ``confidence_gap_diff`` (zs minus ft);
            - ``value``: the number;
            - ``comparison`` (optional): ``zeroshot_vs_finetuned`` (default) or ``baseline`` (the paper's two
              linear classifiers trained on random halves of the reference set).

            The baselines step writes it as ``<run>/analyses.csv``.
    """
    a = _analyses(analyses)
    panels = [(title, ms) for title, ms in ANALYSIS_MEASURES.items() if a["measure"].isin(ms).any()]
    order = list(dict.fromkeys(a["dataset"]))
    with paper_style():
        ncols = min(2, len(panels))
        nrows = math.ceil(len(panels) / ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(6.0 * ncols, 4.0 * nrows), squeeze=False)
        for ax in list(axes.flat)[len(panels):]:
            ax.set_visible(False)
        for ax, (title, measures) in zip(axes.flat, panels):
            part = a[a["measure"].isin(measures)].copy()
            part["series"] = part["measure"].str.replace("_", " ")
            if part["comparison"].nunique() > 1:
                part["series"] = part["series"] + " (" + part["comparison"].str.replace("_", " ") + ")"
            part["dataset"] = part["dataset"].map(D.display_name)
            sns.barplot(data=part, x="dataset", y="value", hue="series", ax=ax,
                        order=[D.display_name(o) for o in order if o in set(a.loc[a["measure"].isin(measures), "dataset"])],
                        palette="Set2", errorbar=None)
            ax.set_title(title)
            ax.set_xlabel("")
            ax.set_ylabel("value")
            ax.tick_params(axis="x", rotation=35)
            ax.legend(fontsize=7)
        fig.tight_layout()
    return fig
