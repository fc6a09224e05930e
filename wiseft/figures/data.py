"""Turn results rows into the tables every figure draws from.

The results store is long: one row per (setting, dataset, metric). Figures and tables want one row per
*setting* (zero-shot, fine-tuned E2E, WiSE-FT E2E at α = 0.35, EMA with decay 0.999 …) and one column per
dataset, in the dataset's primary metric, plus the paper's two averages:

- ``avg_shifts``: the mean over the run's shift datasets (role ``shift``), NaN unless all are present;
- ``avg``: the mean of the reference and ``avg_shifts`` (the paper's "Avg(ref, shifts)" column).

:func:`settings_table` builds that wide table; the small selectors below pick the zero-shot point, the
fine-tuned endpoints and the α sweeps out of it. Values stay fractions here; tables convert to percent.
"""

from __future__ import annotations

import json
import logging
import math
import re
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

__all__ = [
    "model_label",
    "data_label",
    "run_context",
    "KNOBS",
    "AVG_SHIFTS",
    "AVG",
    "settings_table",
    "dataset_roles",
    "primary_metrics",
    "reference_datasets",
    "shift_datasets",
    "main_model",
    "zeroshot_point",
    "finetuned_point",
    "sweep",
    "modes_with_sweep",
    "optimal_alpha",
    "subsampled_reference",
    "display_name",
]

#: Keys of ``extra`` that distinguish one setting from another (other keys are bookkeeping and ignored).
KNOBS = ("name", "lr", "epochs", "optimizer", "lambda", "decay", "alpha", "shots", "seed", "step", "iters", "init",
         "regularizer")
AVG_SHIFTS = "avg_shifts"
AVG = "avg"
_KEY = ["profile", "model", "pretrained", "method", "mode", "alpha", "knobs"]

#: The paper's names for the registry's datasets; anything else is shown as registered.
_DISPLAY = {
    "imagenet": "ImageNet", "imagenet-v2": "ImageNetV2", "imagenet-r": "ImageNet-R",
    "imagenet-sketch": "ImageNet Sketch", "objectnet": "ObjectNet", "imagenet-a": "ImageNet-A",
    "imagenet-sub-r": "ImageNet (class-subsampled)", "imagenet-sub-a": "ImageNet (class-subsampled)",
    "imagenet-sub-objectnet": "ImageNet (class-subsampled)", "imagenet-sub-vid-robust": "ImageNet (class-subsampled)",
    "imagenet-sub-ytbb-robust": "ImageNet (class-subsampled)",
    "imagenet-vid-robust": "ImageNet-Vid-Robust", "ytbb-robust": "YTBB-Robust",
    "cifar10": "CIFAR-10", "cifar10.1": "CIFAR-10.1", "cifar10.2": "CIFAR-10.2", "cifar100": "CIFAR-100",
    "stanford-cars": "Cars", "dtd": "DTD", "sun397": "SUN397", "food101": "Food101",
    "fmow": "FMoW (ID)", "fmow-ood": "FMoW (OOD)", "iwildcam": "iWildCam (ID)", "iwildcam-ood": "iWildCam (OOD)",
    AVG_SHIFTS: "Avg shifts", AVG: "Avg (ref, shifts)",
}
_METRIC_DISPLAY = {"top1": "accuracy", "macro_f1": "macro-F1", "worst_region_acc": "worst-region accuracy",
                   "pm0": "pm-0 accuracy", "pm10": "pm-10 accuracy"}


def display_name(dataset: str) -> str:
    """The paper's label for a registry dataset name (``imagenet-r`` → ``ImageNet-R``)."""
    return _DISPLAY.get(dataset, dataset)


def metric_name(metric: str) -> str:
    """A readable metric label (``macro_f1`` → ``macro-F1``)."""
    return _METRIC_DISPLAY.get(metric, metric)


# ------------------------------------------------------------------------------------------ preparation
def _knob_key(extra: Any) -> str:
    if not isinstance(extra, Mapping):
        return "{}"
    return json.dumps({k: extra[k] for k in KNOBS if k in extra}, sort_keys=True, default=str)


def _clean(df: pd.DataFrame) -> pd.DataFrame:
    """Drop duplicate measurements (a re-evaluated setting keeps its last row) and add the knob key."""
    if df is None or df.empty:
        return pd.DataFrame(columns=[*_KEY, "dataset", "role", "metric", "value", "extra"])
    d = df.copy()
    for col in ("profile", "model", "pretrained", "mode", "alpha", "extra", "role"):
        if col not in d.columns:
            d[col] = None
    d["knobs"] = d["extra"].map(_knob_key)
    d["alpha"] = pd.to_numeric(d["alpha"], errors="coerce").round(6)
    for col in ("profile", "model", "pretrained", "mode"):
        d[col] = d[col].astype(object).where(d[col].notna(), "")
    return d.drop_duplicates(subset=[*_KEY, "dataset", "metric"], keep="last")


def primary_metrics(df: pd.DataFrame) -> dict[str, str]:
    """The primary metric of each dataset: the first metric recorded for it.

    Protocols report their primary metric first, and the evaluation engine writes rows in that order.
    """
    out: dict[str, str] = {}
    if df is None or df.empty:
        return out
    for dataset, metric in zip(df["dataset"], df["metric"]):
        out.setdefault(dataset, metric)
    return out


def dataset_roles(df: pd.DataFrame) -> dict[str, str]:
    """``dataset -> role`` (the most frequent role recorded for it), in first-seen order."""
    if df is None or df.empty:
        return {}
    roles = df.groupby("dataset", sort=False)["role"].agg(lambda s: s.value_counts().index[0])
    return {d: roles[d] for d in dict.fromkeys(df["dataset"])}


def reference_datasets(df: pd.DataFrame) -> list[str]:
    """Datasets with role ``reference``, in first-seen order."""
    return [d for d, r in dataset_roles(df).items() if r == "reference"]


def shift_datasets(df: pd.DataFrame) -> list[str]:
    """Datasets with role ``shift``, in first-seen order."""
    return [d for d, r in dataset_roles(df).items() if r == "shift"]


def subsampled_reference(df_or_datasets: pd.DataFrame | list[str], reference: str, shift: str) -> str:
    """The class-subsampled reference that goes with ``shift`` when the run has one, else ``reference``.

    ImageNet-R, -A and ObjectNet cover a subset of ImageNet's classes, so the paper's Fig. 7 puts them against
    ImageNet accuracy on those classes only: ``imagenet-sub-r`` for ``imagenet-r``, ``imagenet-sub-objectnet``
    for ``objectnet``.
    """
    datasets = set(df_or_datasets["dataset"]) if isinstance(df_or_datasets, pd.DataFrame) else set(df_or_datasets)
    suffixes = [shift[len(reference) + 1:]] if shift.startswith(reference + "-") else []
    suffixes.append(shift)
    for suffix in suffixes:
        candidate = f"{reference}-sub-{suffix}"
        if candidate in datasets:
            return candidate
    return reference


# ------------------------------------------------------------------------------------------ the wide table
def settings_table(df: pd.DataFrame, metrics: Mapping[str, str] | None = None) -> pd.DataFrame:
    """One row per evaluated setting, one column per dataset (primary metric, a fraction).

    Args:
        df: results rows (:func:`wiseft.results.load_results`).
        metrics: ``dataset -> metric`` to plot instead of each dataset's primary metric.

    Returns:
        Columns ``profile, model, pretrained, method, mode, alpha, knobs`` (JSON of the knobs in ``extra``),
        one ``extra_<knob>`` column per knob that occurs, the datasets, ``avg_shifts`` and ``avg``. Empty
        strings stand for a missing ``mode``/``profile``; ``alpha`` is NaN where it does not apply.
        ``attrs`` holds ``reference``, ``shifts``, ``metrics`` and ``datasets``.
    """
    d = _clean(df)
    chosen = dict(primary_metrics(d))
    chosen.update(metrics or {})
    d = d[d["metric"] == d["dataset"].map(chosen)]
    roles = dataset_roles(d)
    datasets = list(roles)
    if d.empty:
        wide = pd.DataFrame(columns=[*_KEY, *datasets])
    else:
        wide = d.groupby([*_KEY, "dataset"], dropna=False, sort=False)["value"].last().unstack("dataset")
        wide = wide.reindex(columns=datasets).reset_index()
    refs = [x for x in datasets if roles[x] == "reference"]
    shifts = [x for x in datasets if roles[x] == "shift"]
    wide[AVG_SHIFTS] = wide[shifts].mean(axis=1, skipna=False) if shifts else np.nan
    if refs and shifts:
        # Each profile has one reference; a suite's members each fill their own column.
        ref_values = wide[refs].bfill(axis=1).iloc[:, 0]
        wide[AVG] = (ref_values + wide[AVG_SHIFTS]) / 2
    else:
        wide[AVG] = np.nan
    knob_dicts = wide["knobs"].map(json.loads) if len(wide) else pd.Series([], dtype=object)
    for knob in KNOBS:
        if len(wide) and any(knob in k for k in knob_dicts):
            wide[f"extra_{knob}"] = knob_dicts.map(lambda k, knob=knob: k.get(knob, np.nan))
    sizes = {}
    if "n" in d.columns:
        sizes = pd.to_numeric(d["n"], errors="coerce").groupby(d["dataset"]).max().dropna().astype(int).to_dict()
    wide.attrs.update(reference=refs[0] if refs else None, references=refs, shifts=shifts,
                      metrics={x: chosen[x] for x in datasets}, datasets=datasets, n=sizes)
    return wide


def main_model(st: pd.DataFrame) -> tuple[str, str] | None:
    """``(model, pretrained)`` of the run's own model: the one with the most WiSE-FT rows (else any)."""
    if st.empty:
        return None
    pool = st[st["method"] == "wiseft"]
    pool = pool if not pool.empty else st
    counts = pool.groupby(["model", "pretrained"], sort=False).size().sort_values(ascending=False, kind="stable")
    return tuple(counts.index[0])  # type: ignore[return-value]


def _of_model(st: pd.DataFrame, model: tuple[str, str] | None) -> pd.DataFrame:
    """Rows of ``model``; ``None`` means the run's own model (:func:`main_model`)."""
    model = model if model is not None else main_model(st)
    if model is None:
        return st
    return st[(st["model"] == model[0]) & (st["pretrained"] == model[1])]


def sweep(st: pd.DataFrame, mode: str, method: str = "wiseft", model: tuple[str, str] | None = None,
          knobs: str | None = None) -> pd.DataFrame:
    """Rows of one α sweep (``method``, ``mode``) of ``model`` (default: the run's), sorted by α."""
    rows = _of_model(st, model)
    rows = rows[(rows["method"] == method) & (rows["mode"] == mode) & rows["alpha"].notna()]
    if knobs is not None:
        rows = rows[rows["knobs"] == knobs]
    return rows.sort_values("alpha", kind="stable").reset_index(drop=True)


def modes_with_sweep(st: pd.DataFrame, method: str = "wiseft", model: tuple[str, str] | None = None) -> list[str]:
    """Modes (``e2e`` first, then ``lc``) that have an α sweep of at least two values."""
    out = []
    for mode in ("e2e", "lc"):
        if sweep(st, mode, method, model)["alpha"].nunique() >= 2:
            out.append(mode)
    return out


def zeroshot_point(st: pd.DataFrame, model: tuple[str, str] | None = None) -> pd.Series | None:
    """The zero-shot model's row: ``method='zeroshot'``, else a WiSE-FT row at α = 0."""
    rows = _of_model(st, model)
    zs = rows[rows["method"] == "zeroshot"]
    if not zs.empty:
        return zs.iloc[-1]
    for mode in ("e2e", "lc"):
        at0 = sweep(rows, mode)
        at0 = at0[np.isclose(at0["alpha"], 0.0)]
        if not at0.empty:
            return at0.iloc[-1]
    return None


def finetuned_point(st: pd.DataFrame, mode: str, model: tuple[str, str] | None = None) -> pd.Series | None:
    """The fine-tuned model of ``mode``: ``method='finetuned'``, else a WiSE-FT row at α = 1."""
    rows = _of_model(st, model)
    ft = rows[(rows["method"] == "finetuned") & (rows["mode"] == mode)]
    if not ft.empty:
        return ft.iloc[-1]
    at1 = sweep(rows, mode)
    at1 = at1[np.isclose(at1["alpha"], 1.0)]
    return at1.iloc[-1] if not at1.empty else None


def optimal_alpha(curve: pd.DataFrame, column: str) -> tuple[float, float]:
    """``(α, value)`` maximising ``column`` along a sweep; ties go to the smallest α.

    This is the paper's "optimal α": one α per table column, chosen to maximise that column (Table 1 caption).
    """
    values = curve[column].to_numpy(dtype=float)
    if values.size == 0 or np.all(np.isnan(values)):
        return math.nan, math.nan
    i = int(np.nanargmax(values))
    return float(curve["alpha"].iloc[i]), float(values[i])


def model_label(model: str) -> str:
    """The paper's spelling of an open_clip model name (``ViT-B-16`` → ``ViT-B/16``)."""
    return re.sub(r"^ViT-([BLHg])-(\d+)", r"ViT-\1/\2", str(model))


def data_label(datasets: Sequence[str], profile: str = "") -> str:
    """What data a figure shows, in words: ``offline digits world (mini)`` or the reference's paper name."""
    datasets = [d for d in datasets if d]
    if datasets and all(str(d).startswith("world-") for d in datasets):
        return "offline digits world" + (f" ({profile})" if profile else "")
    return display_name(datasets[0]) if datasets else (profile or "")


def run_context(st: pd.DataFrame) -> str:
    """``<data>, <model>`` of a settings table, for figure titles (``ImageNet, ViT-B/16``)."""
    model = main_model(st)
    profiles = [p for p in dict.fromkeys(st["profile"]) if p] if "profile" in st.columns and len(st) else []
    data = data_label(st.attrs.get("references") or st.attrs.get("datasets") or [],
                      profiles[0] if len(profiles) == 1 else "")
    return ", ".join(x for x in (data, model_label(model[0]) if model else "") if x)
