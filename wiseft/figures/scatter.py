"""Reference accuracy vs. shift accuracy on logit axes: paper Figs. 1, 7, 9, 10 and the panels they share.

One panel shows the zero-shot model (and, with several, the linear fit to the zero-shot models in logit space:
the effective-robustness line), the fine-tuned models, the WiSE-FT curves with α = 0.5 marked, optional
user-supplied models (a CSV with columns ``name, group, dataset, top1``) with one fit per group, and y = x.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..errors import WiseftError
from . import data as D
from .intervals import draw_er_line, draw_errorbars, point_intervals
from .layout import defer_label, finalize
from .style import (COLORS, MARKERS, alpha_marker_kw, draw_diagonal, legend_outside, logit_axes, paper_style,
                    plottable)

log = logging.getLogger(__name__)

__all__ = ["Series", "figure_legend", "load_baseline_models", "baseline_model_points", "draw_panel", "fig7", "fig9",
           "fig10", "core_series", "requires_scatter", "requires_fig9", "requires_fig10", "FURTHER_SHIFTS",
           "further_shifts"]

#: The shifts of the paper's Fig. 9 / Table 6 (video, CIFAR and WILDS).
FURTHER_SHIFTS = ("imagenet-vid-robust", "ytbb-robust", "cifar10.1", "cifar10.2", "fmow-ood", "iwildcam-ood")


@dataclass
class Series:
    """One thing drawn on a panel: a curve (``curve=True``) or a set of points, in fractions."""

    label: str
    x: np.ndarray
    y: np.ndarray
    color: str
    curve: bool = False
    marker: str = "o"
    size: float = 30.0
    alpha_values: np.ndarray | None = None   # α of each point of a curve, to mark α = 0.5
    annotations: list[str] = field(default_factory=list)
    linestyle: str = "-"
    ci: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None  # 95% (x_lo, x_hi, y_lo, y_hi)
    hollow: bool = False                      # the paper's own numbers: drawn grey-edged, behind the run's


# ------------------------------------------------------------------------------------ baseline models CSV
def load_baseline_models(path: str | Path) -> pd.DataFrame:
    """Read a CSV of extra models for Fig. 1 (columns ``name, group, dataset, top1``; top1 in % or fraction).

    Raises:
        WiseftError: naming the file and the missing columns.
    """
    path = Path(path).expanduser()
    try:
        frame = pd.read_csv(path)
    except (OSError, pd.errors.ParserError) as e:
        raise WiseftError(f"baseline models file {str(path)!r} could not be read: {e}") from e
    missing = {"name", "group", "dataset", "top1"} - set(frame.columns)
    if missing:
        raise WiseftError(f"baseline models file {str(path)!r} lacks the columns {sorted(missing)}; expected "
                          "name, group, dataset, top1 (one row per model and dataset)")
    frame["top1"] = pd.to_numeric(frame["top1"], errors="coerce")
    if frame["top1"].max() > 1.0:  # given in percent
        frame["top1"] = frame["top1"] / 100.0
    return frame


def baseline_model_points(models: pd.DataFrame | None, x_dataset: str, y_datasets: Sequence[str]) -> pd.DataFrame:
    """``name, group, x, y`` for every model with all the datasets; ``y`` is the mean over ``y_datasets``."""
    if models is None or models.empty or not y_datasets:
        return pd.DataFrame(columns=["name", "group", "x", "y"])
    wide = models.pivot_table(index=["name", "group"], columns="dataset", values="top1", aggfunc="last")
    needed = [x_dataset, *y_datasets]
    if not set(needed) <= set(wide.columns):
        return pd.DataFrame(columns=["name", "group", "x", "y"])
    wide = wide.dropna(subset=needed)
    return pd.DataFrame({"name": wide.index.get_level_values(0), "group": wide.index.get_level_values(1),
                         "x": wide[x_dataset].to_numpy(), "y": wide[list(y_datasets)].mean(axis=1).to_numpy()})


# ------------------------------------------------------------------------------------------- collecting
def _frame(rows: pd.DataFrame | pd.Series) -> pd.DataFrame:
    return rows.to_frame().T if isinstance(rows, pd.Series) else rows


def _xy(rows: pd.DataFrame | pd.Series, x: str, y: str) -> tuple[np.ndarray, np.ndarray]:
    rows = _frame(rows)
    return plottable(rows[x]), plottable(rows[y])  # 0% and 100% have no place on logit axes


def _ci(rows: pd.DataFrame | pd.Series, x: str, y: str, attrs) -> tuple[np.ndarray, ...]:
    rows = _frame(rows)
    return (*point_intervals(rows, x, attrs), *point_intervals(rows, y, attrs))


def core_series(st: pd.DataFrame, x: str, y: str, model=None, modes: Sequence[str] = ("e2e", "lc"),
                curves: bool = True, other_models: bool = True) -> list[Series]:
    """Zero-shot (every model), fine-tuned and WiSE-FT series of the run for one panel."""
    model = model or D.main_model(st)
    out: list[Series] = []
    zs_all = st[st["method"] == "zeroshot"]
    zs = D.zeroshot_point(st, model)
    if other_models and len(zs_all) > 1:
        others = zs_all.drop(index=zs.name) if zs is not None and zs.name in zs_all.index else zs_all
        ox, oy = _xy(others, x, y)
        out.append(Series("other zero-shot models", ox, oy, COLORS["zeroshot"], marker="s", size=22,
                          ci=_ci(others, x, y, st.attrs)))
    if zs is not None:
        out.append(Series("zero-shot", *_xy(zs, x, y), COLORS["zeroshot"], marker=MARKERS["zeroshot"], size=160,
                          ci=_ci(zs, x, y, st.attrs)))
    for mode in modes:
        ft = D.finetuned_point(st, mode, model)
        if ft is not None:
            out.append(Series(f"fine-tuned ({mode.upper()})", *_xy(ft, x, y), COLORS[f"finetuned_{mode}"],
                              marker=MARKERS["finetuned"] if mode == "e2e" else "d", size=55,
                              ci=_ci(ft, x, y, st.attrs)))
        if curves:
            curve = D.sweep(st, mode, model=model)
            if curve["alpha"].nunique() >= 2:
                out.append(Series(f"WiSE-FT ({mode.upper()})", *_xy(curve, x, y), COLORS[f"wiseft_{mode}"],
                                  curve=True, alpha_values=curve["alpha"].to_numpy(dtype=float),
                                  linestyle="-" if mode == "e2e" else "-."))
    return out


def _zeroshot_fit_points(st: pd.DataFrame, x: str, y: str, models: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    zs = st[st["method"] == "zeroshot"]
    xs, ys = list(zs[x].astype(float)), list(zs[y].astype(float))
    zgroup = models[models["group"].astype(str).str.lower().str.contains("zero")] if not models.empty else models
    xs += list(zgroup["x"]) if not zgroup.empty else []
    ys += list(zgroup["y"]) if not zgroup.empty else []
    keep = np.isfinite(xs) & np.isfinite(ys)
    return np.asarray(xs)[keep], np.asarray(ys)[keep]


# ---------------------------------------------------------------------------------------------- drawing
def draw_panel(ax: Axes, series: list[Series], xlabel: str, ylabel: str, *, fits: dict[str, tuple] | None = None,
               models: pd.DataFrame | None = None, diagonal: bool = True, title: str | None = None,
               square: bool = False, legend: bool = True, show_notes: bool = True,
               diagonal_share: float = 0.0) -> list[str]:
    """Draw ``series`` on logit axes, then the fits (``label -> (xs, ys, color)``), user models and y = x.

    Points get their 95% intervals; a fit the data cannot support leaves a note on the axes instead of a line.
    Point labels are deferred to :func:`wiseft.figures.layout.finalize`, which places them clear of each other.
    Returns the notes of fits that could not be drawn (also written on the axes unless ``show_notes`` is off).
    """
    models = models if models is not None else pd.DataFrame(columns=["name", "group", "x", "y"])
    xs = np.concatenate([s.x for s in series] + [models["x"].to_numpy(dtype=float)]) if series else np.array([])
    ys = np.concatenate([s.y for s in series] + [models["y"].to_numpy(dtype=float)]) if series else np.array([])
    logit_axes(ax, xs, ys, xlabel, ylabel, square=square, diagonal_share=diagonal_share if diagonal else 0.0)
    notes = [n for n in (draw_er_line(ax, fx, fy, label, color) for label, (fx, fy, color) in (fits or {}).items())
             if n]
    if diagonal:
        draw_diagonal(ax)
    for i, (group, pts) in enumerate(models.groupby("group", sort=False)):
        ax.scatter(pts["x"], pts["y"], s=14, color=plt.get_cmap("tab10")(i % 10), alpha=0.7, marker="o",
                   label=str(group), zorder=2)
    for s in series:
        if s.curve:
            ax.plot(s.x, s.y, color=s.color, linestyle=s.linestyle, linewidth=1.4 if s.hollow else 2.0,
                    marker=".", markersize=4, label=s.label, zorder=2.5 if s.hollow else 3)
            if s.alpha_values is not None and not s.hollow:
                half = np.isclose(s.alpha_values, 0.5)
                if half.any():
                    ax.scatter(s.x[half], s.y[half], **alpha_marker_kw(s.color))
        else:
            draw_errorbars(ax, s.x, s.y, s.ci, s.color)
            ax.scatter(s.x, s.y, s=s.size, color=s.color, marker=s.marker, edgecolor="black",
                       linewidth=0.9 if s.hollow else 0.5, label=s.label, zorder=2.5 if s.hollow else 4)
        for text, px, py in zip(s.annotations, s.x, s.y):
            defer_label(ax, text, px, py, s.color)
    if any(s.curve and s.alpha_values is not None and np.isclose(s.alpha_values, 0.5).any() for s in series):
        ax.scatter([], [], label="α = 0.5", **alpha_marker_kw("black"))
    if notes and show_notes:
        ax.text(0.02, 0.98, "\n".join(notes), transform=ax.transAxes, va="top", ha="left", fontsize=6.5,
                color="#444444", bbox=dict(boxstyle="round", facecolor="white", edgecolor="#bbbbbb"))
    if title:
        ax.set_title(title)
    if legend:
        legend_outside(ax)
    return notes


def figure_legend(fig: Figure, axes) -> None:
    """One legend for a grid of panels, below them, with each label once."""
    handles: dict[str, object] = {}
    for ax in np.ravel(axes):
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    if handles:
        ncol = min(len(handles), 4)
        fig.tight_layout(rect=(0, 0.035 * math.ceil(len(handles) / ncol) + 0.02, 1, 1))
        fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=ncol, fontsize=8,
                   bbox_to_anchor=(0.5, 0.0), frameon=False)


def _fits(st: pd.DataFrame, x: str, y: str, models: pd.DataFrame) -> dict[str, tuple]:
    fits: dict[str, tuple] = {}
    zx, zy = _zeroshot_fit_points(st, x, y, models)
    fits["effective-robustness fit (zero-shot models)"] = (zx, zy, COLORS["zeroshot"])
    for group, pts in models.groupby("group", sort=False):
        if "zero" not in str(group).lower() and len(pts) >= 3:
            fits[f"linear fit ({group})"] = (pts["x"].to_numpy(), pts["y"].to_numpy(), COLORS["standard"])
    return fits


def _gain_text(st: pd.DataFrame, x: str, y: str, mode: str, model=None) -> str | None:
    ft = D.finetuned_point(st, mode, model)
    curve = D.sweep(st, mode, model=model)
    half = curve[np.isclose(curve["alpha"], 0.5)]
    if ft is None or half.empty:
        return None
    dx, dy = 100 * (half[x].iloc[0] - ft[x]), 100 * (half[y].iloc[0] - ft[y])
    return f"WiSE-FT α=0.5 vs fine-tuned ({mode.upper()}): {dx:+.1f} pp ref, {dy:+.1f} pp shift"


# ------------------------------------------------------------------------------------------- requires
def requires_scatter(df: pd.DataFrame) -> str | None:
    """What a reference-vs-shift figure lacks, or ``None``."""
    if df is None or df.empty:
        return "no results rows; run the zeroshot, finetune and interpolate steps first"
    if not D.reference_datasets(df):
        return "no dataset with role 'reference' in the results"
    if not D.shift_datasets(df):
        return "this profile has no distribution shifts (rows with role 'shift'); a shift figure needs one"
    st = D.settings_table(df)
    if D.zeroshot_point(st) is None:
        return "no zero-shot results (method 'zeroshot' or a WiSE-FT row at α = 0)"
    if not D.modes_with_sweep(st):
        return "no WiSE-FT α sweep (method 'wiseft' rows with two or more α); run the interpolate step"
    return None


def requires_fig9(df: pd.DataFrame) -> str | None:
    """Fig. 9 / Table 6 need one of the paper's further shifts (video, CIFAR-10.x, WILDS)."""
    missing = requires_scatter(df)
    if missing:
        return missing
    if not further_shifts(df):
        return ("this profile has none of the further shifts of Fig. 9 / Table 6 (" + ", ".join(FURTHER_SHIFTS)
                + "); use the imagenet-vitl14-336, cifar10-vitb32, wilds-fmow or wilds-iwildcam profiles")
    return None


def requires_fig10(df: pd.DataFrame) -> str | None:
    """Fig. 10 needs the WiSE-FT E2E sweep and an output-space ensemble sweep."""
    missing = requires_scatter(df)
    if missing:
        return missing
    st = D.settings_table(df)
    if not any(len(D.sweep(st, "e2e", m)) >= 2 for m in ("ose", "ose_prob")) or "e2e" not in D.modes_with_sweep(st):
        return ("no output-space ensemble sweep (method 'ose' with mode 'e2e') beside the WiSE-FT E2E sweep; "
                "set interpolation.ose: true")
    return None


# -------------------------------------------------------------------------------------------- figures
def axis_label(dataset: str, metric: str) -> str:
    """``ImageNet accuracy (%)``: the dataset's paper name, its metric and the unit."""
    return f"{D.display_name(dataset)} {D.metric_name(metric)} (%)"


def avg_label(st: pd.DataFrame) -> str:
    """The y label of the average over the shifts."""
    return f"Avg. accuracy over {len(st.attrs['shifts'])} distribution shifts (%)"


def _shift_grid(df: pd.DataFrame, shifts: Sequence[str], *, annotate: bool, baseline_models=None,
                ncols: int = 3, title: str = "") -> Figure:
    st = D.settings_table(df)
    ref = st.attrs["reference"]
    metrics = st.attrs["metrics"]
    if isinstance(baseline_models, (str, Path)):
        baseline_models = load_baseline_models(baseline_models)
    ncols = min(ncols, len(shifts))
    nrows = math.ceil(len(shifts) / ncols)
    with paper_style():
        fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 4.0 * nrows), squeeze=False)
        for ax, shift in zip(axes.flat, shifts):
            x = D.subsampled_reference(st.attrs["datasets"], ref, shift)
            series = core_series(st, x, shift)
            models = baseline_model_points(baseline_models, x, [shift])
            fit_notes = draw_panel(ax, series, axis_label(x, metrics[x]), axis_label(shift, metrics[shift]),
                                   fits=_fits(st, x, shift, models), models=models, title=D.display_name(shift),
                                   legend=False, diagonal_share=0.3, show_notes=False)
            if annotate:
                notes = [t for t in (_gain_text(st, x, shift, m) for m in D.modes_with_sweep(st)) if t]
                ax.text(0.98, 0.02, "\n".join(notes), transform=ax.transAxes, va="bottom", ha="right", fontsize=6,
                        bbox=dict(boxstyle="round", facecolor="white", alpha=0.8))
        for ax in list(axes.flat)[len(shifts):]:
            ax.set_visible(False)
        fig.suptitle(f"{title} — {D.run_context(st)}" + (f"\n({fit_notes[0]})" if shifts and fit_notes else ""),
                     fontsize=10)
        figure_legend(fig, axes)
        finalize(fig)
    return fig


def fig7(df: pd.DataFrame, *, baseline_models: pd.DataFrame | str | Path | None = None) -> Figure:
    """Paper Fig. 7: one panel per shift against the reference.

    For shifts that cover a subset of the reference's classes (ImageNet-R, -A, ObjectNet) the x-axis is the
    class-subsampled reference (``imagenet-sub-r`` …) when the run evaluated it.
    """
    shifts = D.shift_datasets(df)
    return _shift_grid(df, shifts, annotate=False, baseline_models=baseline_models,
                       title="Each distribution shift vs. the reference")


def fig9(df: pd.DataFrame, *, datasets: Sequence[str] | None = None) -> Figure:
    """Paper Fig. 9: the further shifts (video, CIFAR-10.1/10.2, FMoW, iWildCam), each against its reference.

    Each panel uses the datasets' own metrics (pm-0, worst-region accuracy, macro-F1) and is annotated with the
    gains of WiSE-FT at α = 0.5 over each fine-tuned model, as in the paper.
    """
    return _shift_grid(df, list(datasets) if datasets else further_shifts(df), annotate=True, title="Further distribution shifts")


def further_shifts(df: pd.DataFrame) -> list[str]:
    """The run's datasets among Fig. 9's further shifts, in the paper's order. The video sets count whatever
    their role: ImageNet profiles evaluate them as extra sets, outside the average over the five shifts."""
    present = set(D.dataset_roles(df))
    return [s for s in FURTHER_SHIFTS if s in present]


def fig10(df: pd.DataFrame) -> Figure:
    """Paper Fig. 10: weight-space (WiSE-FT) vs. output-space ensembles of the E2E models.

    Draws the WiSE-FT E2E curve, the logit ensemble (``ose``), and where present the probability ensemble
    (``ose_prob``) and Fisher merging (``fisher``), each over α, on reference vs. average-shift axes.
    """
    st = D.settings_table(df)
    ref = st.attrs["reference"]
    series = core_series(st, ref, D.AVG_SHIFTS, modes=("e2e",), other_models=False)
    for label, label_text in (("ose", "output-space ensemble (logits)"), ("ose_prob", "output-space ensemble (probs)"),
                              ("fisher", "Fisher-weighted merge")):
        curve = D.sweep(st, "e2e", label)
        if len(curve):
            series.append(Series(label_text, *_xy(curve, ref, D.AVG_SHIFTS), COLORS[label], curve=True,
                                 alpha_values=curve["alpha"].to_numpy(dtype=float),
                                 linestyle={"ose": "--", "ose_prob": ":", "fisher": "-."}[label]))
    with paper_style():
        fig, ax = plt.subplots(figsize=(8, 5))
        draw_panel(ax, series, axis_label(ref, st.attrs["metrics"][ref]), avg_label(st), diagonal=False,
                   title=f"Weight-space vs. output-space ensembles (E2E)\n{D.run_context(st)}")
        fig.tight_layout()
        finalize(fig)
    return fig
