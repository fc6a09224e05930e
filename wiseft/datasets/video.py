"""The video shifts ImageNet-Vid-Robust and YTBB-Robust: frames, their labels, pm-k sets, and the logit merge.

Both come from ``imagenet_vid_ytbb_robust.tar.gz`` (Shankar et al., "Do image classifiers generalize across
time?"), unpacked under the data root::

    imagenet_vid_ytbb_robust/imagenet-vid-robust/
        val/<snippet>/<frame>.JPEG
        metadata/labels.json     frame key ("val/<snippet>/<frame>.JPEG") -> labels (Vid class indices)
        metadata/pmsets.json     anchor frame key -> the keys of its reviewed neighbouring frames (pm-k set)
        misc/imagenet_vid_class_index.json   {"0": [wnid, name], ...} the 30 Vid classes
        misc/imagenet_class_index.json       {"0": [wnid, name], ...} the 1000 ImageNet classes
        misc/rev_wnid_map.json               Vid wnid -> the ImageNet wnids merged into it
    imagenet_vid_ytbb_robust/ytbb-robust/
        ytbb_videos/<video>_<ms>/frame-<i>.jpg
        metadata/labels.json, metadata/pmsets.json   the same two files, for the 24 YTBB classes, written by
                                                     ``wiseft data prepare-ytbb`` (:mod:`.ytbb_prepare`)

The 24 YTBB classes and their ImageNet columns ship with wiseft (``metadata/ytbb_robust_classes.txt``); four
(cow, giraffe, skateboard, toilet) have no ImageNet counterpart and ``none`` is never predicted, as in the paper's
code.

Scoring (paper App. C, the official code): the 1000 ImageNet logits are max-merged into the set's classes (a
class without ImageNet columns gets logit 0, as there); **pm-0** is the accuracy on the anchor frames (a
prediction is right when it is one of the anchor's labels) and **pm-10** counts an anchor only when it and
every frame of its pm-k set (up to 10 frames either side) are right.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DatasetError
from .base import Protocol
from .files import METADATA_DIR, read_json_object, read_lines, timm_info_file

__all__ = ["META_FILES", "VIDEO_SETS", "MergeProtocol", "PmkProtocol", "VideoMeta", "load_video_meta", "pmk_scores"]

#: The two sets: their folder in the archive and where their frames are.
VIDEO_SETS = {"vid": ("imagenet-vid-robust", "val"), "ytbb": ("ytbb-robust", "ytbb_videos")}
#: Files each set needs, relative to its folder.
META_FILES = {
    "vid": ("metadata/labels.json", "metadata/pmsets.json", "misc/imagenet_vid_class_index.json",
            "misc/imagenet_class_index.json", "misc/rev_wnid_map.json"),
    "ytbb": ("metadata/labels.json", "metadata/pmsets.json"),
}
_YTBB_NEVER = ("none",)  # the official code subtracts 1e10 from this class's logit


@dataclass(frozen=True)
class VideoMeta:
    """One video set's classes and frames.

    Attributes:
        classnames: the task's classes in label order.
        groups: per class, the ImageNet columns max-merged into it (empty: no counterpart).
        never: classes that are never predicted.
        labels: frame key -> its labels (task indices).
        pmsets: anchor key -> the keys of its pm-k frames.
        frames_dir: the folder frame keys are relative to (Vid: the set's folder, keys ``val/...``; YTBB:
            ``ytbb_videos``).
    """

    classnames: tuple[str, ...]
    groups: tuple[tuple[int, ...], ...]
    never: tuple[int, ...]
    labels: dict[str, tuple[int, ...]]
    pmsets: dict[str, tuple[str, ...]]
    frames_dir: Path

    def frame_keys(self) -> list[str]:
        """Every frame the metrics read (anchors and their pm-k frames), sorted."""
        return sorted({k for anchor, pm in self.pmsets.items() for k in (anchor, *pm)})

    def imagenet_wnid_labels(self) -> dict[str, int]:
        """ImageNet wnid -> task label, for the class-subsampled ImageNet reference."""
        wnids = read_lines(timm_info_file("imagenet_synsets.txt"), "ImageNet synsets")
        return {wnids[col]: label for label, group in enumerate(self.groups) for col in group}


def load_video_meta(folder: str | Path, kind: str) -> VideoMeta:
    """Read one set's metadata from its folder (``.../imagenet-vid-robust`` or ``.../ytbb-robust``).

    Raises:
        DatasetError: naming a missing or malformed file.
    """
    if kind not in VIDEO_SETS:
        raise DatasetError(f"unknown video set {kind!r}; use one of {', '.join(VIDEO_SETS)}")
    folder = Path(folder)
    missing = [f for f in META_FILES[kind] if not (folder / f).is_file()]
    if missing:
        fix = ("unpack imagenet_vid_ytbb_robust.tar.gz whole into the data root (`wiseft data download "
               "imagenet-vid-robust`)") if kind == "vid" else (
            f"YTBB-Robust's reviewed anchors and pm-k sets are derived from the review files of the paper's code: "
            f"`wiseft data prepare-ytbb --annotations <wise-ft>/src/datasets/ytbb-robust_metadata --root "
            f"{folder.parent.parent}`")
        raise DatasetError(f"{VIDEO_SETS[kind][0]}: file(s) {', '.join(missing)} not found in {str(folder)!r}; {fix}")
    stamp = tuple((folder / f).stat().st_mtime_ns for f in META_FILES[kind])
    return _parse(str(folder.resolve()), kind, stamp)


@functools.lru_cache(maxsize=4)
def _parse(folder: str, kind: str, _stamp: tuple[int, ...]) -> VideoMeta:
    d = Path(folder)
    if kind == "vid":
        vid_index = read_json_object(d / "misc/imagenet_vid_class_index.json")
        imagenet_index = read_json_object(d / "misc/imagenet_class_index.json")
        rev = read_json_object(d / "misc/rev_wnid_map.json")
        try:
            column = {v[0]: int(k) for k, v in imagenet_index.items()}
            order = sorted(vid_index, key=int)
            classnames = tuple(str(vid_index[k][1]) for k in order)
            groups = tuple(tuple(sorted(column[w] for w in rev.get(vid_index[k][0], []))) for k in order)
        except (KeyError, IndexError, TypeError, ValueError) as e:
            raise DatasetError(f"{folder}/misc: the class index files do not fit together ({e!r})") from e
        never: tuple[int, ...] = ()
    else:
        classnames, groups = _ytbb_classes()
        never = tuple(i for i, c in enumerate(classnames) if c in _YTBB_NEVER)
    labels = read_json_object(d / "metadata/labels.json")
    pmsets = read_json_object(d / "metadata/pmsets.json")
    n = len(classnames)
    try:
        labels = {str(k): tuple(int(x) for x in (v if isinstance(v, list) else [v])) for k, v in labels.items()}
        pmsets = {str(k): tuple(str(x) for x in v) for k, v in pmsets.items()}
    except (TypeError, ValueError) as e:
        raise DatasetError(f"{folder}/metadata: labels.json must map frame keys to label lists and pmsets.json "
                           f"anchor keys to lists of frame keys ({e!r})") from e
    bad = [k for k, v in labels.items() if not v or any(not 0 <= x < n for x in v)]
    unlabelled = [k for anchor, pm in pmsets.items() for k in (anchor, *pm) if k not in labels]
    if bad or unlabelled:
        raise DatasetError(f"{folder}/metadata: {len(bad)} frame(s) with labels outside 0..{n - 1} (e.g. "
                           f"{(bad or [None])[0]}) and {len(unlabelled)} pm-k frame(s) without a label (e.g. "
                           f"{(unlabelled or [None])[0]})")
    return VideoMeta(classnames=classnames, groups=groups, never=never, labels=labels, pmsets=pmsets,
                     frames_dir=d if kind == "vid" else d / VIDEO_SETS[kind][1])


@functools.lru_cache(maxsize=1)
def _ytbb_classes() -> tuple[tuple[str, ...], tuple[tuple[int, ...], ...]]:
    names, groups = [], []
    for line in read_lines(METADATA_DIR / "ytbb_robust_classes.txt", "YTBB-Robust classes"):
        name, _, cols = line.partition(":")
        names.append(name.strip())
        groups.append(tuple(int(c) for c in cols.split()))
    return tuple(names), tuple(groups)


# ------------------------------------------------------------------------------------------- scoring
class MergeProtocol(Protocol):
    """Class ``k``'s logit is the maximum of the ImageNet columns ``groups[k]``; 0 when the group is empty (the
    official code's value) and ``-inf`` for the ``never`` classes. Top-1 on the merged logits."""

    def __init__(self, groups: list[list[int]], never: list[int] = (), name: str = "") -> None:
        self.groups = [[int(i) for i in g] for g in groups]
        self.never = [int(i) for i in never]
        self.name = name
        mapped = [g for g in self.groups if g]
        if not mapped:
            raise DatasetError(f"{name or 'merge protocol'}: no class has an ImageNet column")
        width = max(len(g) for g in mapped)
        self._index = torch.as_tensor([(g or [0]) + [(g or [0])[0]] * (width - len(g or [0])) for g in self.groups])
        self._empty = torch.as_tensor([not g for g in self.groups])
        self._never = torch.zeros(len(self.groups), dtype=torch.bool)
        self._never[self.never] = True

    def project_logits(self, logits: torch.Tensor) -> torch.Tensor:
        needed = max(max(g) for g in self.groups if g) + 1
        if logits.ndim != 2 or logits.shape[1] < needed:
            raise DatasetError(f"{self.name}: expects 1000-way ImageNet logits, got shape {tuple(logits.shape)}")
        merged = logits[:, self._index.to(logits.device)].amax(dim=2)
        merged = merged.masked_fill(self._empty.to(logits.device), 0.0)
        return merged.masked_fill(self._never.to(logits.device), float("-inf"))

    def describe(self) -> dict[str, Any]:
        from ..io import stable_hash

        return {**super().describe(), "n_classes": len(self.groups), "merge": "max", "never": self.never,
                "groups_hash": stable_hash(self.groups)}


def pmk_scores(pred_by_key: dict[str, int], labels: dict[str, tuple[int, ...]],
               pmsets: dict[str, tuple[str, ...]]) -> dict[str, float]:
    """pm-0 and pm-10 over the anchors that were predicted.

    pm-0: the anchor's prediction is one of its labels. pm-10: that, and every predicted frame of its pm-k set
    is one of that frame's labels. Frames without a prediction (a ``max_images`` subset) are left out.
    """
    anchors = [a for a in pmsets if a in pred_by_key]
    if not anchors:
        return {"pm0": 0.0, "pm10": 0.0}
    right = {a: pred_by_key[a] in labels[a] for a in anchors}
    stable = [right[a] and all(pred_by_key[f] in labels[f] for f in pmsets[a] if f in pred_by_key) for a in anchors]
    return {"pm0": float(np.mean(list(right.values()))), "pm10": float(np.mean(stable))}


class PmkProtocol(MergeProtocol):
    """The merge, then pm-0 (primary) and pm-10 from the frames' keys (``metadata['video_key']``)."""

    primary_metric = "pm0"

    def __init__(self, meta: VideoMeta, name: str = "") -> None:
        super().__init__([list(g) for g in meta.groups], list(meta.never), name=name)
        self.labels, self.pmsets = meta.labels, meta.pmsets

    def metrics(self, preds: np.ndarray, labels: np.ndarray, metadata: dict[str, np.ndarray] | None = None
                ) -> dict[str, float]:
        keys = None if metadata is None else metadata.get("video_key")
        if keys is None or len(keys) != len(preds):
            raise DatasetError(f"{self.name}: pm-k needs each prediction's frame key (EvalSet.metadata['video_key'], "
                               f"aligned with the predictions)")
        return pmk_scores({str(k): int(p) for k, p in zip(keys, preds)}, self.labels, self.pmsets)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "anchors": len(self.pmsets), "pm_k": 10}
