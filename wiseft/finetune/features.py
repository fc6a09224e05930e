"""Features of a frozen image encoder, computed once and cached on disk (memory-mapped).

A cache entry is the folder ``<cache_dir>/features/<key>/`` with ``features.npy`` (float32 ``[N, D]``),
``labels.npy`` (int64 ``[N]``) and ``meta.json``, written last as the completion marker. The key is a hash of

* the encoder: a SHA-256 of every weight tensor (names, shapes, dtypes, bytes) and its class;
* the preprocessing (image size, normalisation, transform description);
* the dataset: name, split, length, and a hash of its file list and labels when the dataset exposes them.

So a different encoder, transform or file list never reuses stale features (the defect of the paper's code,
which keyed its cache by dataset class and split only).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..device import autocast, resolve_device
from ..errors import WiseftError
from ..io import atomic_path, atomic_write_json, stable_hash
from ..locks import private_name
from ..progress import progress
from ..schema import loads_bounded

log = logging.getLogger(__name__)

__all__ = ["FeatureSet", "module_fingerprint", "dataset_fingerprint", "feature_cache_key", "compute_features",
           "cached_features"]

FORMAT = "wiseft-features/1"


@dataclass
class FeatureSet:
    """Features and labels of one dataset (NumPy arrays, memory-mapped when read from the cache)."""

    features: np.ndarray
    labels: np.ndarray
    path: Path | None = None
    meta: dict[str, Any] | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, indices: np.ndarray) -> "FeatureSet":
        """The rows ``indices`` (copied into memory)."""
        indices = np.asarray(indices, dtype=np.int64)
        return FeatureSet(np.asarray(self.features[indices]), np.asarray(self.labels[indices]), None, self.meta)

    def tensors(self, device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """``(features float32, labels int64)`` as torch tensors on ``device``."""
        feats = torch.from_numpy(np.array(self.features, dtype=np.float32))  # a writable copy of the memory map
        return feats.to(device), torch.from_numpy(np.asarray(self.labels, dtype=np.int64)).to(device)


def module_fingerprint(module: torch.nn.Module) -> str:
    """SHA-256 of a module's class and every tensor of its state dict (name, dtype, shape and bytes)."""
    digest = hashlib.sha256(f"{type(module).__module__}.{type(module).__qualname__}".encode())
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().contiguous().reshape(-1)
        digest.update(f"{name}|{t.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(t.view(torch.uint8).cpu().numpy().tobytes())
    return digest.hexdigest()


def _file_list(dataset: Any) -> list[str] | None:
    for attr in ("samples", "imgs", "files", "image_paths", "paths"):
        value = getattr(dataset, attr, None)
        if value is not None and len(value):
            return [str(v[0] if isinstance(v, (tuple, list)) else v) for v in value]
    return None


def dataset_fingerprint(dataset: Any, name: str, split: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """What identifies a dataset's contents for a cache key.

    Besides ``name``/``split``/length it hashes the file list and labels when the dataset exposes them
    (``samples``/``imgs``/``files`` and ``targets``), and follows ``torch.utils.data.Subset`` to its indices.

    Args:
        dataset: the dataset.
        name: its registry name.
        split: ``train``, ``val`` …
        extra: anything else that changes the images (root folder, k-shot seed …).
    """
    out: dict[str, Any] = {"name": name, "split": split, "len": len(dataset), **(extra or {})}
    base = dataset
    if isinstance(dataset, torch.utils.data.Subset):
        out["subset_sha256"] = hashlib.sha256(np.asarray(dataset.indices, dtype=np.int64).tobytes()).hexdigest()
        base = dataset.dataset
    files = _file_list(base)
    if files is not None:
        out["files_sha256"] = hashlib.sha256("\n".join(files).encode("utf-8")).hexdigest()
    targets = getattr(base, "targets", None)
    if targets is not None:
        out["targets_sha256"] = hashlib.sha256(np.asarray(targets, dtype=np.int64).tobytes()).hexdigest()
    return out


def feature_cache_key(encoder_sha256: str, preprocess: dict[str, Any], dataset_id: dict[str, Any]) -> str:
    """The cache key: a hash over encoder weights, preprocessing and dataset identity (none is optional)."""
    if not encoder_sha256:
        raise WiseftError("a feature-cache key needs the encoder's fingerprint")
    return stable_hash({"format": FORMAT, "encoder": encoder_sha256, "preprocess": preprocess,
                        "dataset": dataset_id}, length=24)


@torch.no_grad()
def compute_features(encoder: torch.nn.Module, dataset: torch.utils.data.Dataset, *, batch_size: int = 256,
                     num_workers: int = 0, device: str | torch.device = "cpu", precision: str = "fp32",
                     allocate: Callable[[int, int], np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Run ``encoder`` over ``dataset`` in order (eval mode) and return ``(features float32 [N, D], labels)``.

    Args:
        encoder: maps an image batch to feature vectors.
        dataset: ``ds[i] -> (image_tensor, label)`` with the evaluation transform applied.
        allocate: ``allocate(N, D)`` returns the float32 array to fill (a memory map, say); called once ``D`` is
            known from the first batch. Default: an in-memory array.
    """
    dev = resolve_device(device)
    encoder = encoder.to(dev)
    was_training = encoder.training
    encoder.eval()
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                                         pin_memory=dev.type == "cuda")
    labels = np.empty(len(dataset), dtype=np.int64)
    allocate = allocate or (lambda n, d: np.empty((n, d), dtype=np.float32))
    feats, pos = None, 0
    try:
        for images, y in progress(loader, desc="features"):
            with autocast(precision, dev):
                f = encoder(images.to(dev, non_blocking=True))
            f = f.float().cpu().numpy()
            if feats is None:
                feats = allocate(len(dataset), f.shape[1])
            feats[pos:pos + len(f)] = f
            labels[pos:pos + len(f)] = np.asarray(y, dtype=np.int64)
            pos += len(f)
    finally:
        encoder.train(was_training)
    if feats is None:
        raise WiseftError("cannot compute features of an empty dataset")
    return feats, labels


def cached_features(encoder: torch.nn.Module, dataset: torch.utils.data.Dataset, *, cache_dir: str | os.PathLike,
                    dataset_id: dict[str, Any], preprocess: dict[str, Any], batch_size: int = 256,
                    num_workers: int = 0, device: str | torch.device = "cpu", precision: str = "fp32") -> FeatureSet:
    """Features of ``dataset`` under ``encoder``: read from the cache, or computed once and stored there.

    Args:
        encoder: the frozen image encoder (its weights are part of the key).
        dataset: the dataset, with its evaluation transform.
        cache_dir: the cache root (``wiseft.paths.cache_dir()`` in a run); entries go under ``features/``.
        dataset_id: :func:`dataset_fingerprint` of the dataset.
        preprocess: a description of the transform (``Preprocess.describe()`` plus anything else).
        batch_size, num_workers, device, precision: how to compute them on a miss.

    Returns:
        A :class:`FeatureSet` whose arrays are memory-mapped from the cache.
    """
    dev = resolve_device(device)
    key = feature_cache_key(module_fingerprint(encoder), preprocess, dataset_id)
    folder = Path(cache_dir) / "features" / key
    if (folder / "meta.json").is_file():
        log.info("feature cache hit: %s (%s/%s)", key, dataset_id.get("name"), dataset_id.get("split"))
        return _read(folder)
    log.info("feature cache miss: computing %s features of %s/%s into %s", len(dataset), dataset_id.get("name"),
             dataset_id.get("split"), folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / private_name(f".tmp-{key}")  # this process's alone: the cache is shared
    tmp.mkdir()
    try:
        def memmap(n: int, d: int) -> np.ndarray:
            return np.lib.format.open_memmap(tmp / "features.npy", mode="w+", dtype=np.float32, shape=(n, d))

        feats, labels = compute_features(encoder, dataset, batch_size=batch_size, num_workers=num_workers,
                                         device=dev, precision=precision, allocate=memmap)
        feats.flush()
        dim = feats.shape[1]
        del feats
        with atomic_path(tmp / "labels.npy") as p, open(p, "wb") as fh:  # a handle: np.save renames bare paths
            np.save(fh, labels)
        atomic_write_json(tmp / "meta.json", {"format": FORMAT, "key": key, "shape": [len(dataset), dim],
                                              "dataset": dataset_id, "preprocess": preprocess})
        if (folder / "meta.json").is_file():  # another process finished first; keep theirs
            shutil.rmtree(tmp)
        else:
            shutil.rmtree(folder, ignore_errors=True)  # an entry without its marker is incomplete
            os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return _read(folder)


def _read(folder: Path) -> FeatureSet:
    try:
        meta = loads_bounded((folder / "meta.json").read_bytes())
        feats = np.load(folder / "features.npy", mmap_mode="r", allow_pickle=False)
        labels = np.load(folder / "labels.npy", allow_pickle=False)
    except (OSError, ValueError) as e:
        raise WiseftError(f"feature cache {folder} is unreadable ({e}); delete the folder to recompute") from e
    if list(feats.shape) != meta.get("shape") or labels.shape[0] != feats.shape[0]:
        raise WiseftError(f"feature cache {folder} does not match its meta.json; delete the folder to recompute")
    return FeatureSet(feats, labels, folder, meta)
