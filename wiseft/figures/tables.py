"""The paper's tables from a run's results: Table 1, the sweep tables (4/5), Table 6 and Table 2.

Tables are DataFrames in percent (unrounded; :func:`to_markdown` rounds to one decimal as the paper does), with
the run's dataset registry names as columns plus ``avg_shifts`` and ``avg``. :func:`run_numbers` is the tidy form
of the same numbers that :mod:`wiseft.figures.paper` compares with the paper's.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

from . import data as D

__all__ = ["run_numbers", "table1", "sweep_table", "headline", "table6", "table2", "to_markdown", "requires_table1",
           "requires_sweep_table"]

_NUMBER_COLUMNS = ["method", "mode", "alpha", "dataset", "metric", "value"]


def run_numbers(df: pd.DataFrame, model: tuple[str, str] | None = None) -> pd.DataFrame:
    """Every number a paper table could hold, tidy: ``method, mode, alpha, dataset, metric, value`` (%).

    Methods: ``zeroshot``; ``finetuned`` per mode; ``wiseft`` per mode and α; ``wiseft_opt`` per mode and
    column, with the α that maximises that column in ``alpha`` (the paper's single α per column). Datasets
    include ``avg_shifts`` and ``avg``.
    """
    st = D.settings_table(df)
    if st.empty:
        return pd.DataFrame(columns=_NUMBER_COLUMNS)
    if st["profile"].nunique() > 1:  # a suite: each member has its own reference, zero-shot and fine-tuned rows
        parts = [_profile_numbers(st[st["profile"] == p], st.attrs, model) for p in dict.fromkeys(st["profile"])]
        return pd.concat(parts, ignore_index=True)
    return _profile_numbers(st, st.attrs, model)


def _profile_numbers(st: pd.DataFrame, attrs: dict, model: tuple[str, str] | None) -> pd.DataFrame:
    st = st.copy()
    st.attrs = dict(attrs)
    model = model or D.main_model(st)
    metrics = dict(st.attrs["metrics"])
    shift_metrics = {metrics[s] for s in st.attrs["shifts"]}
    avg_metric = shift_metrics.pop() if len(shift_metrics) == 1 else "mixed"
    metrics[D.AVG_SHIFTS] = avg_metric
    ref_metric = metrics.get(st.attrs["reference"]) if st.attrs["reference"] else None
    metrics[D.AVG] = avg_metric if ref_metric == avg_metric else "mixed"
    columns = [c for c in [*st.attrs["datasets"], D.AVG_SHIFTS, D.AVG] if st[c].notna().any()]
    rows: list[dict] = []

    def add(method: str, mode: str, alpha: float, row: pd.Series, cols: Sequence[str]) -> None:
        for c in cols:
            if pd.notna(row[c]):
                rows.append(dict(method=method, mode=mode, alpha=alpha, dataset=c, metric=metrics[c],
                                 value=100 * float(row[c])))

    zs = D.zeroshot_point(st, model)
    if zs is not None:
        add("zeroshot", "", math.nan, zs, columns)
    for mode in ("e2e", "lc"):
        ft = D.finetuned_point(st, mode, model)
        if ft is not None:
            add("finetuned", mode, math.nan, ft, columns)
        curve = D.sweep(st, mode, model=model)
        for _, r in curve.iterrows():
            add("wiseft", mode, float(r["alpha"]), r, columns)
        if curve["alpha"].nunique() >= 2:
            for c in columns:
                a, v = D.optimal_alpha(curve, c)
                if not math.isnan(v):
                    rows.append(dict(method="wiseft_opt", mode=mode, alpha=a, dataset=c, metric=metrics[c],
                                     value=100 * v))
    return pd.DataFrame(rows, columns=_NUMBER_COLUMNS)


def _order(st_attrs: dict, present: Sequence[str]) -> list[str]:
    order = [*st_attrs["references"], *st_attrs["shifts"], D.AVG_SHIFTS, D.AVG]
    return [c for c in order if c in set(present)]


def requires_table1(df: pd.DataFrame) -> str | None:
    """Table 1 needs zero-shot results and at least one fine-tuned model or sweep on the reference."""
    if df is None or df.empty:
        return "no results rows; run the zeroshot, finetune and interpolate steps first"
    st = D.settings_table(df)
    if st.attrs["reference"] is None:
        return "no dataset with role 'reference' in the results"
    if D.zeroshot_point(st) is None:
        return "no zero-shot results (method 'zeroshot' or a WiSE-FT row at α = 0)"
    if not D.modes_with_sweep(st):
        return "no WiSE-FT α sweep (method 'wiseft' rows with two or more α); run the interpolate step"
    return None


def table1(df: pd.DataFrame) -> pd.DataFrame:
    """Paper Table 1: zero-shot, fine-tuned (LC, E2E), WiSE-FT at α = 0.5 and at the optimal α, per column.

    The optimal α is chosen separately for each column (a single α per column, as in the paper's caption);
    ``table.attrs['optimal_alpha'][mode][column]`` records it.
    """
    nums = run_numbers(df)
    st_attrs = D.settings_table(df).attrs
    labels = []
    pieces = []

    def put(label: str, sel: pd.DataFrame) -> None:
        if not sel.empty:
            labels.append(label)
            pieces.append(sel.set_index("dataset")["value"].rename(label))

    put("Zero-shot", nums[nums["method"] == "zeroshot"])
    for mode in ("lc", "e2e"):
        put(f"Fine-tuned {mode.upper()}", nums[(nums["method"] == "finetuned") & (nums["mode"] == mode)])
    optimal: dict[str, dict[str, float]] = {}
    for mode in ("lc", "e2e"):
        w = nums[(nums["method"] == "wiseft") & (nums["mode"] == mode)]
        put(f"WiSE-FT {mode.upper()}, α=0.5", w[np.isclose(w["alpha"].astype(float), 0.5)])
        opt = nums[(nums["method"] == "wiseft_opt") & (nums["mode"] == mode)]
        put(f"WiSE-FT {mode.upper()}, optimal α", opt)
        if not opt.empty:
            optimal[mode] = dict(zip(opt["dataset"], opt["alpha"].astype(float)))
    table = pd.concat(pieces, axis=1).T if pieces else pd.DataFrame()
    table = table.reindex(columns=_order(st_attrs, table.columns))
    table.index.name = "method"
    table.attrs["optimal_alpha"] = optimal
    table.attrs["notes"] = [f"optimal α per column ({m.upper()}): " + ", ".join(
        f"{D.display_name(c)} {optimal[m][c]:g}" for c in table.columns if c in optimal[m]) for m in optimal]
    return table


def requires_sweep_table(df: pd.DataFrame) -> str | None:
    """The sweep tables need a WiSE-FT α sweep."""
    if df is None or df.empty:
        return "no results rows; run the interpolate step first"
    if not D.modes_with_sweep(D.settings_table(df)):
        return "no WiSE-FT α sweep (method 'wiseft' rows with two or more α); run the interpolate step"
    return None


def sweep_table(df: pd.DataFrame, mode: str = "e2e") -> pd.DataFrame:
    """Paper Tables 4 and 5: one row per α, columns the reference, the shifts, AvgShifts and Avg(ref, shifts)."""
    st = D.settings_table(df)
    curve = D.sweep(st, mode)
    cols = _order(st.attrs, [c for c in [*st.attrs["datasets"], D.AVG_SHIFTS, D.AVG] if curve[c].notna().any()])
    table = (100 * curve.set_index("alpha")[cols]).astype(float)
    table.index.name = "α"
    table.attrs["notes"] = [f"WiSE-FT {mode.upper()}: θ_α = (1−α)·θ_zero-shot + α·θ_fine-tuned"]
    return table


def headline(df: pd.DataFrame, *, ref_tolerance: float = 1.0) -> pd.DataFrame:
    """The paper's claims about one run, per fine-tuning mode, as numbers (percentage points).

    Columns: zero-shot and fine-tuned reference accuracy and the gain between them; the best α on the mean of
    the reference and the average shift (the ``avg`` column) and how far it beats the better endpoint (α = 0 or
    1); and "robustness at no cost": the α with the largest average-shift gain over the fine-tuned model among
    those within ``ref_tolerance`` points of it on the reference, and that gain. ``wiseft run`` readers check the
    WiSE-FT result here without reading a whole sweep. The α columns are text (``"0.45"``), so the one-decimal
    Markdown of the numbers does not round them.
    """
    st = D.settings_table(df)
    ref = st.attrs["reference"]
    rows = {}
    for mode in D.modes_with_sweep(st):
        curve = D.sweep(st, mode)
        r, shift, avg = (100 * curve[c].to_numpy(dtype=float) for c in (ref, D.AVG_SHIFTS, D.AVG))
        alphas = curve["alpha"].to_numpy(dtype=float)
        zero, one = int(np.argmin(alphas)), int(np.argmax(alphas))
        row = {"zero-shot ref": r[zero], "fine-tuned ref": r[one], "ref gain": r[one] - r[zero]}
        if np.isnan(shift).all():  # no shifts (a transfer suite member): α can only be judged on the reference
            best = int(np.nanargmax(r))
            row.update({"best α": f"{alphas[best]:g}", "best avg": np.nan, "margin over ends": np.nan,
                        "no-cost α": "—", "no-cost shift gain": np.nan, "no-cost ref change": np.nan})
            rows[mode.upper()] = row
            continue
        best = int(np.nanargmax(avg))
        near = np.flatnonzero(r >= r[one] - ref_tolerance)
        calm = int(near[np.nanargmax(shift[near] - shift[one])])
        row.update({
            "best α": f"{alphas[best]:g}", "best avg": avg[best], "margin over ends": avg[best] - max(avg[zero], avg[one]),
            "no-cost α": f"{alphas[calm]:g}", "no-cost shift gain": shift[calm] - shift[one],
            "no-cost ref change": r[calm] - r[one]})
        rows[mode.upper()] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "mode"
    if not st.attrs["shifts"]:
        table.attrs["notes"] = [f"no shifts in this run: best α maximises {D.display_name(ref)} alone"]
        return table
    table.attrs["notes"] = [
        f"best α maximises the mean of {D.display_name(ref)} and the average shift; no-cost α: the largest "
        f"average-shift gain over the fine-tuned model within {ref_tolerance:g} pp of it on {D.display_name(ref)}"]
    return table


#: Table 6 reports the video sets (and their class-subsampled references) for the linear classifier.
_TABLE6_LC = ("imagenet-vid-robust", "ytbb-robust", "imagenet-sub-vid-robust", "imagenet-sub-ytbb-robust")


def table6(df: pd.DataFrame, *, mode: str | None = None, datasets: Sequence[str] | None = None) -> pd.DataFrame:
    """Paper Table 6: per dataset and metric, zero-shot, fine-tuned, WiSE-FT α = 0.5 and optimal α.

    Each row uses its dataset's primary metric (accuracy, worst-region accuracy, macro-F1, pm-0); the optimal
    α is chosen per row. By default the rows are the run's further shifts of Fig. 9, each after its
    (class-subsampled) reference, else the references and shifts. ``mode`` ``None`` takes the paper's: LC for
    the video sets, E2E for the others (the other one when the run has no such sweep).
    ``table.attrs['optimal_alpha']`` maps dataset to α.
    """
    from .scatter import further_shifts

    st = D.settings_table(df)
    ref = st.attrs["reference"]
    subsampled = {D.subsampled_reference(st.attrs["datasets"], ref, s): s for s in further_shifts(df)}
    subsampled = {sub: s for sub, s in subsampled.items() if sub != ref}
    if not datasets:
        further = further_shifts(df)
        datasets = list(dict.fromkeys(d for s in further for d in (
            D.subsampled_reference(st.attrs["datasets"], ref, s), s))) if further else [
            *st.attrs["references"], *st.attrs["shifts"]]
    modes = D.modes_with_sweep(st)
    zs = D.zeroshot_point(st)
    records, optimal = [], {}
    for ds in datasets:
        m = mode or ("lc" if ds in _TABLE6_LC else "e2e")
        m = m if m in modes or not modes else modes[0]
        ft = D.finetuned_point(st, m)
        curve = D.sweep(st, m)
        half = curve[np.isclose(curve["alpha"], 0.5)]
        a, v = D.optimal_alpha(curve.dropna(subset=[ds]), ds) if len(curve) else (math.nan, math.nan)
        optimal[ds] = a
        records.append({
            "dataset": ds, "metric": st.attrs["metrics"][ds], "mode": m,
            "Zero-shot": 100 * zs[ds] if zs is not None else math.nan,
            "Fine-tuned": 100 * ft[ds] if ft is not None else math.nan,
            "WiSE-FT, α=0.5": 100 * half[ds].iloc[0] if len(half) else math.nan,
            "WiSE-FT, optimal α": 100 * v,
        })
    table = pd.DataFrame(records)
    used = list(dict.fromkeys(table["mode"])) if len(table) else [mode or "e2e"]
    if len(used) == 1:  # one mode: name it in the column, as the paper's caption does
        table = table.drop(columns="mode").rename(columns={"Fine-tuned": f"Fine-tuned {used[0].upper()}"})
    table.index = [f"{D.display_name(ref)}, {D.display_name(subsampled[r['dataset']])} classes "
                   f"({D.metric_name(r['metric'])})" if r["dataset"] in subsampled else
                   f"{D.display_name(r['dataset'])} ({D.metric_name(r['metric'])})" for r in records]
    table.attrs["optimal_alpha"] = optimal
    table.attrs["notes"] = [f"mode: {', '.join(m.upper() for m in used)}; optimal α chosen per row"]
    return table


def table2(df: pd.DataFrame) -> pd.DataFrame:
    """Paper Table 2: fine-tuned (E2E) vs WiSE-FT at α = 0.5 and at the optimal α on each reference dataset.

    Rows ``gain α=0.5`` and ``gain optimal α`` hold the differences to standard fine-tuning, in pp.
    """
    st = D.settings_table(df)
    curve = D.sweep(st, "e2e")
    cols, data, optimal = [], {}, {}
    for ref in st.attrs["references"]:
        c = curve.dropna(subset=[ref])
        if c["alpha"].nunique() < 2:
            continue
        ft_rows = st[(st["method"] == "finetuned") & (st["mode"] == "e2e")].dropna(subset=[ref])
        ft = float(ft_rows[ref].iloc[-1]) if len(ft_rows) else float(c[np.isclose(c["alpha"], 1)][ref].iloc[-1])
        half = c[np.isclose(c["alpha"], 0.5)][ref]
        a, best = D.optimal_alpha(c, ref)
        h = float(half.iloc[0]) if len(half) else math.nan
        cols.append(ref)
        optimal[ref] = a
        data[ref] = [100 * ft, 100 * h, 100 * best, 100 * (h - ft), 100 * (best - ft)]
    table = pd.DataFrame(data, index=["Fine-tuned (E2E)", "WiSE-FT, α=0.5", "WiSE-FT, optimal α",
                                      "gain α=0.5 (pp)", "gain optimal α (pp)"])
    table.attrs["optimal_alpha"] = optimal
    return table


def to_markdown(table: pd.DataFrame, decimals: int = 1, title: str | None = None) -> str:
    """A GitHub-flavoured Markdown table; numbers rounded to ``decimals``, datasets named as in the paper."""

    def cell(v) -> str:
        if isinstance(v, (float, np.floating)):
            return "" if math.isnan(v) else f"{v:.{decimals}f}"
        return str(v)

    header = [str(table.index.name or "")] + [D.display_name(str(c)) for c in table.columns]
    index = [f"{i:g}" if isinstance(i, (float, np.floating)) else str(i) for i in table.index]
    lines = []
    if title:
        lines += [f"**{title}**", ""]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * len(table.columns)) + "|")
    for label, (_, row) in zip(index, table.iterrows()):
        lines.append("| " + " | ".join([label] + [cell(v) for v in row]) + " |")
    for note in table.attrs.get("notes", []):
        lines += ["", f"_{note}_"]
    return "\n".join(lines) + "\n"
