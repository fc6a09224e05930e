"""Diversity measures (paper Fig. 5, App. E) against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from wiseft.baselines import analysis as A
from wiseft.errors import WiseftError


def _from_confusion(table):
    """Expand a confusion table (rows: model a's class, columns: model b's) into two prediction arrays."""
    a, b = [], []
    for i, row in enumerate(table):
        for j, count in enumerate(row):
            a += [i] * count
            b += [j] * count
    return np.array(a), np.array(b)


# ------------------------------------------------------------------------------------- identical models
def test_identical_models_have_zero_diversity():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(200, 7))
    labels = rng.integers(0, 7, size=200)
    preds = logits.argmax(1)
    assert A.prediction_diversity(preds, preds, labels) == 0.0
    assert A.kappa_complement(preds, preds) == 0.0
    assert A.mean_kl_divergence(logits, logits) == 0.0
    assert A.mean_kl_divergence(logits, logits + 3.0) == pytest.approx(0.0, abs=1e-12)  # softmax is shift-invariant
    assert A.cka_complement(logits, logits) == pytest.approx(0.0, abs=1e-12)
    assert A.override_fractions(logits, logits) == (0.0, 0.0)
    values = A.diversity_measures(logits, logits, labels)
    for m in ("disagreement", "prediction_diversity", "kappa_complement", "kl_divergence", "cka_complement",
              "zs_overrides", "zs_overridden", "confidence_gap"):
        assert values[m][0] == pytest.approx(0.0, abs=1e-12), m


def test_identical_features_give_cka_complement_zero_and_cka_is_rotation_invariant():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 16))
    q, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    assert A.cka_complement(x, x) == pytest.approx(0.0, abs=1e-12)
    assert A.cka_complement(x, 5.0 * x @ q + 2.0) == pytest.approx(0.0, abs=1e-10)


# ------------------------------------------------------------------------------------ hand computations
def test_prediction_diversity_counts_disagreements_with_one_correct_model():
    y = np.array([0, 1, 2, 0, 1, 2])
    a = np.array([0, 1, 1, 2, 1, 0])
    b = np.array([0, 2, 2, 0, 0, 1])
    # i0 agree; i1 a right; i2 b right; i3 b right; i4 a right; i5 disagree but both wrong -> 4 of 6
    assert A.prediction_diversity(a, b, y) == pytest.approx(4 / 6)
    assert A.prediction_diversity(torch.tensor(a), torch.tensor(b), torch.tensor(y)) == pytest.approx(4 / 6)


@pytest.mark.parametrize(
    "table, kappa",
    [
        # p_o = 35/50 = 0.7; marginals a (0.5, 0.5), b (0.6, 0.4): p_e = 0.5 -> kappa = 0.2 / 0.5
        ([[20, 5], [10, 15]], 0.4),
        # p_o = 22/30; p_e = (12*11 + 12*12 + 6*7) / 900 = 318/900 -> kappa = (660 - 318) / (900 - 318)
        ([[10, 2, 0], [1, 8, 3], [0, 2, 4]], 342 / 582),
        # agreement exactly at chance: p_o = p_e = 0.5
        ([[10, 10], [10, 10]], 0.0),
        # complete disagreement on two balanced classes: p_o = 0, p_e = 0.5 -> kappa = -1
        ([[0, 10], [10, 0]], -1.0),
    ],
)
def test_kappa_from_known_confusion_tables(table, kappa):
    from sklearn.metrics import cohen_kappa_score  # imported here: sklearn costs seconds to import

    a, b = _from_confusion(table)
    assert A.cohen_kappa(a, b) == pytest.approx(kappa, abs=1e-12)
    assert A.cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)
    assert A.kappa_complement(a, b) == pytest.approx(1.0 - kappa, abs=1e-12)


def test_kappa_of_identical_constant_predictions_is_one():
    a = np.zeros(10, dtype=int)
    assert A.cohen_kappa(a, a) == 1.0  # p_e = p_o = 1: defined as perfect agreement


def test_kl_divergence_small_example_and_direction():
    p = np.array([[0.0, 0.0]])  # softmax (1/2, 1/2)
    q = np.log(np.array([[0.25, 0.75]]))
    # KL(P||Q) = 0.5 ln(0.5/0.25) + 0.5 ln(0.5/0.75) = 0.5 ln(4/3)
    assert A.mean_kl_divergence(p, q) == pytest.approx(0.5 * math.log(4 / 3), rel=1e-12)
    # the other direction is a different number: 0.25 ln(0.5) + 0.75 ln(1.5)
    assert A.mean_kl_divergence(q, p) == pytest.approx(0.25 * math.log(0.5) + 0.75 * math.log(1.5), rel=1e-12)
    # the mean over examples
    both_p, both_q = np.vstack([p, p]), np.vstack([q, p])
    assert A.mean_kl_divergence(both_p, both_q) == pytest.approx(0.25 * math.log(4 / 3), rel=1e-12)


def test_kl_direction_used_by_diversity_measures_is_zero_shot_first():
    zs, ft = np.array([[0.0, 0.0]]), np.log(np.array([[0.25, 0.75]]))
    values = A.diversity_measures(zs, ft, np.array([0]))
    assert values["kl_divergence"][0] == pytest.approx(0.5 * math.log(4 / 3), rel=1e-12)


def test_cka_of_one_dimensional_features_is_squared_correlation():
    x = np.array([[1.0], [2.0], [3.0]])  # centred (-1, 0, 1)
    y = np.array([[1.0], [0.0], [2.0]])  # centred (0, -1, 1): correlation 1/2
    cka, n = A.linear_cka(x, y)
    assert (cka, n) == (pytest.approx(0.25, abs=1e-12), 3)


def test_linear_cka_matches_the_hsic_formula():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(40, 5)), rng.normal(size=(40, 3))
    y[:, 0] += x[:, 0]
    h = np.eye(40) - np.ones((40, 40)) / 40

    def hsic(k, l):
        return np.trace(k @ h @ l @ h)

    k, l = x @ x.T, y @ y.T
    expected = hsic(k, l) / math.sqrt(hsic(k, k) * hsic(l, l))
    assert A.linear_cka(x, y)[0] == pytest.approx(expected, rel=1e-10)


def test_cka_subsample_is_seeded_and_sized():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(60, 4))
    y = x + rng.normal(size=(60, 4))
    v1, n1 = A.linear_cka(x, y, max_samples=20, seed=5)
    v2, _ = A.linear_cka(x, y, max_samples=20, seed=5)
    v3, _ = A.linear_cka(x, y, max_samples=20, seed=6)
    assert n1 == 20 and v1 == v2 and v1 != v3
    assert A.linear_cka(x, y, max_samples=60)[1] == 60
    assert A.linear_cka(x, y, max_samples=None)[1] == 60


def test_cka_of_constant_features_is_nan():
    assert math.isnan(A.linear_cka(np.ones((5, 2)), np.arange(10.0).reshape(5, 2))[0])


def test_override_fractions_hand_example():
    zs = np.array([[3, 0, 0], [0, 1, 0], [1, 0, 0], [2, 0, 1.5], [0, 0, 4]], dtype=float)
    ft = np.array([[0, 1, 0], [0, 0, 5], [2, 0, 0], [0, 2, 1.5], [1, 0, 0]], dtype=float)
    # ensemble 0.5*(zs+ft): [1.5,.5,0]->0 (=zs), [0,.5,2.5]->2 (=ft), agree, [1,1,1.5]->2 (third), [.5,0,2]->2 (=zs)
    assert A.override_fractions(zs, ft) == (pytest.approx(2 / 5), pytest.approx(1 / 5))
    # at alpha=1 the ensemble is the fine-tuned model: it is always the zero-shot model that is overridden
    assert A.override_fractions(zs, ft, alpha=1.0) == (0.0, pytest.approx(4 / 5))
    values = A.diversity_measures(zs, ft, np.array([0, 2, 0, 2, 2]))
    assert values["disagreement"][0] == pytest.approx(4 / 5)
    assert values["accuracy_ens"][0] == pytest.approx(1.0)


def test_confidence_gap_hand_example():
    zs = np.array([[3.0, 1.0, 0.0], [0.0, 5.0, 4.5]])  # gaps 2 and 0.5 -> 1.25
    ft = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])  # gaps 0 and 1 -> 0.5
    assert A.confidence_gap(zs) == pytest.approx(1.25)
    values = A.diversity_measures(zs, ft, np.array([0, 1]))
    assert values["confidence_zs"][0] == pytest.approx(1.25)
    assert values["confidence_ft"][0] == pytest.approx(0.5)
    assert values["confidence_gap"][0] == pytest.approx(0.75)


# ---------------------------------------------------------------------------------------------- frame
def test_diversity_frame_is_tidy_and_uses_features_when_given():
    rng = np.random.default_rng(4)
    zs, ft = rng.normal(size=(50, 5)), rng.normal(size=(50, 5))
    feats = rng.normal(size=(50, 8))
    labels = rng.integers(0, 5, size=50)
    frame = A.diversity_frame("imagenet-a", torch.tensor(zs), ft, labels, features_zs=feats, features_ft=feats,
                              cka_max_samples=30)
    assert list(frame.columns) == list(A.COLUMNS)
    assert list(frame["measure"]) == list(A.MEASURES)
    assert set(frame["dataset"]) == {"imagenet-a"} and set(frame["pair"]) == {"zeroshot_vs_finetuned"}
    cka_row = frame.set_index("measure").loc["cka_complement"]
    assert cka_row["value"] == pytest.approx(0.0, abs=1e-12) and cka_row["n"] == 30
    assert frame.set_index("measure").loc["prediction_diversity", "n"] == 50


def test_bad_inputs_name_the_culprit():
    zs = np.zeros((4, 3))
    with pytest.raises(WiseftError, match="logits_ft"):
        A.diversity_measures(zs, np.zeros((5, 3)), np.zeros(4, dtype=int))
    with pytest.raises(WiseftError, match="labels"):
        A.diversity_measures(zs, zs, np.zeros(4))  # float labels
    with pytest.raises(WiseftError, match="both"):
        A.diversity_measures(zs, zs, np.zeros(4, dtype=int), features_zs=zs)
    with pytest.raises(WiseftError, match="NaN"):
        A.confidence_gap(np.full((2, 3), np.nan))
