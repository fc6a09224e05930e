"""Paper Fig. 5 (and Figs. 27–30 for one model): why WiSE-FT works, per dataset, as grouped bars.

Each panel groups one kind of measure; within a dataset one bar per (measure, comparison), each with its own
colour and hatch, named in words ("1 − CKA", "zero-shot vs. E2E"), with the control comparison spelled out: the
paper's yardstick is two linear classifiers trained on random halves of the reference set, i.e. how different two
ordinary fine-tuned models are. Fractions are shown in %, KL divergence in nats, confidence gaps in logits.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from . import data as D
from .layout import finalize
from .style import PALETTE, legend_outside, paper_style

__all__ = ["fig5", "requires_fig5", "ANALYSIS_MEASURES", "MEASURE_NAMES", "COMPARISON_NAMES"]

#: Measures Fig. 5 knows, by panel, with the panel's y label.
ANALYSIS_MEASURES = {
    "Diversity between the two models": ("prediction_diversity", "kappa_complement", "cka_complement"),
    "Mean KL divergence": ("kl_divergence",),
    "Who decides at α = 0.5": ("zs_overrides", "zs_overridden"),
    "Confidence gap δ_zs − δ_ft": ("confidence_gap_diff",),
}
_UNITS = {"Diversity between the two models": "% of examples (or 1 − similarity, %)",
          "Mean KL divergence": "KL(p_zs ‖ p_ft) (nats)", "Who decides at α = 0.5": "% of examples",
          "Confidence gap δ_zs − δ_ft": "top-1 − top-2 logit (logits)"}
_PERCENT = {"prediction_diversity", "kappa_complement", "cka_complement", "zs_overrides", "zs_overridden"}
MEASURE_NAMES = {
    "prediction_diversity": "prediction diversity", "kappa_complement": "1 − Cohen's κ", "cka_complement": "1 − CKA",
    "kl_divergence": "KL divergence", "zs_overrides": "zero-shot overrules fine-tuned",
    "zs_overridden": "fine-tuned overrules zero-shot", "confidence_gap_diff": "δ_zs − δ_ft",
}
COMPARISON_NAMES = {
    "zeroshot_vs_finetuned": "zero-shot vs. fine-tuned (E2E)", "zeroshot_vs_lc": "zero-shot vs. fine-tuned (LC)",
    "baseline": "control: two LCs on random halves",
}
_HATCHES = {"zeroshot_vs_finetuned": "", "zeroshot_vs_lc": "//", "baseline": ".."}


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


def _series_name(measure: str, comparison: str) -> str:
    return f"{MEASURE_NAMES.get(measure, measure)}, {COMPARISON_NAMES.get(comparison, comparison.replace('_', ' '))}"


def _short(dataset: str, every: list[str]) -> str:
    """A tick label that fits beside its neighbours: the common ``world-`` prefix dropped, long names wrapped."""
    name = dataset[len("world-"):] if all(d.startswith("world-") for d in every) else D.display_name(dataset)
    return name.replace(" ", "\n", 1) if len(name) > 11 else name


def fig5(analyses: pd.DataFrame, *, context: str | None = None) -> Figure:
    """Paper Fig. 5: diversity, KL divergence, who decides at α = 0.5 and the confidence gap, per dataset.

    Args:
        analyses: a tidy frame, one row per number, columns ``dataset``, ``measure`` (``prediction_diversity``,
            ``kappa_complement``, ``cka_complement``, ``kl_divergence``, ``zs_overrides``, ``zs_overridden``,
            ``confidence_gap_zs``/``confidence_gap_ft`` or ``confidence_gap_diff``), ``value`` and optionally
            ``comparison`` (``zeroshot_vs_finetuned`` by default, ``zeroshot_vs_lc``, ``baseline``). The baselines
            step writes it as ``<run>/analyses.csv``.
        context: the data and model for the title (default: named from the datasets).
    """
    a = _analyses(analyses)
    panels = [(title, ms) for title, ms in ANALYSIS_MEASURES.items() if a["measure"].isin(ms).any()]
    order = list(dict.fromkeys(a["dataset"]))
    keys = list(dict.fromkeys((m, c) for ms in (p[1] for p in panels) for m in ms
                              for c in dict.fromkeys(a.loc[a["measure"] == m, "comparison"])))
    looks = {k: PALETTE[i % len(PALETTE)] for i, k in enumerate(keys)}
    with paper_style():
        ncols = min(2, len(panels))
        nrows = math.ceil(len(panels) / ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(8.5 * ncols, 3.6 * nrows), squeeze=False)
        for ax in list(axes.flat)[len(panels):]:
            ax.set_visible(False)
        for ax, (title, measures) in zip(axes.flat, panels):
            part = a[a["measure"].isin(measures)]
            present = [k for k in keys if k[0] in measures and ((part["measure"] == k[0])
                                                                 & (part["comparison"] == k[1])).any()]
            datasets = [d for d in order if d in set(part["dataset"])]
            width = 0.8 / max(len(present), 1)
            for j, (measure, comparison) in enumerate(present):
                rows = part[(part["measure"] == measure) & (part["comparison"] == comparison)]
                values = rows.groupby("dataset")["value"].last().reindex(datasets).to_numpy(dtype=float)
                values = 100 * values if measure in _PERCENT else values
                ax.bar(np.arange(len(datasets)) + (j - (len(present) - 1) / 2) * width, values, width,
                       color=looks[(measure, comparison)], hatch=_HATCHES.get(comparison, "xx"),
                       edgecolor="white", linewidth=0.4, label=_series_name(measure, comparison))
            ax.set_xticks(np.arange(len(datasets)), [_short(d, order) for d in datasets])
            ax.set_title(title)
            ax.set_ylabel(_UNITS[title])
            ax.axhline(0, color="#555555", linewidth=0.6)
            legend_outside(ax)
        data = context or D.data_label(order)
        fig.suptitle(f"Fig. 5 — why WiSE-FT works: the zero-shot and fine-tuned models differ ({data})", fontsize=10)
        fig.tight_layout()
        finalize(fig)
    return fig
