"""Short, readable summaries for the pipeline notebooks: fine-tuning hyperparameters, baselines, diversity.

Each function returns a small DataFrame in % (or the knob's own unit) that a notebook prints with
:func:`wiseft.notebook.markdown`, instead of a list of names or a long raw table.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import WiseftError
from .figures import data as D

__all__ = ["finetune_table", "baselines_summary", "analyses_summary"]


def _sidecars(run_dir: Path) -> list[tuple[str, dict]]:
    out = []
    for path in sorted((Path(run_dir) / "checkpoints").glob("finetuned_*.json")):
        try:
            out.append((path.stem, json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, json.JSONDecodeError) as e:
            raise WiseftError(f"checkpoint sidecar {str(path)!r} could not be read: {e}; re-run the finetune "
                              "step") from e
    return out


def _fmt(value, spec: str, scale: float = 1.0, suffix: str = "") -> str:
    """``value`` formatted, or "—" where the sidecar does not record it."""
    return "—" if value is None else f"{scale * float(value):{spec}}{suffix}"


def finetune_table(run_dir: str | os.PathLike) -> pd.DataFrame:
    """One row per fine-tuned classifier of a run: mode, the hyperparameters it was trained with, the result.

    E2E runs show optimizer, learning rate, epochs, batch size, weight decay and the last training loss; LC runs
    the hyperparameters the random search chose and their held-out accuracy (%), and the shots of k-shot runs.
    """
    rows = []
    for name, meta in _sidecars(Path(run_dir)):
        extra = meta.get("extra", {})
        if "finetune" in extra:
            ft, hist = extra["finetune"], extra.get("history") or [{}]
            rows.append({"run": name.removeprefix("finetuned_"), "mode": "E2E", "optimizer": ft.get("optimizer"),
                         "lr": _fmt(ft.get("lr"), ".2g"), "epochs": ft.get("epochs"),
                         "batch": ft.get("batch_size"), "weight decay": ft.get("weight_decay"),
                         "regularizer": "—", "shots": "all",
                         "last loss / held-out acc.": "loss " + _fmt(hist[-1].get("loss"), ".3f")})
        elif "lc" in extra:
            lc = extra["lc"]
            hp = lc.get("hparams", {})
            rows.append({"run": name.removeprefix("finetuned_"), "mode": "LC", "optimizer": "(LC search)",
                         "lr": _fmt(hp.get("lr"), ".2g"), "epochs": hp.get("epochs"),
                         "batch": hp.get("batch_size"), "weight decay": _fmt(hp.get("weight_decay"), ".2g"),
                         "regularizer": lc.get("regularizer"), "shots": lc.get("shots") or "all",
                         "last loss / held-out acc.": "held-out " + _fmt(lc.get("heldout_acc"), ".1f", 100, "%")})
    return pd.DataFrame(rows).set_index("run") if rows else pd.DataFrame()


def baselines_summary(results: pd.DataFrame) -> pd.DataFrame:
    """Per baseline: settings tried, the best shift average (%) and its reference accuracy (%), beside WiSE-FT's
    best shift average in the same mode — a handful of rows instead of one per setting."""
    from .figures.baselines import BASELINE_METHODS

    st = D.settings_table(results)
    ref = st.attrs.get("reference")
    rows = []
    for method, (mode, _knob, label) in BASELINE_METHODS.items():
        part = st[st["method"] == method]
        part = part[part["mode"].isin([mode, ""])] if (part["mode"] == mode).any() else part
        if part.empty or ref is None:
            continue
        best = part.loc[part[D.AVG_SHIFTS].idxmax()]
        wise = D.sweep(st, mode)
        rows.append({"baseline": label, "mode": mode.upper(), "settings": len(part),
                     "best shift avg. (%)": round(100 * best[D.AVG_SHIFTS], 1),
                     f"its {D.display_name(ref)} (%)": round(100 * best[ref], 1),
                     "WiSE-FT best shift avg., same mode (%)":
                         round(100 * wise[D.AVG_SHIFTS].max(), 1) if len(wise) else np.nan})
    return pd.DataFrame(rows).set_index("baseline") if rows else pd.DataFrame()


def analyses_summary(analyses: pd.DataFrame) -> pd.DataFrame:
    """The diversity analyses averaged over the datasets: one row per measure, one column per comparison, in %
    (KL divergence in nats, confidence gaps in logits)."""
    from .figures.diversity import COMPARISON_NAMES, MEASURE_NAMES

    a = analyses.copy()
    a["comparison"] = a.get("comparison", pd.Series("zeroshot_vs_finetuned", index=a.index)).fillna(
        "zeroshot_vs_finetuned")
    wide = a.pivot_table(index="measure", columns="comparison", values="value", aggfunc="mean", sort=False)
    percent = ~wide.index.isin(["kl_divergence", "confidence_gap_zs", "confidence_gap_ft"])
    wide.loc[percent] = wide.loc[percent] * 100
    names = {**MEASURE_NAMES, "kl_divergence": "KL divergence (nats)",
             "confidence_gap_zs": "confidence gap of the first model (top-1 − top-2 logit)",
             "confidence_gap_ft": "confidence gap of the second model (top-1 − top-2 logit)"}
    wide.index = [names.get(m, m.replace("_", " ")) + ("" if m in names and not percent[i] else " (%)")
                  for i, m in enumerate(wide.index)]
    wide.columns = [COMPARISON_NAMES.get(c, c) for c in wide.columns]
    wide.index.name = f"mean over {a['dataset'].nunique()} datasets"
    return wide.round(2)
