"""The reference training set of a profile and its cached image features, shared by the training, baselines and
analyses steps: the same images, preprocessing and feature-cache keys wherever a linear head is fitted.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import WiseftError
from ..finetune.augment import eval_transform, preprocess_of
from ..finetune.features import FeatureSet, cached_features, dataset_fingerprint
from ..paths import cache_dir
from ..paths import data_root as default_data_root
from ..profile import Profile

__all__ = ["WithTransform", "reference_root", "reference_set", "cached_reference_features"]


def reference_root(profile: Profile) -> Path:
    """The folder the reference dataset is read from: ``data.root``, else the default data root."""
    return Path(profile.data.root).expanduser() if profile.data.root else default_data_root()


def reference_set(profile: Profile) -> torch.utils.data.Dataset:
    """The reference training set without a transform (PIL images); it must expose ``classnames``."""
    from ..datasets import create_train_set

    ds = create_train_set(profile.data.reference, reference_root(profile), None, "train")
    if not getattr(ds, "classnames", None):
        raise WiseftError(f"dataset {profile.data.reference!r} exposes no class names")
    return ds


class WithTransform(torch.utils.data.Dataset):
    """``base[i] = (image, label)`` with ``transform`` applied to the image; passes ``samples``/``targets``
    through so that feature-cache keys and label look-ups still see the files."""

    def __init__(self, base: torch.utils.data.Dataset, transform):
        self.base, self.transform = base, transform

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int):
        image, label = self.base[index]
        return self.transform(image), label

    @property
    def samples(self):
        return getattr(self.base, "samples", None)

    @property
    def files(self):
        return getattr(self.base, "files", None)

    @property
    def targets(self):
        return getattr(self.base, "targets", None)


def _encoder(classifier: torch.nn.Module) -> torch.nn.Module:
    return classifier.image_encoder


def cached_reference_features(profile: Profile, classifier: torch.nn.Module, base: torch.utils.data.Dataset,
                              device: torch.device, split: str = "train") -> FeatureSet:
    """Image features of ``base`` (a split of the reference dataset) under ``classifier``'s encoder and
    evaluation preprocessing, computed once and then read from the feature cache."""
    pre = preprocess_of(classifier)
    encoder = _encoder(classifier)
    dataset = WithTransform(base, eval_transform(pre))
    dataset_id = dataset_fingerprint(dataset, profile.data.reference, split, {"root": str(reference_root(profile))})
    return cached_features(encoder, dataset, cache_dir=cache_dir(), dataset_id=dataset_id,
                           preprocess={**pre.describe(), "transform": "eval"}, batch_size=profile.eval.batch_size,
                           num_workers=profile.eval.num_workers, device=device, precision=profile.eval.precision)
