"""Accuracy as a function of α or of the number of shots: paper Figs. 6, 16 and 17."""

from __future__ import annotations

import math
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from . import data as D
from .layout import finalize
from .style import COLORS, legend_outside, paper_style

__all__ = ["fig6", "fig16", "fig17", "requires_fig6", "requires_fig16", "requires_fig17", "FIG17_ALPHAS"]

#: The α values of the paper's Fig. 17 (plus the per-k optimum, drawn as "optimal α").
FIG17_ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)


def _alpha_panel(ax: Axes, curve: pd.DataFrame, column: str, metric: str, title: str, color: str,
                 annotate_gain: bool = False) -> None:
    """WiSE-FT accuracy vs α, the straight line between the endpoints, and the better endpoint."""
    a = curve["alpha"].to_numpy(dtype=float)
    v = 100 * curve[column].to_numpy(dtype=float)
    ax.plot(a, v, color=color, marker="o", markersize=3.5, linewidth=2.0, label="WiSE-FT (weight-space)")
    lo, hi = v[np.argmin(a)], v[np.argmax(a)]
    ax.plot([a.min(), a.max()], [lo, hi], color=COLORS["linear"], linestyle="--", linewidth=1.2,
            label="(1−α)·Acc(θ₀) + α·Acc(θ₁)")
    ax.axhline(max(lo, hi), color=COLORS["linear"], linestyle=":", linewidth=1.2, label="better endpoint")
    if annotate_gain:
        half = np.isclose(a, 0.5)
        if half.any():
            gain = v[half][0] - hi
            ax.text(0.5, 0.04, f"α = 0.5: {gain:+.1f} pp over fine-tuned", transform=ax.transAxes, ha="center",
                    fontsize=8, bbox=dict(boxstyle="round", facecolor="white", alpha=0.8))
    ax.set_xlabel("α (mixing coefficient)")
    ax.set_ylabel(f"{D.metric_name(metric)} (%)")
    ax.set_title(title)
    ax.set_xlim(a.min() - 0.02, a.max() + 0.02)


def _legend_below(fig: Figure, axes: np.ndarray) -> None:
    """The first panel's legend, once, below the grid (clear of every panel's data and notes)."""
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.tight_layout(rect=(0, 0.07 if axes.shape[0] > 1 else 0.12, 1, 1))
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, 0.0))


def _grid(n: int, ncols: int = 3) -> tuple[Figure, np.ndarray]:
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.0 * ncols, 3.3 * nrows), squeeze=False)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    return fig, axes


def _mode(st: pd.DataFrame, mode: str | None) -> str:
    modes = D.modes_with_sweep(st)
    if mode is not None:
        return mode
    return modes[0] if modes else "e2e"


def requires_fig6(df: pd.DataFrame) -> str | None:
    """Fig. 6 needs a WiSE-FT sweep including both endpoints."""
    if df is None or df.empty:
        return "no results rows; run the interpolate step first"
    st = D.settings_table(df)
    for mode in D.modes_with_sweep(st):
        alphas = D.sweep(st, mode)["alpha"]
        if np.isclose(alphas, 0).any() and np.isclose(alphas, 1).any():
            return None
    return "no WiSE-FT α sweep with both endpoints (α = 0 and α = 1); run the interpolate step"


def fig6(df: pd.DataFrame, *, mode: str | None = None, datasets: Sequence[str] | None = None) -> Figure:
    """Paper Fig. 6: accuracy vs α on the reference and every shift.

    Each panel has the accuracy of the interpolated weights, the straight line between the endpoints' accuracies
    (what averaging the two models' *accuracies* would give) and the better endpoint; the curve rising above
    both shows what weight-space ensembling buys.

    Args:
        mode: ``e2e`` or ``lc`` (default: E2E when swept, else LC).
        datasets: panels to draw (default: the reference, then each shift).
    """
    st = D.settings_table(df)
    mode = _mode(st, mode)
    curve = D.sweep(st, mode)
    datasets = list(datasets) if datasets else [*st.attrs["references"][:1], *st.attrs["shifts"]]
    with paper_style():
        fig, axes = _grid(len(datasets))
        for ax, ds in zip(axes.flat, datasets):
            _alpha_panel(ax, curve.dropna(subset=[ds]), ds, st.attrs["metrics"][ds], D.display_name(ds),
                         COLORS[f"wiseft_{mode}"])
        fig.suptitle(f"Fig. 6: accuracy of the interpolated weights vs. α ({mode.upper()}) — {D.run_context(st)}",
                     fontsize=10)
        _legend_below(fig, axes)
        finalize(fig)
    return fig


def requires_fig16(df: pd.DataFrame) -> str | None:
    """Fig. 16 / Table 2 need an E2E WiSE-FT sweep on at least one reference dataset."""
    if df is None or df.empty:
        return "no results rows; run the transfer suite first"
    st = D.settings_table(df)
    for ref in st.attrs["references"]:
        if D.sweep(st, "e2e").dropna(subset=[ref])["alpha"].nunique() >= 2:
            return None
    return "no E2E WiSE-FT sweep on a reference dataset (the transfer suite writes one per dataset)"


def fig16(df: pd.DataFrame) -> Figure:
    """Paper Fig. 16: accuracy vs α (E2E) on each transfer dataset, annotated with the gain at α = 0.5."""
    st = D.settings_table(df)
    curve = D.sweep(st, "e2e")
    refs = [r for r in st.attrs["references"] if curve.dropna(subset=[r])["alpha"].nunique() >= 2]
    with paper_style():
        fig, axes = _grid(len(refs), ncols=4)
        for ax, ref in zip(axes.flat, refs):
            _alpha_panel(ax, curve.dropna(subset=[ref]), ref, st.attrs["metrics"][ref], D.display_name(ref),
                         COLORS["wiseft_e2e"], annotate_gain=True)
        model = D.main_model(st)
        fig.suptitle("Fig. 16: accuracy vs. α on the transfer datasets (E2E)"
                     + (f" — {D.model_label(model[0])}" if model else ""), fontsize=10)
        _legend_below(fig, axes)
        finalize(fig)
    return fig


# -------------------------------------------------------------------------------------------- Fig. 17
def requires_fig17(df: pd.DataFrame) -> str | None:
    """Fig. 17 needs k-shot LC rows (``method='kshot'``, ``extra.shots``) swept over α."""
    if df is None or df.empty:
        return "no results rows; run the finetune step with finetune.lc.shots set"
    st = D.settings_table(df)
    ks = st[st["method"] == "kshot"]
    if ks.empty or "extra_shots" not in ks.columns or ks["extra_shots"].nunique() < 1:
        return "this profile has no low-data runs (method 'kshot' rows with extra.shots); set finetune.lc.shots"
    if ks["alpha"].nunique() < 2:
        return "the k-shot runs have no α sweep (rows at several α)"
    return None


def kshot_gains(df: pd.DataFrame, alphas: Sequence[float] = FIG17_ALPHAS) -> pd.DataFrame:
    """The data of Fig. 17: per shots k and α, reference accuracy and its gains, in percentage points.

    The accuracy is the mean over the reference datasets (the paper averages 7 datasets). Returns columns
    ``shots, alpha, acc, gain_zeroshot, gain_lc`` with ``alpha = 'optimal'`` rows holding the best α per k
    (its value in ``best_alpha``).
    """
    st = D.settings_table(df)
    refs = st.attrs["references"]
    ks = st[st["method"] == "kshot"].copy()
    ks["acc"] = 100 * ks[refs].mean(axis=1)
    zs = D.zeroshot_point(st)
    zs_acc = 100 * float(np.nanmean([zs[r] for r in refs])) if zs is not None else np.nan
    rows = []
    for k, grp in ks.groupby("extra_shots", sort=True):
        grp = grp.sort_values("alpha")
        at0 = grp[np.isclose(grp["alpha"], 0)]["acc"]
        base_zs = float(at0.iloc[0]) if len(at0) and np.isnan(zs_acc) else zs_acc
        lc = grp[np.isclose(grp["alpha"], 1)]["acc"]
        lc_acc = float(lc.iloc[0]) if len(lc) else np.nan
        for a in alphas:
            hit = grp[np.isclose(grp["alpha"], a)]
            if len(hit):
                acc = float(hit["acc"].iloc[0])
                rows.append(dict(shots=int(k), alpha=f"{a:g}", acc=acc, gain_zeroshot=acc - base_zs,
                                 gain_lc=acc - lc_acc, best_alpha=a))
        best = grp.iloc[int(np.nanargmax(grp["acc"].to_numpy()))]
        rows.append(dict(shots=int(k), alpha="optimal", acc=float(best["acc"]), gain_zeroshot=best["acc"] - base_zs,
                         gain_lc=best["acc"] - lc_acc, best_alpha=float(best["alpha"])))
    return pd.DataFrame(rows)


def fig17(df: pd.DataFrame) -> Figure:
    """Paper Fig. 17: low-data regime, gain over zero-shot and over the LC vs. shots per class.

    One curve per α ∈ {0, 0.25, 0.5, 0.75, 1} and the optimal α per k; the x-axis (shots per class) is log scale.
    """
    gains = kshot_gains(df)
    labels = [f"{a:g}" for a in FIG17_ALPHAS] + ["optimal"]
    colors = dict(zip(labels, [plt.get_cmap("viridis")(i / (len(labels) - 2)) for i in range(len(labels) - 1)]
                      + [COLORS["wiseft_lc"]]))
    with paper_style():
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        for ax, col, title in ((axes[0], "gain_zeroshot", "Gain over the zero-shot model"),
                               (axes[1], "gain_lc", "Gain over the linear classifier (α = 1)")):
            for label in labels:
                part = gains[gains["alpha"] == label]
                if part.empty:
                    continue
                ax.plot(part["shots"], part[col], marker="o", markersize=4, color=colors[label],
                        linewidth=2.4 if label == "optimal" else 1.5,
                        linestyle="--" if label == "optimal" else "-",
                        label="optimal α" if label == "optimal" else f"α = {label}")
            ax.axhline(0, color=COLORS["diagonal"], linewidth=1)
            ax.set_xscale("log")
            ticks = sorted(gains["shots"].unique())
            ax.set_xticks(ticks, [str(t) for t in ticks])
            ax.minorticks_off()
            ax.set_xlabel("examples per class (k)")
            ax.set_ylabel("gain in accuracy (percentage points)")
            ax.set_title(title)
        fig.suptitle(f"Fig. 17: low-data regime — {D.run_context(D.settings_table(df))}", fontsize=10)
        legend_outside(axes[1])
        fig.tight_layout()
        finalize(fig)
    return fig
