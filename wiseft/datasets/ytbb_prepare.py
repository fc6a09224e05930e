"""YTBB-Robust's frame labels and pm-k sets, derived from the human review files the paper's code reads.

The archive holds YTBB-Robust's frames (``ytbb-robust/ytbb_videos/<video>_<ms>/frame-<i>.jpg``); which anchors
and neighbouring frames count, and their labels, come from review annotations that the paper's code ships
(``mlfoundations/wise-ft``, ``src/datasets/ytbb-robust_metadata``):

- ``anchor_labels.json``: ``{"labels": [names], "annotations": [{"key", "labels": [indices into names]}]}``
  for anchor frames; an anchor counts when marked ``good`` and neither ``bad`` nor ``unsure``; the YTBB class
  names among its labels are added to its label set;
- ``pmk_labels.json``: the same format, keys ``"<anchor>,<neighbour>"``; a neighbour counts when marked
  ``similar`` and none of the problem labels; an anchor with a ``bad-anchor`` mark is dropped;
- ``ytbb_robustness_test_anchors_full.csv``: each anchor video's original YTBB label (columns ``ytid``,
  ``time_ms``, ``label``; labels 22 and 23 are swapped, as the paper's code does).

:func:`prepare_ytbb_robust` applies those rules (the paper's code, reviewed sets, k = 10) and writes
``metadata/labels.json`` and ``metadata/pmsets.json`` in the format ImageNet-Vid-Robust ships, which the loader
reads for both sets.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from pathlib import Path

from ..errors import DatasetError
from ..io import atomic_write_text

log = logging.getLogger(__name__)

__all__ = ["ANNOTATION_FILES", "PM_K", "prepare_ytbb_robust"]

ANNOTATION_FILES = ("anchor_labels.json", "pmk_labels.json", "ytbb_robustness_test_anchors_full.csv")
#: Frames either side of an anchor that may join its pm-k set.
PM_K = 10
_PROBLEMS = {"dissimilar", "problematic", "incorrect", "dont know", "deformation", "background-change",
             "occlusion-increased", "blur-increase", "bad-anchor"}


def _key(path: str) -> str:
    p = Path(path)
    return f"{p.parent.name}/{p.name}"


def _reviews(path: Path) -> dict[str, set[str]]:
    """Frame key → the names of its review labels (the last review of a key wins)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        names = data["labels"]
        out = {}
        for row in data["annotations"]:
            key = ",".join(_key(part) for part in str(row["key"]).split(","))
            out[key] = {names[i] for i in row["labels"]}
        return out
    except (OSError, ValueError, KeyError, IndexError, TypeError) as e:
        raise DatasetError(f"{str(path)!r} is not a review file of the paper's code ({type(e).__name__}: {e})") from e


def _initial_labels(path: Path) -> dict[str, int]:
    swap = {22: 23, 23: 22}
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            return {f"{r['ytid']}_{r['time_ms']}": swap.get(int(r["label"]), int(r["label"])) for r in csv.DictReader(fh)}
    except (OSError, ValueError, KeyError) as e:
        raise DatasetError(f"{str(path)!r}: expected columns ytid, time_ms, label ({type(e).__name__}: {e})") from e


def prepare_ytbb_robust(annotations: str | os.PathLike, folder: str | os.PathLike) -> tuple[int, int]:
    """Write ``<folder>/metadata/{labels,pmsets}.json`` from the review files in ``annotations``.

    Args:
        annotations: the folder with :data:`ANNOTATION_FILES`.
        folder: YTBB-Robust's folder (``<root>/imagenet_vid_ytbb_robust/ytbb-robust``).

    Returns:
        ``(anchors, pm-k frames)`` written.

    Raises:
        DatasetError: a missing or malformed review file.
    """
    from .video import _ytbb_classes

    annotations, folder = Path(annotations), Path(folder)
    missing = [f for f in ANNOTATION_FILES if not (annotations / f).is_file()]
    if missing:
        raise DatasetError(f"{', '.join(missing)} not found in {str(annotations)!r}; they ship with the paper's code "
                           f"(github.com/mlfoundations/wise-ft, src/datasets/ytbb-robust_metadata)")
    class_index = {name: i for i, name in enumerate(_ytbb_classes()[0])}
    anchors = _reviews(annotations / "anchor_labels.json")
    pairs = _reviews(annotations / "pmk_labels.json")
    initial = _initial_labels(annotations / "ytbb_robustness_test_anchors_full.csv")
    bad = {k.split(",")[0] for k, marks in pairs.items() if "bad-anchor" in marks}
    good = sorted(k for k, m in anchors.items() if "good" in m and not m & {"bad", "unsure"} and k not in bad)
    similar = {k for k, m in pairs.items() if "similar" in m and not m & _PROBLEMS}
    labels: dict[str, list[int]] = {}
    pmsets: dict[str, list[str]] = {}
    for anchor in good:
        video = anchor.split("/")[0]
        if video not in initial:
            raise DatasetError(f"anchor {anchor!r} has no original label in ytbb_robustness_test_anchors_full.csv")
        found = {class_index[n] for n in anchors[anchor] if n in class_index} | {initial[video]}
        labels[anchor] = sorted(found)
        index = int(anchor.rsplit("frame-", 1)[1].split(".")[0])
        pmsets[anchor] = [f"{video}/frame-{index + i}.jpg" for i in range(-PM_K, PM_K + 1)
                          if i and f"{anchor},{video}/frame-{index + i}.jpg" in similar]
        for frame in pmsets[anchor]:
            labels[frame] = labels[anchor]  # neighbours are judged by their anchor's labels
    atomic_write_text(folder / "metadata" / "labels.json", json.dumps(labels, indent=0))
    atomic_write_text(folder / "metadata" / "pmsets.json", json.dumps(pmsets, indent=0))
    n_frames = sum(len(v) for v in pmsets.values())
    log.info("YTBB-Robust: %d reviewed anchors, %d pm-k frames (%d anchors dropped)", len(good), n_frames,
             len(anchors) - len(good))
    return len(good), n_frames
