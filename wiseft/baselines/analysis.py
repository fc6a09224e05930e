"""Diversity measures between two models' predictions on one dataset (paper Sec. 5, Fig. 5, App. E, Figs 27–30).

The paper explains WiSE-FT's gains by showing that the zero-shot and the fine-tuned model are *complementary*:
they make different errors (prediction diversity, Cohen's-kappa complement, KL divergence, CKA complement), the
zero-shot model overrides the fine-tuned one under shift more often than the reverse, and it is more confident
there (larger top-1 minus top-2 logit gap). This module computes those numbers from arrays already in memory
(logits, labels, features); it never runs a model, so the evaluation engine can feed it whatever it cached.

Inputs are NumPy arrays or torch tensors (any device; they are copied to host memory). Logits must be in the
*task's* class space, i.e. after ``protocol.project_logits`` for sets such as ImageNet-R (200 classes), so that
predictions and labels index the same classes. Everything is computed in float64.

Output format (:func:`diversity_frame`): a tidy :class:`pandas.DataFrame` with the columns :data:`COLUMNS`,
one row per measure, ``value`` a float (most are fractions in [0, 1]; KL and confidences are in nats / logit
units), ``n`` the number of examples the measure was computed on (the subsample size for CKA). Several datasets
or model pairs are combined with :func:`pandas.concat`. Measure names are in :data:`MEASURES`.

Example:
    >>> frame = diversity_frame("imagenet", logits_zs, logits_ft, labels)          # doctest: +SKIP
    >>> frame.pivot(index="dataset", columns="measure", values="value")             # doctest: +SKIP
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import log_softmax

from ..errors import WiseftError

log = logging.getLogger(__name__)

__all__ = [
    "COLUMNS",
    "MEASURES",
    "prediction_diversity",
    "cohen_kappa",
    "kappa_complement",
    "mean_kl_divergence",
    "linear_cka",
    "cka_complement",
    "override_fractions",
    "confidence_gap",
    "diversity_measures",
    "diversity_frame",
]

#: Columns of :func:`diversity_frame`.
COLUMNS = ("dataset", "pair", "measure", "value", "n")

#: Measures reported by :func:`diversity_measures`, in order. In a pair (a, b), "zs" names model a and "ft"
#: model b (for the paper's baseline pair of two LCs trained on random halves, read them as "first"/"second").
MEASURES = (
    "accuracy_zs",
    "accuracy_ft",
    "accuracy_ens",
    "disagreement",
    "prediction_diversity",
    "kappa_complement",
    "kl_divergence",
    "cka_complement",
    "zs_overrides",
    "zs_overridden",
    "confidence_zs",
    "confidence_ft",
    "confidence_gap",
)


# ------------------------------------------------------------------------------------------------ inputs
def _to_numpy(x: Any, name: str) -> np.ndarray:
    """Host copy of an array or tensor; torch is not imported here so analysis stays a NumPy module."""
    if hasattr(x, "detach"):  # torch.Tensor on any device
        x = x.detach().to("cpu")
        if x.dtype.is_floating_point:
            x = x.double()
        x = x.numpy()
    arr = np.asarray(x)
    if arr.dtype == object:
        raise WiseftError(f"{name}: expected a numeric array or tensor, got objects of {type(x).__name__}")
    return arr


def _logits(x: Any, name: str, n: int | None = None) -> np.ndarray:
    arr = _to_numpy(x, name).astype(np.float64, copy=False)
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise WiseftError(f"{name}: expected logits of shape [N, C] with C >= 2, got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise WiseftError(f"{name}: has {arr.shape[0]} rows but the other inputs have {n}")
    if not np.isfinite(arr).all():
        raise WiseftError(f"{name}: contains NaN or infinite values; check the model's outputs")
    return arr


def _labels(x: Any, name: str, n: int | None = None) -> np.ndarray:
    arr = _to_numpy(x, name)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise WiseftError(f"{name}: expected a 1-D integer array of class indices, got {arr.dtype} {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise WiseftError(f"{name}: has {arr.shape[0]} entries but the other inputs have {n}")
    if arr.size == 0:
        raise WiseftError(f"{name}: is empty; a measure over zero examples is undefined")
    return arr.astype(np.int64, copy=False)


# --------------------------------------------------------------------------------------- the measures
def prediction_diversity(preds_a: Any, preds_b: Any, labels: Any) -> float:
    """Prediction diversity (PD): fraction of examples where the two models disagree and one of them is correct.

    Paper Sec. 5 / App. E, which takes the measure from Gontijo-Lopes et al. (2022, "No one representation to
    rule them all"): the fraction of examples on which the two models disagree and one of them is correct.
    Two models that disagree can be correct at most one at a time, so PD = mean[(a ≠ b) ∧ (a = y ∨ b = y)].
    Disagreements where both are wrong are not counted, because no ensemble of the two can fix those.

    Args:
        preds_a: predicted class per example, shape [N].
        preds_b: the other model's predictions, shape [N].
        labels: true classes, shape [N].

    Returns:
        PD in [0, 1]; 0 for identical predictions.
    """
    a = _labels(preds_a, "preds_a")
    b = _labels(preds_b, "preds_b", len(a))
    y = _labels(labels, "labels", len(a))
    return float(np.mean((a != b) & ((a == y) | (b == y))))


def cohen_kappa(preds_a: Any, preds_b: Any) -> float:
    """Cohen's kappa between two models' predictions (treated as two raters over the same examples).

    κ = (p_o − p_e) / (1 − p_e), with p_o the observed agreement and p_e = Σ_k p_a(k)·p_b(k) the agreement
    expected by chance from each model's marginal class frequencies (Cohen, 1960). When both models predict one
    and the same class everywhere, p_e = p_o = 1 and the ratio is 0/0; we return κ = 1 there, because the
    predictions are identical and their complement should be 0 like for any other identical pair.
    """
    a = _labels(preds_a, "preds_a")
    b = _labels(preds_b, "preds_b", len(a))
    if a.min() < 0 or b.min() < 0:
        raise WiseftError("cohen_kappa: class indices must be >= 0")
    k = int(max(a.max(), b.max())) + 1
    p_o = float(np.mean(a == b))
    p_e = float(np.dot(np.bincount(a, minlength=k) / len(a), np.bincount(b, minlength=k) / len(b)))
    if p_e >= 1.0:
        return 1.0
    return (p_o - p_e) / (1.0 - p_e)


def kappa_complement(preds_a: Any, preds_b: Any) -> float:
    """1 − κ (paper App. E, Fig. 28): 0 for identical predictions, 1 for chance-level agreement, up to 2."""
    return 1.0 - cohen_kappa(preds_a, preds_b)


def mean_kl_divergence(logits_p: Any, logits_q: Any) -> float:
    """Mean over examples of KL(P ‖ Q) = Σ_k P_k (log P_k − log Q_k), P = softmax(logits_p), Q = softmax(logits_q).

    Direction: the first argument is the reference distribution. :func:`diversity_measures` passes the zero-shot
    model first, KL(p_zs ‖ p_ft): the information lost when the fine-tuned model's distribution stands in for
    the zero-shot one. The paper (App. E, Fig. 29) does not state a direction; this choice is ours. Computed
    with log-softmax in float64, so very confident logits (CLIP's temperature of 100) do not underflow.

    Returns:
        The mean KL in nats (≥ 0; 0 for identical logits up to a per-example constant shift).
    """
    lp = log_softmax(_logits(logits_p, "logits_p"), axis=1)
    lq = log_softmax(_logits(logits_q, "logits_q", lp.shape[0]), axis=1)
    if lq.shape[1] != lp.shape[1]:
        raise WiseftError(f"mean_kl_divergence: {lp.shape[1]} vs {lq.shape[1]} classes; project both to the task")
    kl = np.sum(np.exp(lp) * (lp - lq), axis=1)
    return float(np.mean(np.maximum(kl, 0.0)))  # rounding can give -1e-17 for identical rows


def linear_cka(features_a: Any, features_b: Any, *, max_samples: int | None = 10000,
               seed: int = 0) -> tuple[float, int]:
    """Linear centred kernel alignment between two feature matrices over the same examples (Kornblith et al., 2019).

    With X [n, d1] and Y [n, d2] centred column-wise, CKA = ‖Yᵀ X‖²_F / (‖Xᵀ X‖_F · ‖Yᵀ Y‖_F), which equals
    HSIC(XXᵀ, YYᵀ) / sqrt(HSIC(XXᵀ, XXᵀ)·HSIC(YYᵀ, YYᵀ)) but costs d×d instead of n×n memory. When n exceeds
    ``max_samples`` the same seeded random subset of rows is taken from both matrices (paper App. E subsamples
    10k examples at random), so the value is reproducible for a given seed.

    Returns:
        ``(cka, n_used)``. CKA is in [0, 1], 1 for identical features (and for features that differ by an
        orthogonal transform or isotropic scaling). If either matrix is constant after centring CKA is
        undefined: NaN is returned and a warning is logged.
    """
    x = _to_numpy(features_a, "features_a").astype(np.float64, copy=False)
    y = _to_numpy(features_b, "features_b").astype(np.float64, copy=False)
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise WiseftError(f"linear_cka: expected [N, d1] and [N, d2] over the same N, got {x.shape} and {y.shape}")
    n = x.shape[0]
    if max_samples is not None and n > max_samples:
        idx = np.sort(np.random.default_rng(seed).choice(n, size=max_samples, replace=False))
        x, y, n = x[idx], y[idx], max_samples
    x = x - x.mean(axis=0, keepdims=True)
    y = y - y.mean(axis=0, keepdims=True)
    cross = np.linalg.norm(y.T @ x, "fro") ** 2
    denom = np.linalg.norm(x.T @ x, "fro") * np.linalg.norm(y.T @ y, "fro")
    if denom == 0.0:
        log.warning("linear_cka: a feature matrix is constant over the %d examples; CKA is undefined (NaN)", n)
        return float("nan"), n
    return float(min(cross / denom, 1.0)), n


def cka_complement(features_a: Any, features_b: Any, *, max_samples: int | None = 10000, seed: int = 0) -> float:
    """1 − linear CKA (paper App. E, Fig. 30): 0 for identical representations."""
    return 1.0 - linear_cka(features_a, features_b, max_samples=max_samples, seed=seed)[0]


def override_fractions(logits_zs: Any, logits_ft: Any, *, alpha: float = 0.5) -> tuple[float, float]:
    """How often the ensemble sides with the zero-shot model against the fine-tuned one, and the reverse (Fig. 5).

    The ensemble is the output-space ensemble of logits, (1 − α)·z_zs + α·z_ft; for a linear classifier on the
    zero-shot model's features this equals WiSE-FT at the same α (paper Sec. 2). Among all N examples:

    - "zero-shot overrides": argmax ens = argmax z_zs ≠ argmax z_ft;
    - "zero-shot is overridden": argmax ens = argmax z_ft ≠ argmax z_zs.

    Both are fractions of all examples (not of the disagreements), so they add up to at most the disagreement
    rate (the ensemble may also pick a third class). Ties in an argmax go to the lowest class index.

    Returns:
        ``(overrides, overridden)``.
    """
    if not 0.0 <= alpha <= 1.0:
        raise WiseftError(f"override_fractions: alpha {alpha!r} outside [0, 1]")
    zs = _logits(logits_zs, "logits_zs")
    ft = _logits(logits_ft, "logits_ft", zs.shape[0])
    p_zs, p_ft = zs.argmax(1), ft.argmax(1)
    p_ens = ((1.0 - alpha) * zs + alpha * ft).argmax(1)
    differ = p_zs != p_ft
    return float(np.mean(differ & (p_ens == p_zs))), float(np.mean(differ & (p_ens == p_ft)))


def confidence_gap(logits: Any) -> float:
    """δ: the mean over examples of the top-1 logit minus the top-2 logit (paper Fig. 5, right).

    It is measured in logit units, so it compares two models only when their logits share a scale: true here,
    because the zero-shot head carries CLIP's temperature and the fine-tuned heads start from it.
    """
    z = _logits(logits, "logits")
    top2 = -np.partition(-z, 1, axis=1)[:, :2]  # columns: largest, second largest
    return float(np.mean(top2[:, 0] - top2[:, 1]))


# ------------------------------------------------------------------------------------------- together
def diversity_measures(
    logits_zs: Any,
    logits_ft: Any,
    labels: Any,
    *,
    features_zs: Any = None,
    features_ft: Any = None,
    alpha: float = 0.5,
    cka_max_samples: int | None = 10000,
    seed: int = 0,
) -> dict[str, tuple[float, int]]:
    """Every measure of :data:`MEASURES` for one model pair on one dataset.

    Args:
        logits_zs: zero-shot (first model's) logits [N, C], in the task's class space.
        logits_ft: fine-tuned (second model's) logits [N, C].
        labels: true classes [N].
        features_zs: representations for CKA [N, d1], e.g. the image encoders' outputs. ``None`` (with
            ``features_ft``) computes CKA on the logits: for a linear classifier on the frozen zero-shot encoder
            the features are identical, and the logits are where the two models' representations differ (our
            reading of Figs. 5 and 30, which compare the zero-shot model with an LC; not stated in the paper).
        features_ft: the second model's representations [N, d2].
        alpha: mixing coefficient of the output-space ensemble for the override fractions (paper: 0.5).
        cka_max_samples: subsample size for CKA (profile key ``baselines.cka_max_samples``); ``None``: all.
        seed: seed of the CKA subsample.

    Returns:
        ``{measure: (value, n)}`` in the order of :data:`MEASURES`, with ``confidence_gap = δ_zs − δ_ft``.
    """
    zs = _logits(logits_zs, "logits_zs")
    n = zs.shape[0]
    ft = _logits(logits_ft, "logits_ft", n)
    if ft.shape[1] != zs.shape[1]:
        raise WiseftError(f"logits_ft has {ft.shape[1]} classes but logits_zs has {zs.shape[1]}")
    y = _labels(labels, "labels", n)
    if (features_zs is None) != (features_ft is None):
        raise WiseftError("pass both features_zs and features_ft for CKA, or neither (CKA on the logits)")
    p_zs, p_ft = zs.argmax(1), ft.argmax(1)
    p_ens = ((1.0 - alpha) * zs + alpha * ft).argmax(1)
    overrides, overridden = override_fractions(zs, ft, alpha=alpha)
    if features_zs is None:
        log.info("CKA computed on the logits (no features given)")
        features_zs, features_ft = zs, ft
    cka, n_cka = linear_cka(features_zs, features_ft, max_samples=cka_max_samples, seed=seed)
    delta_zs, delta_ft = confidence_gap(zs), confidence_gap(ft)
    values = {
        "accuracy_zs": (float(np.mean(p_zs == y)), n),
        "accuracy_ft": (float(np.mean(p_ft == y)), n),
        "accuracy_ens": (float(np.mean(p_ens == y)), n),
        "disagreement": (float(np.mean(p_zs != p_ft)), n),
        "prediction_diversity": (prediction_diversity(p_zs, p_ft, y), n),
        "kappa_complement": (kappa_complement(p_zs, p_ft), n),
        "kl_divergence": (mean_kl_divergence(zs, ft), n),
        "cka_complement": (1.0 - cka, n_cka),
        "zs_overrides": (overrides, n),
        "zs_overridden": (overridden, n),
        "confidence_zs": (delta_zs, n),
        "confidence_ft": (delta_ft, n),
        "confidence_gap": (delta_zs - delta_ft, n),
    }
    assert tuple(values) == MEASURES
    return values


def diversity_frame(dataset: str, logits_zs: Any, logits_ft: Any, labels: Any, *, pair: str = "zeroshot_vs_finetuned",
                    **kwargs: Any) -> pd.DataFrame:
    """:func:`diversity_measures` as a tidy frame with the columns :data:`COLUMNS` (one row per measure).

    Args:
        dataset: the evaluation set's registry name (``imagenet-a``); written into every row.
        logits_zs, logits_ft, labels: as in :func:`diversity_measures`.
        pair: which two models were compared, e.g. ``"zeroshot_vs_lc"`` or the paper's baseline
            ``"lc_half1_vs_lc_half2"`` (Fig. 5 left), so one frame can hold several pairs.
        **kwargs: ``features_zs``, ``features_ft``, ``alpha``, ``cka_max_samples``, ``seed``.
    """
    values = diversity_measures(logits_zs, logits_ft, labels, **kwargs)
    rows = [{"dataset": dataset, "pair": pair, "measure": m, "value": v, "n": k} for m, (v, k) in values.items()]
    return pd.DataFrame.from_records(rows, columns=list(COLUMNS))
