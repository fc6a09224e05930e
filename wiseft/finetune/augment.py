"""Training and evaluation transforms built from a model's own preprocessing, and seeded per-sample randomness.

* ``clip`` (the paper's code): ``RandomResizedCrop(size, scale=(0.9, 1.0), bicubic)``, RGB, normalise.
* ``strong`` (the paper's Fig. 15): timm's ImageNet training transform: random resized crop (scale 0.08–1),
  horizontal flip, colour jitter 0.4, bicubic, normalise.
* ``none``: open_clip's evaluation preprocessing: resize the shorter side, centre crop, normalise.

:class:`SeededDataset` draws each sample's augmentation from a seed derived from ``(seed, epoch, index)``, so a
run gives the same images whatever the number of loader workers and wherever it was resumed.
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torchvision import transforms as T

from ..errors import WiseftError
from .sampler import AUGMENT_STREAM, derive_seed

__all__ = ["Preprocess", "preprocess_of", "train_transform", "eval_transform", "seeded_rng", "SeededDataset",
           "AUGMENTATIONS"]

AUGMENTATIONS = ("clip", "strong", "none")
#: OpenAI CLIP's normalisation, used when a model does not declare its own.
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class Preprocess:
    """What a model expects of its input images."""

    image_size: int
    mean: tuple[float, ...] = OPENAI_MEAN
    std: tuple[float, ...] = OPENAI_STD
    interpolation: str = "bicubic"

    def describe(self) -> dict[str, Any]:
        """A JSON-able description (part of feature-cache keys)."""
        return {"image_size": self.image_size, "mean": list(self.mean), "std": list(self.std),
                "interpolation": self.interpolation}


def preprocess_of(model: torch.nn.Module) -> Preprocess:
    """Read the image size and normalisation of an open_clip model or a module wrapping one.

    Looks for ``preprocess_cfg``/``image_size`` on the module, its ``visual`` tower, or its ``image_encoder``
    (and that encoder's ``visual`` tower).

    Raises:
        WiseftError: if no image size can be found.
    """
    candidates = [model]
    for name in ("image_encoder", "visual"):
        for holder in list(candidates):
            sub = getattr(holder, name, None)
            if isinstance(sub, torch.nn.Module):
                candidates.append(sub)
    for mod in reversed(candidates):  # the innermost tower knows best
        cfg = getattr(mod, "preprocess_cfg", None)
        size = (cfg or {}).get("size") or getattr(mod, "image_size", None)
        if size is None:
            continue
        size = size[0] if isinstance(size, (tuple, list)) else size
        cfg = cfg or {}
        return Preprocess(int(size), tuple(cfg.get("mean", OPENAI_MEAN)), tuple(cfg.get("std", OPENAI_STD)),
                          str(cfg.get("interpolation", "bicubic")))
    raise WiseftError(f"cannot find the input image size of {type(model).__name__}; pass a Preprocess explicitly")


def _interpolation(name: str) -> T.InterpolationMode:
    try:
        return T.InterpolationMode(name)
    except ValueError as e:
        raise WiseftError(f"unknown interpolation {name!r}; use bicubic, bilinear or nearest") from e


def _to_rgb(image: Any) -> Any:
    return image.convert("RGB") if hasattr(image, "convert") else image


def train_transform(kind: str, pre: Preprocess, crop_scale: Sequence[float] = (0.9, 1.0)) -> Callable:
    """The training transform of one augmentation kind (``clip``, ``strong`` or ``none``).

    Args:
        kind: ``clip`` (paper's code), ``strong`` (Fig. 15, timm) or ``none`` (evaluation preprocessing).
        pre: the model's preprocessing.
        crop_scale: the area range of ``clip``'s random resized crop.

    Raises:
        WiseftError: for an unknown kind.
    """
    normalize = T.Normalize(pre.mean, pre.std)
    if kind == "clip":
        return T.Compose([
            T.RandomResizedCrop(pre.image_size, scale=tuple(crop_scale), interpolation=_interpolation("bicubic")),
            _to_rgb, T.ToTensor(), normalize])
    if kind == "strong":
        from timm.data import create_transform  # timm's ImageNet recipe, as in the paper's Fig. 15

        timm_tf = create_transform(pre.image_size, is_training=True, interpolation="bicubic", mean=pre.mean,
                                   std=pre.std, color_jitter=0.4, auto_augment=None, re_prob=0.0)
        return T.Compose([_to_rgb, timm_tf])
    if kind == "none":
        return eval_transform(pre)
    raise WiseftError(f"unknown augmentation {kind!r} (finetune.e2e.augmentation); choose one of "
                      f"{', '.join(AUGMENTATIONS)}")


def eval_transform(pre: Preprocess) -> Callable:
    """open_clip's evaluation preprocessing (:func:`wiseft.models.eval_transform`) for ``pre``."""
    from ..models import eval_transform as _eval_transform

    return _eval_transform(pre.image_size, pre.mean, pre.std, interpolation=pre.interpolation)


@contextlib.contextmanager
def seeded_rng(seed: int) -> Iterator[None]:
    """Seed torch (CPU), Python and NumPy for the block, then restore their previous states.

    torchvision draws from torch, timm from Python's ``random``; both are covered, and the caller's random
    streams (dropout, for one) are left exactly as they were.
    """
    py_state, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)  # CPU only: torch.manual_seed would also reseed CUDA
        random.seed(seed)
        np.random.seed(seed % (2**32))
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


class SeededDataset(torch.utils.data.Dataset):
    """Wraps a dataset so that ``ds[(epoch, index)]`` loads sample ``index`` with randomness from
    ``(seed, epoch, index)``.

    The wrapped dataset applies its own transform (built with :func:`train_transform`); only the random
    streams it draws from are seeded here. Plain integer indices also work (epoch 0).
    """

    def __init__(self, dataset: torch.utils.data.Dataset, seed: int):
        self.dataset, self.seed = dataset, int(seed)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: int | tuple[int, int]):
        epoch, index = key if isinstance(key, tuple) else (0, key)
        with seeded_rng(derive_seed(AUGMENT_STREAM, self.seed, epoch, index)):
            return self.dataset[index]
