"""Torch datasets over image files or in-memory arrays, and the decode check shared by loading and verify.

Both datasets yield ``(transform(image), label)``. A file that cannot be decoded raises a
:class:`~wiseft.errors.DatasetError` naming it; with ``skip_bad_images`` the factory decodes every file once
up front (:func:`find_unreadable`) and leaves the bad ones out, so batches stay aligned with the labels.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image

from ..errors import DatasetError
from ..progress import progress

log = logging.getLogger(__name__)

__all__ = ["FileListDataset", "ArrayDataset", "BorderCrop", "decode_problem", "find_unreadable", "load_rgb"]


class BorderCrop:
    """Cut ``pixels`` off every border (ObjectNet images carry a 1–2 px red frame; wise-ft crops 2 px)."""

    def __init__(self, pixels: int) -> None:
        self.pixels = int(pixels)

    def __call__(self, img: Image.Image) -> Image.Image:
        w, h = img.size
        p = self.pixels
        if w <= 2 * p or h <= 2 * p:
            return img
        return img.crop((p, p, w - p, h - p))

    def __repr__(self) -> str:
        return f"BorderCrop({self.pixels})"


def load_rgb(path: str) -> Image.Image:
    """Open and fully decode ``path`` as RGB, raising :class:`DatasetError` naming the file on failure."""
    try:
        with Image.open(path) as img:
            img.load()
            return img.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise DatasetError(f"cannot read image {path!r}: {e}. List every unreadable file with `wiseft data verify "
                           f"NAME --root ROOT`, replace them, or set data.skip_bad_images: true to skip them "
                           f"(the number skipped is recorded with the results).") from e


def decode_problem(path: str) -> str | None:
    """``None`` if ``path`` decodes as an image, else the reason it does not."""
    try:
        with Image.open(path) as img:
            img.load()
        return None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        return f"{type(e).__name__}: {e}"


def find_unreadable(files: Sequence[str], desc: str = "decoding images", workers: int | None = None
                    ) -> list[tuple[str, str]]:
    """Decode every file (threads: PIL releases the GIL while decoding); return ``(path, reason)`` of bad ones."""
    workers = workers or min(8, os.cpu_count() or 1)
    bad = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for path, problem in progress(zip(files, pool.map(decode_problem, files, chunksize=64)), desc=desc,
                                      total=len(files)):
            if problem is not None:
                bad.append((path, problem))
    return bad


class FileListDataset(torch.utils.data.Dataset):
    """Images read from a list of files.

    Args:
        files: image paths.
        labels: one integer label per file.
        transform: applied to the RGB PIL image (``None`` returns the PIL image).
        pre: applied before ``transform`` (ObjectNet's border crop).
    """

    def __init__(self, files: Sequence[str], labels: Sequence[int] | np.ndarray, transform: Callable | None = None,
                 pre: Callable | None = None) -> None:
        if len(files) != len(labels):
            raise ValueError(f"{len(files)} files but {len(labels)} labels")
        self.files = list(map(str, files))
        self.labels = np.asarray(labels, dtype=np.int64)
        self.transform = transform
        self.pre = pre

    def __len__(self) -> int:
        return len(self.files)

    @property
    def targets(self) -> np.ndarray:
        """The labels, under torchvision's name (feature-cache keys hash them)."""
        return self.labels

    def __getitem__(self, index: int):
        img = load_rgb(self.files[index])
        if self.pre is not None:
            img = self.pre(img)
        if self.transform is not None:
            img = self.transform(img)
        return img, int(self.labels[index])

    def subset(self, indices: Sequence[int]) -> "FileListDataset":
        """The same dataset restricted to ``indices`` (in that order)."""
        idx = np.asarray(indices, dtype=np.int64)
        return FileListDataset([self.files[i] for i in idx], self.labels[idx], self.transform, self.pre)


class ArrayDataset(torch.utils.data.Dataset):
    """Images held as a ``uint8`` array ``[N, H, W, 3]`` (CIFAR-10, -10.1, -10.2, -100)."""

    def __init__(self, images: np.ndarray, labels: Sequence[int] | np.ndarray, transform: Callable | None = None
                 ) -> None:
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise DatasetError(f"expected uint8 images of shape [N, H, W, 3], got {images.dtype} {images.shape}")
        if len(images) != len(labels):
            raise DatasetError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = np.asarray(labels, dtype=np.int64)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    @property
    def targets(self) -> np.ndarray:
        """The labels, under torchvision's name (feature-cache keys hash them)."""
        return self.labels

    def __getitem__(self, index: int):
        img = Image.fromarray(self.images[index])
        if self.transform is not None:
            img = self.transform(img)
        return img, int(self.labels[index])

    def subset(self, indices: Sequence[int]) -> "ArrayDataset":
        idx = np.asarray(indices, dtype=np.int64)
        return ArrayDataset(self.images[idx], self.labels[idx], self.transform)
