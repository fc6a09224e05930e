"""Diagonal Fisher from sampled labels, Fisher-weighted merging with a floor, safetensors storage."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from wiseft.errors import CheckpointError, IncompatibleStateError, WiseftError
from wiseft.evaluation import evaluate_settings
from wiseft.fisher import (FISHER_FLOOR, compute_fisher, fisher_merge, fisher_merge_into_, fisher_sample_indices,
                           fisher_settings, load_fisher, save_fisher)
from wiseft.interpolation import clone_state_dict, interpolate_state_dicts


def test_head_fisher_matches_the_analytic_gradient(make_classifier, counting_dataset):
    model = make_classifier(num_classes=4, seed=0)
    model.image_encoder.requires_grad_(False)  # Fisher of the head only
    data = counting_dataset(12, 4, seed=3)
    fisher = compute_fisher(model, data, indices=range(10), seed=11, batch_size=4)
    assert set(fisher) == {"head.weight", "head.bias"}

    generator = torch.Generator().manual_seed(11)
    grad_w, grad_b = torch.zeros(4, 16), torch.zeros(4)
    with torch.no_grad():
        for i in range(10):
            x = data.images[i : i + 1]
            logits = model(x)
            p = torch.softmax(logits, -1)
            y = torch.multinomial(p, 1, generator=generator).item()
            err = p[0] - F.one_hot(torch.tensor(y), 4).float()  # d(−log p_y)/dlogits
            grad_w += torch.outer(err, F.normalize(model.encode(x), dim=-1)[0]) ** 2
            grad_b += err ** 2
    assert torch.allclose(fisher["head.weight"], grad_w / 10, rtol=1e-4, atol=1e-7)
    assert torch.allclose(fisher["head.bias"], grad_b / 10, rtol=1e-4, atol=1e-7)


def test_full_fisher_is_nonnegative_and_seeded(make_classifier, counting_dataset):
    model = make_classifier(num_classes=3, seed=1)
    data = counting_dataset(6, 3)
    f1 = compute_fisher(model, data, num_samples=4, seed=0)
    f2 = compute_fisher(model, data, num_samples=4, seed=0)
    assert set(f1) == {n for n, _ in model.named_parameters()}
    assert all(torch.equal(f1[k], f2[k]) and bool((f1[k] >= 0).all()) for k in f1)


class _Recording(torch.utils.data.Dataset):
    """A class-sorted dataset (``per_class`` images of each class in turn) that records the indices it serves."""

    def __init__(self, num_classes: int, per_class: int):
        g = torch.Generator().manual_seed(0)
        self.labels = np.repeat(np.arange(num_classes), per_class)
        self.images = torch.randn(len(self.labels), 3, 32, 32, generator=g)
        self.served: list[int] = []

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        self.served.append(int(i))
        return self.images[i], int(self.labels[i])


def test_fisher_samples_every_class_of_a_class_sorted_set(make_classifier):
    """The first examples in storage order are all class 0; the Fisher's sample has every class alike."""
    model = make_classifier(num_classes=4, seed=0)
    model.image_encoder.requires_grad_(False)
    data = _Recording(num_classes=4, per_class=10)
    compute_fisher(model, data, num_samples=8, seed=3, batch_size=4)
    assert np.bincount(data.labels[data.served], minlength=4).tolist() == [2, 2, 2, 2]
    data.served.clear()
    compute_fisher(model, data, num_samples=8, seed=3, batch_size=4)
    first = list(data.served)
    data.served.clear()
    compute_fisher(model, data, num_samples=8, seed=4, batch_size=4)
    assert first != data.served  # seeded: another seed, another sample of the same balance


def test_balanced_indices():
    labels = np.array([0] * 10 + [1] * 10 + [2] * 1 + [3] * 5)
    idx = fisher_sample_indices(labels, 11, seed=0)
    assert len(idx) == 11 and len(set(idx)) == 11 and list(idx) == sorted(idx)
    assert sorted(np.bincount(labels[idx], minlength=4).tolist()) == [1, 3, 3, 4]  # class 2 has one image
    assert np.array_equal(idx, fisher_sample_indices(labels, 11, seed=0))
    assert np.array_equal(fisher_sample_indices(labels, None), np.arange(len(labels)))
    few = fisher_sample_indices(labels, 2, seed=1)  # fewer samples than classes: two classes, one each
    assert len(set(labels[few])) == 2


def test_fisher_samples_cover_every_imagenet_class(tmp_path):
    """On ImageNet's layout (class-sorted folders), the Fisher's images come from the evaluation split, as the
    official code runs, and 1000 of them cover all 1000 classes (the first 1000 in storage order cover 500)."""
    from wiseft.datasets.fixtures import build_fake_dataset
    from wiseft.profile import load_profile
    from wiseft.steps.interpolate import fisher_dataset

    build_fake_dataset("imagenet", tmp_path, per_class=2, splits=["val"])
    profile = load_profile("imagenet-vitb16", [f"data.root={tmp_path}"], check_references=False)
    assert (profile.interpolation.fisher_split, profile.interpolation.fisher_floor) == ("eval", FISHER_FLOOR)
    images = fisher_dataset(profile, transform=None)
    assert all("/imagenet/val/" in f for f in images.files)
    assert len(np.unique(images.labels[:1000])) == 500
    idx = fisher_sample_indices(images.labels, profile.interpolation.fisher_samples, seed=profile.seed)
    assert len(idx) == 1000 and len(np.unique(images.labels[idx])) == 1000


def _pair():
    g = torch.Generator().manual_seed(0)
    sd0 = {"w": torch.randn(4, 3, generator=g), "steps": torch.tensor([3])}
    sd1 = {"w": torch.randn(4, 3, generator=g), "steps": torch.tensor([3])}
    return sd0, sd1


def test_merge_with_equal_fishers_is_plain_interpolation():
    sd0, sd1 = _pair()
    f = {"w": torch.rand(4, 3) + 0.1}
    merged = fisher_merge([sd0, sd1], [f, f], [0.7, 0.3])
    assert torch.allclose(merged["w"], interpolate_state_dicts(sd0, sd1, 0.3)["w"], atol=1e-6)
    assert torch.equal(merged["steps"], sd0["steps"])


def test_merge_follows_the_larger_fisher_and_the_floor():
    sd0, sd1 = _pair()
    big, small = {"w": torch.full((4, 3), 1e4)}, {"w": torch.full((4, 3), 1e-4)}
    assert torch.allclose(fisher_merge([sd0, sd1], [big, small], [0.5, 0.5])["w"], sd0["w"], atol=1e-3)
    zero = {"w": torch.zeros(4, 3)}
    floored = fisher_merge([sd0, sd1], [zero, zero], [0.5, 0.5], floor=1e-6)  # both floored: equal weights
    assert torch.allclose(floored["w"], (sd0["w"] + sd1["w"]) / 2, atol=1e-6)
    no_fisher = fisher_merge([sd0, sd1], [{}, {}], [0.25, 0.75])  # missing Fisher: plain interpolation
    assert torch.allclose(no_fisher["w"], 0.25 * sd0["w"] + 0.75 * sd1["w"], atol=1e-6)


def test_merge_errors():
    sd0, sd1 = _pair()
    with pytest.raises(IncompatibleStateError, match="'w' has a Fisher for some"):
        fisher_merge([sd0, sd1], [{"w": torch.ones(4, 3)}, {}], [0.5, 0.5])
    with pytest.raises(WiseftError, match="as many"):
        fisher_merge([sd0, sd1], [{}], [0.5, 0.5])
    with pytest.raises(WiseftError, match="positive sum"):
        fisher_merge([sd0, sd1], [{}, {}], [0.0, 0.0])
    with pytest.raises(WiseftError, match="floor"):
        fisher_merge([sd0, sd1], [{}, {}], [0.5, 0.5], floor=0.0)
    sd1["w"] = torch.zeros(2, 2)
    with pytest.raises(IncompatibleStateError, match="'w'"):
        fisher_merge([sd0, sd1], [{}, {}], [0.5, 0.5])


def test_in_place_merge_and_settings_in_a_sweep(make_classifier, counting_dataset):
    zeroshot, finetuned = make_classifier(seed=0), make_classifier(seed=1)
    theta0, theta1 = clone_state_dict(zeroshot), clone_state_dict(finetuned)
    f0 = {k: torch.rand_like(v) for k, v in theta0.items()}
    f1 = {k: torch.rand_like(v) for k, v in theta1.items()}
    work = copy.deepcopy(zeroshot)
    fisher_merge_into_(work, [theta0, theta1], [f0, f1], [0.6, 0.4])
    expected = fisher_merge([theta0, theta1], [f0, f1], [0.6, 0.4])
    assert all(torch.equal(work.state_dict()[k], expected[k]) for k in expected)

    from wiseft.datasets.base import EvalSet, Protocol

    eval_set = EvalSet("toy", counting_dataset(10, 5), [str(i) for i in range(5)], Protocol())
    settings = fisher_settings(theta0, theta1, f0, f1, alphas=[0.0, 0.5, 1.0])
    result = evaluate_settings(work, settings, [eval_set], batch_size=5)
    assert [s.method for s in result.settings] == ["fisher"] * 3
    assert set(result.sets["toy"].metrics) == {"fisher α=0", "fisher α=0.5", "fisher α=1"}


def test_fisher_saved_as_safetensors(tmp_path):
    fisher = {"head.weight": torch.rand(3, 4), "head.bias": torch.rand(3)}
    path = save_fisher(fisher, tmp_path / "fisher_zeroshot.safetensors", {"num_samples": 256})
    back = load_fisher(path)
    assert all(torch.equal(back[k], v) for k, v in fisher.items())
    torch.save(fisher, tmp_path / "fisher.pt")
    with pytest.raises(CheckpointError, match="pickle|torch.save"):
        load_fisher(tmp_path / "fisher.pt")
