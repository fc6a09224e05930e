"""Synthetic results rows shaped like a real run, for the figure, table and course tests.

Accuracy along a sweep is ``(1-α)·zs + α·ft + bump·4α(1-α)``, so the curves are concave and the optimal α
of each column can be computed by hand.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from wiseft.results import ROW_FIELDS

REF = "imagenet"
SHIFTS = ["imagenet-v2", "imagenet-r", "imagenet-sketch", "objectnet", "imagenet-a"]
EXTRA = ["imagenet-sub-r", "imagenet-sub-a", "imagenet-sub-objectnet"]
#: dataset -> (zero-shot, fine-tuned E2E, bump E2E, fine-tuned LC, bump LC)
ACC = {
    "imagenet": (0.68, 0.81, 0.04, 0.80, 0.02),
    "imagenet-v2": (0.62, 0.71, 0.06, 0.70, 0.03),
    "imagenet-r": (0.77, 0.66, 0.08, 0.71, 0.03),
    "imagenet-sketch": (0.48, 0.46, 0.07, 0.47, 0.03),
    "objectnet": (0.53, 0.50, 0.06, 0.52, 0.03),
    "imagenet-a": (0.50, 0.37, 0.08, 0.46, 0.03),
    "imagenet-sub-r": (0.80, 0.90, 0.03, 0.88, 0.02),
    "imagenet-sub-a": (0.70, 0.85, 0.03, 0.84, 0.02),
    "imagenet-sub-objectnet": (0.72, 0.86, 0.03, 0.85, 0.02),
}
ALPHAS = [round(0.05 * i, 2) for i in range(21)]


def acc(dataset: str, mode: str, alpha: float) -> float:
    zs, ft_e, bump_e, ft_l, bump_l = ACC[dataset]
    ft, bump = (ft_e, bump_e) if mode == "e2e" else (ft_l, bump_l)
    return (1 - alpha) * zs + alpha * ft + bump * 4 * alpha * (1 - alpha)


def _row(method, mode, alpha, dataset, value, extra=None, model="ViT-B-16", metric="top1", profile="synthetic"):
    role = "reference" if dataset == REF else "shift" if dataset in SHIFTS else "extra"
    return dict(run_id="synthetic-0", profile=profile, model=model, pretrained="openai", method=method, mode=mode,
                alpha=alpha, dataset=dataset, role=role, metric=metric, value=float(np.clip(value, 0, 1)), n=1000,
                time="2024-01-01T00:00:00+00:00", git_commit="abc", extra=extra or {})


def core_rows(datasets=None, alphas=ALPHAS) -> list[dict]:
    """zero-shot, fine-tuned E2E/LC and both WiSE-FT sweeps."""
    datasets = datasets or [REF, *SHIFTS, *EXTRA]
    rows = []
    for d in datasets:
        rows.append(_row("zeroshot", None, None, d, ACC[d][0]))
        rows.append(_row("zeroshot", None, None, d, ACC[d][0] - 0.1, model="RN50"))
        for mode in ("e2e", "lc"):
            rows.append(_row("finetuned", mode, None, d, acc(d, mode, 1.0)))
            for a in alphas:
                rows.append(_row("wiseft", mode, a, d, acc(d, mode, a)))
    return rows


def baseline_rows() -> list[dict]:
    rows = []
    for d in [REF, *SHIFTS]:
        for a in ALPHAS[::4]:
            rows.append(_row("ose", "e2e", a, d, acc(d, "e2e", a) - 0.01 * 4 * a * (1 - a)))
            rows.append(_row("ose_prob", "lc", a, d, acc(d, "lc", a) - 0.005))
            rows.append(_row("random_interp", "lc", a, d, (1 - a) * ACC[d][0] + a * ACC[d][3]))
        for decay in (0.99, 0.999):
            rows.append(_row("ema", "e2e", None, d, acc(d, "e2e", 0.9), extra={"decay": decay}))
            rows.append(_row("ema_biased", "e2e", None, d, acc(d, "e2e", decay - 0.5), extra={"decay": decay}))
        for lam in (1e-3, 1e-1):
            rows.append(_row("l2sp", "e2e", None, d, acc(d, "e2e", 0.8), extra={"lambda": lam}))
            rows.append(_row("lc_l2sp", "lc", None, d, acc(d, "lc", 0.7), extra={"lambda": lam}))
        for a in (0.25, 0.75):
            rows.append(_row("distill", "lc", None, d, acc(d, "lc", 1 - a / 2), extra={"alpha": a}))
        rows.append(_row("lpft", "e2e", None, d, acc(d, "e2e", 0.95)))
        for name, lr in (("lr1e-5", 1e-5), ("lr1e-4", 1e-4)):
            shrink = 0.5 if lr < 1e-4 else 1.0
            for a in ALPHAS[::5]:
                rows.append(_row("variant", "e2e", a, d, acc(d, "e2e", a * shrink), extra={"name": name, "lr": lr}))
    return rows


def kshot_rows(shots=(1, 5, 10, 25)) -> list[dict]:
    rows = []
    for k in shots:
        ft = ACC[REF][0] - 0.1 + 0.05 * np.log(k)
        for a in (0.0, 0.25, 0.5, 0.75, 1.0):
            v = (1 - a) * ACC[REF][0] + a * ft + 0.03 * 4 * a * (1 - a)
            rows.append(_row("kshot", "lc", a, REF, v, extra={"shots": k}))
    return rows


def frame(rows) -> pd.DataFrame:
    df = pd.DataFrame.from_records(rows, columns=list(ROW_FIELDS))
    df["alpha"] = pd.to_numeric(df["alpha"], errors="coerce")
    return df


def full_frame() -> pd.DataFrame:
    return frame(core_rows() + baseline_rows() + kshot_rows())


def analyses_frame() -> pd.DataFrame:
    recs = []
    for d in [REF, *SHIFTS]:
        for m, v in (("prediction_diversity", 0.2), ("cka_complement", 0.3), ("kappa_complement", 0.25),
                     ("kl_divergence", 0.8), ("zs_overrides", 0.1), ("zs_overridden", 0.05),
                     ("confidence_gap_zs", 2.0), ("confidence_gap_ft", 3.0)):
            recs.append(dict(dataset=d, measure=m, value=v))
        recs.append(dict(dataset=d, measure="prediction_diversity", value=0.1, comparison="baseline"))
    return pd.DataFrame(recs)


def further_shift_frame() -> pd.DataFrame:
    """A WILDS-FMoW-like run: ID accuracy and OOD worst-region accuracy."""
    rows = []
    for d, metric, (zs, ft) in (("fmow", "top1", (0.28, 0.73)), ("fmow-ood", "worst_region_acc", (0.24, 0.46))):
        role = "reference" if d == "fmow" else "shift"
        for method, mode, a in [("zeroshot", None, None), ("finetuned", "e2e", None)] + [
                ("wiseft", "e2e", x) for x in ALPHAS]:
            al = 0.0 if method == "zeroshot" else 1.0 if method == "finetuned" else a
            v = (1 - al) * zs + al * ft + 0.06 * 4 * al * (1 - al)
            r = _row(method, mode, a, d, v, metric=metric)
            r["role"] = role
            rows.append(r)
    return frame(rows)


def transfer_frame() -> pd.DataFrame:
    rows = []
    for d, (zs, ft) in (("cifar10", (0.90, 0.98)), ("dtd", (0.45, 0.80))):
        for method, mode, a in [("finetuned", "e2e", None)] + [("wiseft", "e2e", x) for x in ALPHAS]:
            al = 1.0 if a is None else a
            r = _row(method, mode, a, d, (1 - al) * zs + al * ft + 0.04 * 4 * al * (1 - al),
                     profile=f"transfer-{d}")
            r["role"] = "reference"
            rows.append(r)
    return frame(rows)
