"""What a run shows, figure by figure: the run's numbers that carry the paper's claim, next to the paper's.

:func:`what_this_run_shows` returns a few plain lines for a figure, table or pipeline notebook: the claim the paper
makes with it, the run's numbers for that claim, and, where the run departs from the paper, a sentence saying so
(the offline digits world is not ImageNet, and a student should see the contradiction named rather than find it).
The paper's numbers come from ``wiseft/data/paper_numbers.csv`` (Table 1, ViT-L/14@336px) where it has them,
otherwise from the paper's text.

Example:
    >>> print(what_this_run_shows(df, "fig10"))          # doctest: +SKIP
    What this run shows (Fig. 10) ...
"""

from __future__ import annotations

import json
from typing import Callable

import numpy as np
import pandas as pd

from . import data as D

__all__ = ["what_this_run_shows", "CLAIMS", "headline"]


def _pp(x: float) -> str:
    return f"{x:+.1f} pp"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _paper_gain() -> tuple[float, float]:
    """Table 1 (ViT-L/14@336px): WiSE-FT E2E α = 0.5 minus fine-tuned E2E, on ImageNet and the shift average."""
    from .paper import load_paper_numbers

    p = load_paper_numbers("table1_vitl14_336")
    def pick(method: str, dataset: str, alpha: float | None = None) -> float:
        at = np.isclose(p["alpha"], alpha) if alpha is not None else p["alpha"].isna()
        rows = p[(p["method"] == method) & (p["mode"] == "e2e") & (p["dataset"] == dataset) & at]
        return float(rows["value"].iloc[0])

    return (pick("wiseft", "imagenet", 0.5) - pick("finetuned", "imagenet"),
            pick("wiseft", D.AVG_SHIFTS, 0.5) - pick("finetuned", D.AVG_SHIFTS))


def _at(curve: pd.DataFrame, alpha: float, column: str) -> float:
    hit = curve[np.isclose(curve["alpha"], alpha)]
    return float(hit[column].iloc[0]) if len(hit) else float("nan")


def headline(df: pd.DataFrame) -> list[str]:
    """The run's headline: zero-shot, fine-tuned and WiSE-FT (α = 0.5) on the reference and under shift."""
    st = D.settings_table(df)
    ref = st.attrs.get("reference")
    if ref is None or not st.attrs.get("shifts"):
        return ["This run has no reference-plus-shifts results to summarise."]
    zs = D.zeroshot_point(st)
    out = [f"Data and model: {D.run_context(st)}."]
    if zs is not None:
        out.append(f"Zero-shot: {_pct(zs[ref])} on {D.display_name(ref)}, {_pct(zs[D.AVG_SHIFTS])} averaged over "
                   f"{len(st.attrs['shifts'])} shifts.")
    for mode in D.modes_with_sweep(st):
        ft, curve = D.finetuned_point(st, mode), D.sweep(st, mode)
        half_ref, half_shift = _at(curve, 0.5, ref), _at(curve, 0.5, D.AVG_SHIFTS)
        if ft is None or np.isnan(half_ref):
            continue
        out.append(f"{mode.upper()}: fine-tuned {_pct(ft[ref])} / {_pct(ft[D.AVG_SHIFTS])} (reference / shifts); "
                   f"WiSE-FT α = 0.5 {_pct(half_ref)} / {_pct(half_shift)}, i.e. "
                   f"{_pp(100 * (half_ref - ft[ref]))} on the reference and "
                   f"{_pp(100 * (half_shift - ft[D.AVG_SHIFTS]))} under shift.")
    return out


def _wiseft_vs_finetuned(df: pd.DataFrame) -> list[str]:
    st = D.settings_table(df)
    ref = st.attrs["reference"]
    dref, dshift = _paper_gain()
    out = [f"Paper (ViT-L/14@336px, Table 1): WiSE-FT at α = 0.5 vs. the fine-tuned model (E2E): {_pp(dref)} on "
           f"ImageNet, {_pp(dshift)} averaged over 5 shifts."]
    for mode in D.modes_with_sweep(st):
        ft, curve = D.finetuned_point(st, mode), D.sweep(st, mode)
        if ft is None:
            continue
        gr, gs = 100 * (_at(curve, 0.5, ref) - ft[ref]), 100 * (_at(curve, 0.5, D.AVG_SHIFTS) - ft[D.AVG_SHIFTS])
        out.append(f"This run ({mode.upper()}): {_pp(gr)} on {D.display_name(ref)}, {_pp(gs)} under shift.")
        if gs <= 0:
            out.append(f"Unlike the paper, WiSE-FT ({mode.upper()}) does not improve the shift average here.")
        elif gr < -1.0:
            out.append(f"As in the paper WiSE-FT ({mode.upper()}) gains under shift, but here it costs "
                       f"{-gr:.1f} pp on the reference, more than the paper's small change.")
    return out


def _per_shift(df: pd.DataFrame) -> list[str]:
    st = D.settings_table(df)
    ft, curve, zs = D.finetuned_point(st, "e2e"), D.sweep(st, "e2e"), D.zeroshot_point(st)
    if ft is None or zs is None:
        return ["No E2E fine-tuned model to compare with."]
    out = ["Paper (Fig. 7): on every shift WiSE-FT (α = 0.5) is above the fine-tuned model; fine-tuning itself "
           "loses to zero-shot on ImageNet-R, Sketch, ObjectNet and -A."]
    losers, gains = [], {}
    for s in st.attrs["shifts"]:
        gains[D.display_name(s)] = 100 * (_at(curve, 0.5, s) - ft[s])
        if ft[s] < zs[s]:
            losers.append(D.display_name(s))
    out.append("This run, WiSE-FT α = 0.5 minus fine-tuned (E2E): "
               + ", ".join(f"{n} {_pp(g)}" for n, g in gains.items()) + ".")
    out.append("Shifts on which fine-tuning loses to zero-shot here: " + (", ".join(losers) or "none") + ".")
    below = [n for n, g in gains.items() if g < 0]
    if below:
        out.append(f"Unlike the paper, WiSE-FT is below the fine-tuned model on {', '.join(below)} here: on that "
                   "shift fine-tuning itself helps, so moving back toward zero-shot costs accuracy.")
    return out


def _finetune(df: pd.DataFrame) -> list[str]:
    """Fine-tuning's trade (Table 1): accuracy gained on the reference, robustness lost under shift."""
    from .paper import load_paper_numbers

    p = load_paper_numbers("table1_vitl14_336")
    p = p[p["alpha"].isna()].drop_duplicates(["method", "mode", "dataset"])

    def paper(method: str, mode: str, dataset: str) -> float:
        return float(p[(p["method"] == method) & (p["mode"].fillna("") == mode) & (p["dataset"] == dataset)]["value"]
                     .iloc[0])

    zs_ref, zs_avg = paper("zeroshot", "", "imagenet"), paper("zeroshot", "", D.AVG_SHIFTS)
    out = ["Paper (Table 1, ViT-L/14@336px): fine-tuning raises ImageNet accuracy (E2E "
           f"{paper('finetuned', 'e2e', 'imagenet') - zs_ref:+.1f} pp, LC "
           f"{paper('finetuned', 'lc', 'imagenet') - zs_ref:+.1f} pp over zero-shot) and lowers the shift average (E2E "
           f"{paper('finetuned', 'e2e', D.AVG_SHIFTS) - zs_avg:+.1f} pp, LC "
           f"{paper('finetuned', 'lc', D.AVG_SHIFTS) - zs_avg:+.1f} pp)."]
    st = D.settings_table(df)
    zs, ref = D.zeroshot_point(st), st.attrs["reference"]
    if zs is None:
        return out + ["No zero-shot model in this run to compare with."]
    for mode in ("e2e", "lc"):
        ft = D.finetuned_point(st, mode)
        if ft is None:
            continue
        ref_gain, shift_gain = 100 * (ft[ref] - zs[ref]), 100 * (ft[D.AVG_SHIFTS] - zs[D.AVG_SHIFTS])
        out.append(f"This run ({mode.upper()}): {_pp(ref_gain)} on {D.display_name(ref)}, {_pp(shift_gain)} on the "
                   "shift average.")
        if shift_gain >= 0:
            out.append(f"Unlike the paper, {mode.upper()} fine-tuning does not lose robustness on average here.")
    return out


def _zeroshot(df: pd.DataFrame) -> list[str]:
    from .paper import load_paper_numbers

    p = load_paper_numbers("table1_vitl14_336")
    zs_paper = p[(p["method"] == "zeroshot")].drop_duplicates("dataset").set_index("dataset")["value"]
    st = D.settings_table(df)
    zs, ref = D.zeroshot_point(st), st.attrs["reference"]
    out = [f"Paper (Table 1, zero-shot ViT-L/14@336px): {zs_paper['imagenet']:.1f}% on ImageNet, "
           f"{zs_paper[D.AVG_SHIFTS]:.1f}% averaged over the shifts: a drop of "
           f"{zs_paper['imagenet'] - zs_paper[D.AVG_SHIFTS]:.1f} pp, small for its ImageNet accuracy (its effective "
           "robustness)."]
    if zs is not None:
        drop = 100 * (zs[ref] - zs[D.AVG_SHIFTS])
        out.append(f"This run: {_pct(zs[ref])} on {D.display_name(ref)}, {_pct(zs[D.AVG_SHIFTS])} under shift, a drop "
                   f"of {drop:.1f} pp.")
    return out


def _curve_above_line(df: pd.DataFrame) -> list[str]:
    st = D.settings_table(df)
    mode = (D.modes_with_sweep(st) or ["e2e"])[0]
    curve = D.sweep(st, mode)
    above = []
    for d in [*st.attrs["references"][:1], *st.attrs["shifts"]]:
        mid = (_at(curve, 0.0, d) + _at(curve, 1.0, d)) / 2
        above.append((D.display_name(d), 100 * (_at(curve, 0.5, d) - mid)))
    n_above = sum(g > 0 for _, g in above)
    return ["Paper (Fig. 6): at α = 0.5 the interpolated weights beat the average of the endpoints' accuracies on "
            "every dataset.",
            f"This run ({mode.upper()}): above that line on {n_above} of {len(above)} datasets ("
            + ", ".join(f"{n} {_pp(g)}" for n, g in above) + ")."] + (
        [] if n_above == len(above) else ["Unlike the paper, the curve is not above the line everywhere here."])


def _ensembles(df: pd.DataFrame) -> list[str]:
    st = D.settings_table(df)
    wise, ose = D.sweep(st, "e2e"), D.sweep(st, "e2e", "ose")
    w, o = _at(wise, 0.5, D.AVG_SHIFTS), _at(ose, 0.5, D.AVG_SHIFTS)
    wb, ob = _best_shift(wise), _best_shift(ose)
    above = int((ose.set_index("alpha")[D.AVG_SHIFTS] > wise.set_index("alpha")[D.AVG_SHIFTS]
                 .reindex(ose["alpha"])).sum())
    out = ["Paper (Fig. 10): the weight-space ensemble (WiSE-FT) matches or beats the output-space ensemble, at half "
           "the inference cost.",
           f"This run, shift average: at α = 0.5 WiSE-FT {_pct(w)}, logit ensemble {_pct(o)}; best over α WiSE-FT "
           f"{_pct(wb)}, logit ensemble {_pct(ob)}; the logit ensemble is higher at {above} of {len(ose)} α values."]
    if ob > wb or above > len(ose) / 2:
        out.append("Unlike the paper, the logit ensemble lies above WiSE-FT here: in this small world the two models' "
                   "errors are combined better in output space than by averaging the weights.")
    return out


def _best_shift(rows: pd.DataFrame) -> float:
    return float(rows[D.AVG_SHIFTS].max()) if len(rows) else float("nan")


def _baselines(methods: tuple[str, ...], figure: str) -> Callable[[pd.DataFrame], list[str]]:
    def claim(df: pd.DataFrame) -> list[str]:
        from .baselines import BASELINE_METHODS

        st = D.settings_table(df)
        out = [f"Paper ({figure}): no baseline reaches beyond the WiSE-FT curve; only weight averaging (WiSE-FT or "
               "EMA) reaches its frontier."]
        for m in methods:
            rows = st[st["method"] == m]
            if rows.empty:
                continue
            mode = BASELINE_METHODS[m][0]
            best, wise = _best_shift(rows), _best_shift(D.sweep(st, mode))
            verdict = "above" if best > wise + 0.002 else "on or below"
            out.append(f"{BASELINE_METHODS[m][2]}: best shift average {_pct(best)} vs. WiSE-FT ({mode.upper()}) "
                       f"{_pct(wise)}, {verdict} the curve's best.")
            if verdict == "above":
                out.append(f"Unlike the paper, {BASELINE_METHODS[m][2].lower()} reaches beyond WiSE-FT here.")
        return out

    return claim


def _variants(df: pd.DataFrame) -> list[str]:
    st = D.settings_table(df)
    var = st[st["method"] == "variant"]
    out = ["Paper (Fig. 3): whatever the hyperparameters, WiSE-FT of each variant improves over that variant's "
           "fine-tuned model under shift."]
    for knobs, rows in var.groupby("knobs", sort=False):
        end, half = rows[np.isclose(rows["alpha"].fillna(1.0), 1.0)], rows[np.isclose(rows["alpha"], 0.5)]
        if len(end) and len(half):
            gain = 100 * (half[D.AVG_SHIFTS].iloc[0] - end[D.AVG_SHIFTS].iloc[0])
            out.append(f"{json.loads(knobs).get('name', knobs)}: α = 0.5 vs. its endpoint {_pp(gain)} under shift."
                       + ("" if gain > 0 else " Unlike the paper, no gain here."))
    return out


def _diversity(analyses: pd.DataFrame) -> list[str]:
    a = analyses.copy()
    a["comparison"] = a.get("comparison", pd.Series("zeroshot_vs_finetuned", index=a.index)).fillna(
        "zeroshot_vs_finetuned")
    div = a[a["measure"] == "prediction_diversity"].groupby("comparison")["value"].mean()
    out = ["Paper (Fig. 5): the zero-shot and fine-tuned models disagree far more than two linear classifiers trained "
           "on random halves of the reference set (the control)."]
    if "baseline" in div.index:
        pairs = [f"{c.replace('_', ' ')} {_pct(v)}" for c, v in div.items()]
        out.append("This run, mean prediction diversity: " + ", ".join(pairs) + ".")
        if any(v <= div["baseline"] for c, v in div.items() if c != "baseline"):
            out.append("Unlike the paper, a zero-shot/fine-tuned pair is not more diverse than the control here.")
    return out


def _kshot(df: pd.DataFrame) -> list[str]:
    from .curves import kshot_gains

    g = kshot_gains(df)
    opt = g[g["alpha"] == "optimal"].sort_values("shots")
    lc = g[g["alpha"] == "1"].sort_values("shots")
    out = ["Paper (Fig. 17): with few examples per class the LC alone is worse than zero-shot, and WiSE-FT at its "
           "optimal α beats both at every k."]
    if len(lc):
        k = int(lc["shots"].iloc[0])
        out.append(f"This run at k = {k}: LC {_pp(float(lc['gain_zeroshot'].iloc[0]))} over zero-shot; optimal α "
                   f"{_pp(float(opt['gain_zeroshot'].iloc[0]))} over zero-shot, {_pp(float(opt['gain_lc'].iloc[0]))} "
                   "over the LC.")
        if float(lc["gain_zeroshot"].iloc[0]) > 0:
            out.append("Unlike the paper, the few-shot LCs already beat the zero-shot model here: the digits world's "
                       "zero-shot head is weak relative to what a handful of labelled digits teaches.")
    return out


def _transfer(df: pd.DataFrame) -> list[str]:
    st = D.settings_table(df)
    curve = D.sweep(st, "e2e")
    out = ["Paper (Table 2, Fig. 16): WiSE-FT at α = 0.5 gains 0.8–3.3 pp over fine-tuning on 7 transfer datasets."]
    for ref in st.attrs["references"]:
        part = curve.dropna(subset=[ref])
        if part["alpha"].nunique() >= 2:
            out.append(f"{D.display_name(ref)}: {_pp(100 * (_at(part, 0.5, ref) - _at(part, 1.0, ref)))}.")
    return out


def _data(df: pd.DataFrame) -> list[str]:
    if "images" in df.columns:  # the data step's table: one row per dataset split
        ev = df[df["use"] == "eval"] if "use" in df.columns else df
        shifts = ev[ev["role"] == "shift"]["dataset"].tolist() if "role" in ev.columns else []
        return ["Paper: ImageNet as the reference and five natural distribution shifts of it (ImageNetV2, -R, "
                "-Sketch, ObjectNet, -A), 1 000 classes.",
                f"This run: {D.data_label(ev['dataset'].tolist())}, {len(shifts)} shifts ("
                + ", ".join(D.display_name(d) for d in shifts) + "), "
                + ", ".join(f"{D.display_name(r.dataset)} {int(r.images)} images" for r in ev.itertuples()) + "."]
    st = D.settings_table(df)
    sizes = st.attrs.get("n", {})
    return ["Paper: ImageNet as the reference and five natural distribution shifts.",
            f"This run: {D.run_context(st)}; " + ", ".join(
                f"{D.display_name(d)} ({sizes.get(d, '?')} images)" for d in st.attrs["datasets"]) + "."]


#: figure or notebook -> (paper label, claim)
CLAIMS: dict[str, tuple[str, Callable[[pd.DataFrame], list[str]]]] = {
    "fig1": ("Fig. 1", _wiseft_vs_finetuned), "table1": ("Table 1", _wiseft_vs_finetuned),
    "sweep_table": ("Tables 4, 5", _wiseft_vs_finetuned), "04_interpolate": ("Fig. 1", _wiseft_vs_finetuned),
    "fig7": ("Fig. 7", _per_shift), "fig9": ("Fig. 9", _wiseft_vs_finetuned),
    "table6": ("Table 6", _wiseft_vs_finetuned),
    "fig6": ("Fig. 6", _curve_above_line), "fig10": ("Fig. 10", _ensembles), "fig3": ("Fig. 3", _variants),
    "fig11": ("Fig. 11", _baselines(("ema",), "Fig. 11")),
    "fig12": ("Fig. 12", _baselines(("ema_biased",), "Fig. 12")),
    "fig13": ("Fig. 13", _baselines(("random_interp", "ose_prob", "distill", "lc_l2sp", "l2sp", "lpft"), "Fig. 13")),
    "05_baselines": ("Figs. 11–13", _baselines(("ema", "ema_biased", "random_interp", "ose_prob", "distill",
                                                "lc_l2sp", "l2sp", "lpft"), "Figs. 11–13")),
    "fig5": ("Fig. 5", _diversity), "fig17": ("Fig. 17", _kshot), "fig16": ("Fig. 16", _transfer),
    "table2": ("Table 2", _transfer), "01_data": ("the data", _data), "02_zeroshot": ("Table 1", _zeroshot),
    "03_finetune": ("Table 1", _finetune),
}


def what_this_run_shows(data: pd.DataFrame | None, figure: str) -> str:
    """The run's numbers that carry the paper's claim for ``figure`` (a figure, table or pipeline notebook name),
    next to the paper's, with a sentence wherever they differ. ``data`` is the results frame (the analyses frame
    for ``fig5``)."""
    if figure not in CLAIMS:
        return f"What this run shows: no claim is registered for {figure!r}."
    label, claim = CLAIMS[figure]
    if data is None or len(data) == 0:
        return f"What this run shows ({label}): nothing yet, the run has no results for it."
    try:
        lines = claim(data)
    except (KeyError, IndexError, ValueError) as e:  # a profile without the rows this claim reads
        lines = [f"the run lacks the numbers this claim needs ({type(e).__name__}: {e})."]
    return f"What this run shows ({label}):\n" + "\n".join(f"- {line}" for line in lines)
