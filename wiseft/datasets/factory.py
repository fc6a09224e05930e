"""Front doors: evaluation sets, training sets, class names and default templates, by registry name."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..errors import DatasetError
from .base import EvalSet
from .images import ArrayDataset, BorderCrop, FileListDataset, find_unreadable
from .loaders import SplitData, open_split
from .protocols import build_protocol
from .registry import get_dataset_cfg, resolve_dataset_root
from .sources import SourceContext, resolve_source

log = logging.getLogger(__name__)

__all__ = ["create_eval_set", "create_train_set", "get_classnames", "default_templates"]


def create_eval_set(name: str, root: str | os.PathLike | None = None, transform: Callable | None = None,
                    split: str | None = None, max_images: int | None = None, skip_bad_images: bool = False,
                    role: str = "shift", border_crop: int | None = None) -> EvalSet:
    """Open a registered dataset as an :class:`EvalSet` (images, labels, class names, scoring protocol).

    Args:
        name: registry name (``"imagenet-a"``; see :func:`list_datasets`).
        root: the data folder holding one sub-folder per dataset (default ``$WISEFT_DATA`` or
            ``<cache>/data``); entries with their own ``root`` (the offline world) ignore it.
        transform: the model's image transform, applied to RGB PIL images (``None`` yields PIL images).
        split: which split (default: the entry's ``eval_split``).
        max_images: evaluate a fixed, seeded random subset of this many images (quick looks).
        skip_bad_images: decode every image first and leave the unreadable ones out (listed in
            ``EvalSet.skipped``) instead of stopping at the first with an error.
        role: ``"reference"``, ``"shift"`` or ``"extra"``.
        border_crop: pixels cut from every border before ``transform`` (``None``: the entry's ``border_crop``,
            else none); recorded in ``EvalSet.preprocessing`` when either sets it.

    Raises:
        DatasetError: unknown name, missing folders, wrong layout, class-count mismatch (each problem listed
            with the expected layout and the command that fetches the data).

    Example:
        >>> ev = create_eval_set("imagenet-a", root="/data", transform=preprocess)  # doctest: +SKIP
        >>> ev.protocol.project_logits(torch.randn(2, 1000)).shape                # doctest: +SKIP
        torch.Size([2, 200])
    """
    cfg, base, split, data, classnames, resolve = _open(name, root, split or None, "eval_split")
    protocol = build_protocol(cfg["protocol"], resolve, {"name": name, "wilds_dataset": data.wilds_dataset})
    crop = cfg.get("border_crop") if border_crop is None else int(border_crop)
    dataset, metadata, skipped = _build(cfg, data, transform, max_images, skip_bad_images, crop)
    return EvalSet(name=name, dataset=dataset, classnames=classnames, protocol=protocol, role=role,
                   metadata=metadata, skipped=skipped,
                   preprocessing={} if crop is None else {"border_crop": int(crop)})


def create_train_set(name: str, root: str | os.PathLike | None = None, transform: Callable | None = None,
                     split: str | None = None) -> torch.utils.data.Dataset:
    """The training images of a registered dataset as a ``Dataset`` of ``(transform(image), label)``.

    Labels index into :func:`get_classnames` (also attached as ``dataset.classnames``). ``split`` defaults to
    the entry's ``train_split``.

    Raises:
        DatasetError: if the dataset has no training split or its folders are missing or malformed.
    """
    if split is None and "train_split" not in get_dataset_cfg(name):
        cfg = get_dataset_cfg(name)
        raise DatasetError(f"dataset {name!r} has no training split (splits: {', '.join(cfg['splits'])}); it is "
                           f"an evaluation-only set. Fine-tune on a reference dataset such as imagenet or cifar10.")
    cfg, base, split, data, classnames, resolve = _open(name, root, split, "train_split")
    dataset, _, _ = _build(cfg, data, transform, None, False, cfg.get("border_crop"))
    dataset.classnames = list(classnames)  # the fine-tuning step builds its head from these
    return dataset


def get_classnames(name: str, root: str | os.PathLike | None = None) -> list[str]:
    """The class names of ``name`` (labels index into them).

    Names packaged with wiseft, open_clip or timm need no data; ObjectNet's come from its mapping files and
    Food-101's/SUN397's from the data, so those need ``root`` (default: the data root).
    """
    cfg = get_dataset_cfg(name)
    base = resolve_dataset_root(cfg, root)
    ctx = SourceContext(name=name, yaml_file=Path(cfg["source"]), base=base)
    if _needs_loader(cfg["classnames"]):
        data = open_split(cfg, cfg["eval_split"], base, lambda s, w: resolve_source(s, ctx, w))
        _raise_problems(cfg, cfg["eval_split"], data, base)
        ctx.loader_classes = data.classes
    return list(resolve_source(cfg["classnames"], ctx, "class names"))


def default_templates(name: str) -> str:
    """The template set a zero-shot head for ``name`` uses by default (a name in ``wiseft.templates`` or
    ``file:<path>``)."""
    return get_dataset_cfg(name)["templates"]


# ------------------------------------------------------------------------------------------- helpers
def _open(name: str, root: Any, split: str | None, default_key: str):
    cfg = get_dataset_cfg(name)
    base = resolve_dataset_root(cfg, root)
    split = split or cfg.get(default_key) or cfg["eval_split"]
    ctx = SourceContext(name=name, yaml_file=Path(cfg["source"]), base=base)

    def resolve(spec: Any, what: str) -> Any:
        return resolve_source(spec, ctx, what)

    data = open_split(cfg, split, base, resolve)
    _raise_problems(cfg, split, data, base)
    ctx.loader_classes = data.classes
    classnames = list(resolve(cfg["classnames"], "class names"))
    _check_classes(cfg, split, data, classnames)
    _check_count(cfg, split, data)
    return cfg, base, split, data, classnames, resolve


def _raise_problems(cfg: dict, split: str, data: SplitData, base: Path) -> None:
    if data.problems:
        lines = "\n  - ".join(data.problems)
        raise DatasetError(f"dataset {cfg['name']!r} ({split}) at {str(data.where)!r}:\n  - {lines}\n"
                           f"See every problem with `wiseft data verify {cfg['name']} --root {base}`.")


def _check_classes(cfg: dict, split: str, data: SplitData, classnames: list[str]) -> None:
    spec = cfg["splits"][split]
    label_order_from_data = spec.get("loader", "imagefolder") == "imagefolder" and not (
        "folders" in spec or "label_map" in spec)
    if label_order_from_data and data.classes is not None and len(data.classes) != len(classnames):
        raise DatasetError(
            f"dataset {cfg['name']!r} ({split}): class-count mismatch: {len(data.classes)} class folders in "
            f"{str(data.where)!r} but {len(classnames)} class names; each class needs one folder (labels follow "
            f"the sorted folder names) — or list the folders in label order under 'folders'.")
    if len(data.labels) and int(data.labels.max()) >= len(classnames):
        raise DatasetError(f"dataset {cfg['name']!r} ({split}): labels go up to {int(data.labels.max())} but "
                           f"there are only {len(classnames)} class names")


def _check_count(cfg: dict, split: str, data: SplitData) -> None:
    expected = cfg["splits"][split].get("count")
    if expected is not None and len(data) != expected:
        log.warning("%s (%s): %d images in %s, the registry expects %d; run `wiseft data verify %s` to see why",
                    cfg["name"], split, len(data), data.where, expected, cfg["name"])


def _build(cfg: dict, data: SplitData, transform: Callable | None, max_images: int | None, skip_bad: bool,
           border_crop: int | None):
    pre = BorderCrop(border_crop) if border_crop else None
    if data.images is not None:
        dataset: FileListDataset | ArrayDataset = ArrayDataset(data.images, data.labels, transform)
    else:
        dataset = FileListDataset(data.files or [], data.labels, transform, pre)
    keep = np.arange(len(dataset))
    skipped: list[str] = []
    if skip_bad and isinstance(dataset, FileListDataset):
        bad = find_unreadable(dataset.files, desc=f"checking {cfg['name']} images")
        if bad:
            skipped = [path for path, _ in bad]
            bad_set = set(skipped)
            keep = np.asarray([i for i, f in enumerate(dataset.files) if f not in bad_set], dtype=np.int64)
            log.warning("%s: skipping %d unreadable image(s), e.g. %s (%s)", cfg["name"], len(bad), bad[0][0],
                        bad[0][1])
    if max_images is not None and max_images < len(keep):
        if max_images <= 0:
            raise DatasetError(f"max_images must be positive, got {max_images}")
        rng = np.random.default_rng(0)  # fixed: the same quick-look subset for every model and α
        keep = np.sort(rng.choice(keep, size=max_images, replace=False))
    metadata = None
    if data.metadata is not None:
        metadata = {k: np.asarray(v)[keep] for k, v in data.metadata.items()}
    if len(keep) != len(dataset):
        dataset = dataset.subset(keep)
    return dataset, metadata, skipped


def _needs_loader(spec: Any) -> bool:
    return spec == "loader" or (isinstance(spec, dict) and _needs_loader(spec.get("from")))
