"""Shared step helpers (``wiseft.steps.common``)."""

from __future__ import annotations

import numpy as np
import torch

from wiseft.datasets import EvalSet
from wiseft.profile import load_profile
from wiseft.steps import common as C


class _LabelsOnly(torch.utils.data.Dataset):
    """A training set whose labels are known without opening an image; opening one fails the test."""

    labels = np.repeat(np.arange(5), 10)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        raise AssertionError(f"image {index} was decoded only to learn its label")


def test_heldout_set_reads_the_labels_without_decoding_the_training_images(monkeypatch):
    # ImageNet has no held-out split: it is carved out of 1.28 M training images, which must not all be decoded.
    monkeypatch.setattr(C, "get_dataset_cfg", lambda name: {"name": name, "train_split": "train"})
    monkeypatch.setattr(C, "create_eval_set", lambda name, root, transform, **kw: EvalSet(
        name=name, dataset=_LabelsOnly(), classnames=[str(i) for i in range(5)], protocol=None, role=kw["role"]))
    profile = load_profile("imagenet-vitb16", overrides=["finetune.lc.heldout_fraction=0.2"])

    held = C.heldout_set(profile, transform=None)

    assert held.name == "imagenet:heldout" and held.role == "heldout"
    assert len(held) == 10 and sorted(np.unique(_LabelsOnly.labels[held.dataset.indices])) == [0, 1, 2, 3, 4]
