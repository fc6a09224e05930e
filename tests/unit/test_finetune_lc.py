"""Linear classifier: feature cache keyed by model, random search chosen on held-out data, k-shot subsets."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from wiseft.errors import DatasetError, WiseftError
from wiseft.finetune import features as F
from wiseft.finetune import search as S
from wiseft.finetune.epoch_budget import DOUBLING_HPARAMS, double_until_saturated, find_epoch_budget
from wiseft.finetune.kshot import dataset_labels, kshot_indices
from wiseft.finetune.linear import LCHparams, LinearHead, linear_accuracy, train_linear
from wiseft.profile import LCCfg

pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------------------------------------- features
class CountingEncoder(torch.nn.Module):
    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.proj = torch.nn.Linear(12, 5)
        self.images_seen = 0

    def forward(self, x):
        self.images_seen += x.shape[0]
        return self.proj(x.flatten(1))


class Files(torch.utils.data.Dataset):
    """A dataset with a file list and targets, like an ImageFolder."""

    def __init__(self, n=10, prefix="img"):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 3, 2, 2, generator=g)
        self.targets = [i % 3 for i in range(n)]
        self.samples = [(f"{prefix}{i}.png", t) for i, t in enumerate(self.targets)]

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        return self.x[i], self.targets[i]


def _cached(encoder, ds, tmp_path, name="toy"):
    return F.cached_features(encoder, ds, cache_dir=tmp_path, batch_size=4,
                             dataset_id=F.dataset_fingerprint(ds, name, "train"), preprocess={"size": 2})


def test_features_are_computed_once_then_memory_mapped(tmp_path):
    enc, ds = CountingEncoder(), Files()
    first = _cached(enc, ds, tmp_path)
    assert enc.images_seen == 10
    second = _cached(enc, ds, tmp_path)
    assert enc.images_seen == 10  # a hit: nothing recomputed
    assert isinstance(second.features, np.memmap) and second.features.shape == (10, 5)
    np.testing.assert_array_equal(first.features, second.features)
    np.testing.assert_array_equal(second.labels, ds.targets)
    with torch.no_grad():
        np.testing.assert_allclose(second.features, enc.proj(ds.x.flatten(1)).numpy(), rtol=1e-6)


def test_cache_key_includes_the_model_weights(tmp_path):
    ds = Files()
    a = _cached(CountingEncoder(seed=0), ds, tmp_path)
    changed = CountingEncoder(seed=0)
    with torch.no_grad():
        changed.proj.bias[0] += 1e-3  # same architecture, one weight different
    b = _cached(changed, ds, tmp_path)
    assert changed.images_seen == 10 and a.path != b.path  # a miss
    assert not np.array_equal(a.features, b.features)


def test_cache_key_includes_the_files_and_the_preprocessing(tmp_path):
    enc = CountingEncoder()
    a = _cached(enc, Files(prefix="a"), tmp_path)
    b = _cached(enc, Files(prefix="b"), tmp_path)
    assert a.path != b.path
    c = F.cached_features(enc, Files(prefix="a"), cache_dir=tmp_path, preprocess={"size": 3},
                          dataset_id=F.dataset_fingerprint(Files(prefix="a"), "toy", "train"))
    assert c.path not in (a.path, b.path)
    with pytest.raises(WiseftError, match="fingerprint"):
        F.feature_cache_key("", {}, {})


def test_a_half_written_cache_entry_is_recomputed(tmp_path):
    enc, ds = CountingEncoder(), Files()
    entry = _cached(enc, ds, tmp_path).path
    (entry / "meta.json").unlink()  # as if killed before the marker
    _cached(enc, ds, tmp_path)
    assert enc.images_seen == 20


# ------------------------------------------------------------------------------------------------ linear
def _blobs(n_per_class=40, classes=3, dim=8, seed=0, noise=0.6):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, dim, generator=g) * 2
    y = torch.arange(classes).repeat_interleave(n_per_class)
    x = centres[y] + noise * torch.randn(len(y), dim, generator=g)
    return x, y, centres


def test_training_from_the_zero_shot_head_keeps_its_layout_and_improves():
    x, y, centres = _blobs()
    init = (torch.nn.functional.normalize(centres, dim=-1) * 0.1, torch.zeros(3))  # a weak "zero-shot" head
    before = linear_accuracy(LinearHead(*init), x, y)
    head = train_linear(x, y, LCHparams(lr=0.05, epochs=20, batch_size=32), init=init)
    assert head.weight.shape == (3, 8) and head.bias.shape == (3,)
    assert linear_accuracy(head, x, y) >= max(before, 0.9)


def test_random_start_is_seeded_and_learns():
    x, y, _ = _blobs()
    hp = LCHparams(lr=0.05, epochs=20, batch_size=32)
    a = train_linear(x, y, hp, num_classes=3, seed=1)
    b = train_linear(x, y, hp, num_classes=3, seed=1)
    assert torch.equal(a.weight, b.weight)
    assert linear_accuracy(a, x, y) > 0.9


def test_l1_penalty_shrinks_weights():
    x, y, _ = _blobs()
    plain = train_linear(x, y, LCHparams(lr=0.05, epochs=10, batch_size=32), num_classes=3)
    sparse = train_linear(x, y, LCHparams(lr=0.05, epochs=10, batch_size=32, l1=1e-2), num_classes=3)
    assert sparse.weight.abs().sum() < plain.weight.abs().sum()


# ------------------------------------------------------------------------------------------------ search
def test_trials_follow_the_papers_ranges():
    cfg = LCCfg(search_trials=50, max_epochs=7)
    trials = S.sample_trials(cfg, seed=0)
    assert len(trials) == 200 and [t.regularizer for t in trials[::50]] == ["none", "wd", "l1", "ls"]
    for t in trials:
        hp = t.hparams
        assert hp.batch_size in (64, 128, 256) and 1 <= hp.epochs <= 7
        assert 1e-6 <= hp.lr <= 1.0
        assert (1e-4 <= hp.weight_decay <= 1.0) if t.regularizer == "wd" else hp.weight_decay == 0
        assert (1e-8 <= hp.l1 <= 1e-4) if t.regularizer == "l1" else hp.l1 == 0
        assert (0 <= hp.label_smoothing <= 0.25) if t.regularizer == "ls" else hp.label_smoothing == 0
    exps = [-math.log10(t.hparams.lr) for t in trials]
    assert min(exps) < 1 and max(exps) > 5  # spread over 10^-U[0, 6]
    assert [t.hparams for t in trials] == [t.hparams for t in S.sample_trials(cfg, seed=0)]
    assert [t.hparams for t in trials] != [t.hparams for t in S.sample_trials(cfg, seed=1)]


# ------------------------------------------------------------------------------------- epoch budget T (D.3)
def test_doubling_stops_at_the_first_flat_doubling_after_training_has_started():
    curve = {0: 0.10, 1: 0.10, 2: 0.10, 4: 0.30, 8: 0.60, 16: 0.70, 32: 0.7005, 64: 0.71}
    asked = []

    def score(epochs):
        asked.append(epochs)
        return curve[epochs]

    budget = double_until_saturated(score, tolerance=1e-3)
    # 1 -> 2 is flat but nothing has been learnt yet; 16 -> 32 is the first flat doubling after that
    assert (budget.epochs, budget.saturated) == (16, True)
    assert asked == [0, 1, 2, 4, 8, 16, 32]
    capped = double_until_saturated(lambda e: curve[e], limit=8, tolerance=1e-3)
    assert (capped.epochs, capped.saturated) == (8, False)
    with pytest.raises(WiseftError, match="epoch_search"):
        double_until_saturated(lambda e: 0.0, start=0)


def _separable(n_per_class, seed, classes=6, dim=16, noise=0.7):
    centres = torch.randn(classes, dim, generator=torch.Generator().manual_seed(0)) * 2
    y = torch.arange(classes).repeat_interleave(n_per_class)
    return centres[y] + noise * torch.randn(len(y), dim, generator=torch.Generator().manual_seed(seed)), y


def test_doubling_search_finds_where_a_real_fit_saturates():
    """A random-start head with the paper's fixed fit (AdamW, lr 1e-3, wd 0.01) learns over several doublings,
    then held-out accuracy stops rising: T is the budget just before the first flat doubling."""
    x, y = _separable(500, seed=0)
    hx, hy = _separable(100, seed=1)
    budget = find_epoch_budget(x, y, hx, hy, num_classes=6, seed=0, tolerance=5e-3)
    epochs = [e for e, _ in budget.history]
    accs = [acc for _, acc in budget.history]
    assert budget.saturated and epochs == [0] + [2 ** i for i in range(len(epochs) - 1)]
    assert accs[-1] - accs[-2] < 5e-3  # the last doubling is flat …
    assert all(b - a >= 5e-3 for a, b in zip(accs[1:-2], accs[2:-1]))  # … every earlier one gained
    assert budget.epochs == epochs[-2] and budget.epochs >= 4 and accs[-2] > 0.95
    # the same fit by hand, at T
    head = train_linear(x, y, LCHparams(**{**DOUBLING_HPARAMS.as_dict(), "epochs": budget.epochs}), num_classes=6)
    assert linear_accuracy(head, hx, hy) == pytest.approx(accs[-2])


def test_search_draws_epochs_up_to_the_doubling_searchs_T():
    x, y = _separable(500, seed=0)
    hx, hy = _separable(100, seed=1)
    cfg = LCCfg(init="random", search_trials=6, regularizers=["none"], max_epochs=None, epoch_search_tolerance=5e-3)
    result = S.search_linear(x, y, cfg, num_classes=6, heldout=(hx, hy), seed=0, refit=False)
    T = result.epoch_budget.epochs
    assert T == find_epoch_budget(x, y, hx, hy, num_classes=6, seed=0, tolerance=5e-3).epochs
    assert all(1 <= t["epochs"] <= T for t in result.trials) and max(t["epochs"] for t in result.trials) > 1
    assert S.search_linear(x, y, LCCfg(init="random", search_trials=1, regularizers=["none"], max_epochs=3),
                           num_classes=6, heldout=(hx, hy), seed=0, refit=False).epoch_budget is None


def test_heldout_split_is_stratified_disjoint_and_seeded():
    labels = np.repeat(np.arange(4), [10, 20, 1, 50])
    train, held = S.heldout_split(labels, 0.1, seed=0)
    assert set(train) | set(held) == set(range(len(labels))) and not set(train) & set(held)
    assert np.bincount(labels[held], minlength=4).tolist() == [1, 2, 0, 5]
    assert np.array_equal(held, S.heldout_split(labels, 0.1, seed=0)[1])


def test_search_scores_every_trial_on_held_out_data_and_keeps_the_best(monkeypatch):
    x, y, centres = _blobs(n_per_class=30)
    init = (torch.nn.functional.normalize(centres, dim=-1), torch.zeros(3))
    held_x, held_y, _ = _blobs(n_per_class=10, seed=0)
    held_x = held_x + 0.01
    seen = []
    real = S.linear_accuracy

    def spy(head, feats, labels, **kw):
        seen.append(feats)
        return real(head, feats, labels, **kw)

    monkeypatch.setattr(S, "linear_accuracy", spy)
    cfg = LCCfg(search_trials=3, max_epochs=3, batch_sizes=[16, 32])
    result = S.search_linear(x, y, cfg, init=init, heldout=(held_x, held_y), seed=0)
    assert len(seen) == len(result.trials) == 12
    assert all(torch.equal(f, held_x) for f in seen)  # never scored on the training data
    best = max(result.trials, key=lambda t: t["heldout_acc"])
    assert result.heldout_acc == best["heldout_acc"]
    assert result.hparams.as_dict() == {k: best[k] for k in result.hparams.as_dict()}


def test_search_without_a_heldout_set_carves_one_out_of_training(monkeypatch):
    x, y, centres = _blobs(n_per_class=50)
    captured = []
    real = S.train_linear

    def spy(feats, labels, hp, **kw):
        captured.append(len(labels))
        return real(feats, labels, hp, **kw)

    monkeypatch.setattr(S, "train_linear", spy)
    cfg = LCCfg(search_trials=1, max_epochs=2, heldout_fraction=0.2, regularizers=["none", "wd"])
    result = S.search_linear(x, y, cfg, init=(centres, torch.zeros(3)), seed=3)
    assert captured[:2] == [120, 120]  # trials fit on 80 % …
    assert captured[-1] == 150  # … and the winner is refitted on everything
    assert result.regularizer in ("none", "wd")


def test_fixed_hyperparameters_skip_the_search():
    x, y, _ = _blobs()
    cfg = LCCfg(init="random", fixed={"lr": 0.05, "epochs": 3, "batch_size": 64})
    result = S.search_linear(x, y, cfg, num_classes=3, seed=0)
    assert result.trials == [] and result.heldout_acc is None
    assert result.hparams == LCHparams(lr=0.05, epochs=3, batch_size=64)


def test_zero_shot_start_needs_a_head():
    x, y, _ = _blobs()
    with pytest.raises(WiseftError, match="zero-shot"):
        S.search_linear(x, y, LCCfg(), seed=0)


# ------------------------------------------------------------------------------------------------ k-shot
def test_kshot_takes_k_per_class_seeded_and_nested():
    labels = np.repeat(np.arange(5), 30)
    np.random.default_rng(0).shuffle(labels)
    for k in (1, 5, 25):
        idx = kshot_indices(labels, k, seed=0)
        assert np.bincount(labels[idx], minlength=5).tolist() == [k] * 5
        assert np.array_equal(idx, kshot_indices(labels, k, seed=0))
    assert not np.array_equal(kshot_indices(labels, 5, seed=0), kshot_indices(labels, 5, seed=1))
    assert set(kshot_indices(labels, 1, seed=0)) <= set(kshot_indices(labels, 5, seed=0))


def test_kshot_names_classes_that_are_too_small():
    labels = np.array([0] * 5 + [1] * 2)
    with pytest.raises(DatasetError, match="class 1: 2"):
        kshot_indices(labels, 3, seed=0)
    with pytest.raises(DatasetError, match="class 2: 0"):
        kshot_indices(labels, 1, seed=0, num_classes=3)
    assert len(kshot_indices(labels, 3, seed=0, strict=False)) == 5


def test_dataset_labels_come_from_metadata_without_loading_images():
    class NoLoading(Files):
        def __getitem__(self, i):
            raise AssertionError("an image was loaded")

    ds = NoLoading(n=7)
    assert dataset_labels(ds).tolist() == [i % 3 for i in range(7)]
    assert dataset_labels(torch.utils.data.TensorDataset(torch.zeros(3, 1), torch.tensor([2, 0, 1]))).tolist() \
        == [2, 0, 1]
