"""k-shot subsets: k training images per class, seeded (the paper's low-data experiment, Fig. 17).

Each class's images are shuffled once from ``(seed, class)`` and the first k are taken, so subsets are nested:
the 1-shot subset is inside the 5-shot one, which is inside the 10-shot one, and so on.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ..errors import DatasetError
from ..progress import progress
from .sampler import derive_seed

log = logging.getLogger(__name__)

__all__ = ["kshot_indices", "dataset_labels"]

_KSHOT_STREAM = 0x5407


def kshot_indices(labels: np.ndarray, k: int, seed: int, *, num_classes: int | None = None,
                  strict: bool = True) -> np.ndarray:
    """Indices of ``k`` samples per class, sorted.

    Args:
        labels: the label of every training sample.
        k: samples per class.
        seed: the subset's seed.
        num_classes: the number of classes (classes absent from ``labels`` then count as having 0 samples).
        strict: raise when a class has fewer than ``k`` samples; otherwise take all of them and warn.

    Raises:
        DatasetError: naming the classes with fewer than ``k`` samples (when ``strict``).
    """
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    labels = np.asarray(labels, dtype=np.int64)
    classes = range(num_classes) if num_classes is not None else np.unique(labels)
    chosen, short = [], []
    for c in classes:
        idx = np.flatnonzero(labels == c)
        if len(idx) < k:
            short.append((int(c), len(idx)))
        order = np.random.default_rng(derive_seed(_KSHOT_STREAM, seed, int(c))).permutation(idx)
        chosen.append(order[:k])
    if short:
        listing = ", ".join(f"class {c}: {n}" for c, n in short[:10]) + (" …" if len(short) > 10 else "")
        if strict:
            raise DatasetError(f"{len(short)} classes have fewer than k={k} training samples ({listing}); choose a "
                               f"smaller k in finetune.lc.shots")
        log.warning("%d classes have fewer than k=%d samples (%s); taking all of theirs", len(short), k, listing)
    return np.sort(np.concatenate(chosen)) if chosen else np.empty(0, dtype=np.int64)


def dataset_labels(dataset: Any) -> np.ndarray:
    """Every label of a dataset, read from ``targets``/``labels``/``samples`` when present (no image is
    decoded), else by iterating it (slow: it loads every sample)."""
    for attr in ("targets", "labels"):
        value = getattr(dataset, attr, None)
        if value is not None and len(value) == len(dataset):
            return np.asarray(value, dtype=np.int64)
    samples = getattr(dataset, "samples", None)
    if samples is not None and len(samples) == len(dataset):
        return np.asarray([s[1] for s in samples], dtype=np.int64)
    log.warning("%s exposes no labels; reading every sample to find them", type(dataset).__name__)
    return np.asarray([int(dataset[i][1]) for i in progress(range(len(dataset)), desc="labels")], dtype=np.int64)
