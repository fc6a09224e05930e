"""Training transforms from a model's preprocessing, with per-sample randomness from (seed, epoch, index)."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from PIL import Image

from wiseft.errors import WiseftError
from wiseft.finetune.augment import (Preprocess, SeededDataset, eval_transform, preprocess_of, seeded_rng,
                                     train_transform)
from wiseft.finetune.sampler import BatchPlan, MicroBatchSampler

PRE = Preprocess(16, (0.5, 0.4, 0.3), (0.2, 0.2, 0.2))


class Pictures(torch.utils.data.Dataset):
    def __init__(self, transform, n=12):
        rng = np.random.default_rng(0)
        self.images = [Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)) for _ in range(n)]
        self.transform = transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.transform(self.images[i]), i % 3


@pytest.mark.parametrize("kind", ["clip", "strong", "none"])
def test_transforms_give_normalised_tensors_of_the_model_size(kind):
    out = train_transform(kind, PRE)(Image.new("L", (30, 20), 128))  # greyscale in, RGB out
    assert out.shape == (3, 16, 16) and out.dtype == torch.float32


def test_clip_augmentation_is_the_papers_random_resized_crop():
    tf = train_transform("clip", PRE, crop_scale=(0.9, 1.0))
    crop = tf.transforms[0]
    assert crop.scale == (0.9, 1.0) and crop.interpolation.value == "bicubic"


def test_unknown_augmentation_is_refused():
    with pytest.raises(WiseftError, match="augmentation"):
        train_transform("fancy", PRE)


def test_eval_transform_is_deterministic():
    image = Image.new("RGB", (40, 30), (10, 200, 30))
    tf = eval_transform(PRE)
    assert torch.equal(tf(image), tf(image))


def test_preprocess_is_read_from_open_clip_style_modules():
    class Visual(torch.nn.Module):
        image_size = (32, 32)
        preprocess_cfg = {"size": (32, 32), "mean": (0.1, 0.2, 0.3), "std": (0.4, 0.5, 0.6),
                          "interpolation": "bicubic"}

    class Encoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.visual = Visual()

    class Classifier(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.image_encoder = Encoder()

    pre = preprocess_of(Classifier())
    assert pre == Preprocess(32, (0.1, 0.2, 0.3), (0.4, 0.5, 0.6), "bicubic")
    with pytest.raises(WiseftError, match="image size"):
        preprocess_of(torch.nn.Linear(2, 2))


@pytest.mark.parametrize("kind", ["clip", "strong"])
def test_a_sample_depends_on_seed_epoch_and_index_only(kind):
    ds = SeededDataset(Pictures(train_transform(kind, PRE)), seed=1)
    a = ds[(0, 5)][0]
    torch.rand(10), random.random(), np.random.rand()  # unrelated draws in between change nothing
    assert torch.equal(a, ds[(0, 5)][0])
    assert not torch.equal(a, ds[(1, 5)][0])
    assert not torch.equal(a, SeededDataset(ds.dataset, seed=2)[(0, 5)][0])


def test_loading_a_sample_leaves_the_callers_random_streams_alone():
    ds = SeededDataset(Pictures(train_transform("strong", PRE)), seed=0)
    torch.manual_seed(4), random.seed(4), np.random.seed(4)
    expected = (torch.rand(3), random.random(), np.random.rand())
    torch.manual_seed(4), random.seed(4), np.random.seed(4)
    ds[(0, 1)]
    assert torch.equal(torch.rand(3), expected[0])
    assert random.random() == expected[1] and np.random.rand() == expected[2]


def test_seeded_rng_restores_state_after_an_error():
    before = torch.get_rng_state()
    with pytest.raises(RuntimeError):
        with seeded_rng(3):
            torch.rand(5)
            raise RuntimeError("boom")
    assert torch.equal(before, torch.get_rng_state())


def test_worker_count_does_not_change_the_batches():
    ds = SeededDataset(Pictures(train_transform("clip", PRE)), seed=3)
    plan = BatchPlan(len(ds), 4, 2, seed=3)

    def batches(workers):
        loader = torch.utils.data.DataLoader(ds, batch_sampler=MicroBatchSampler(plan, 1), num_workers=workers)
        return [x for x, _ in loader]

    for a, b in zip(batches(0), batches(2)):
        assert torch.equal(a, b)
