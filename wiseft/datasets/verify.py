"""``wiseft data verify``: layout, counts against the registry, and a decode of every image.

:func:`verify_dataset` never stops at the first problem: it reports every missing or unexpected folder,
every empty class folder, every count mismatch and every unreadable file (by path), so one run tells the
user everything to fix.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .images import find_unreadable
from .loaders import open_split
from .registry import get_dataset_cfg, resolve_dataset_root
from .sources import SourceContext, resolve_source

log = logging.getLogger(__name__)

__all__ = ["verify_dataset", "VerifyReport", "SplitReport"]


@dataclass
class SplitReport:
    """What verification found in one split."""

    split: str
    where: str
    found: int = 0
    expected: int | None = None
    decoded: int = 0
    problems: list[str] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and not self.unreadable


@dataclass
class VerifyReport:
    """The result of :func:`verify_dataset`; ``ok`` is False when anything needs fixing."""

    name: str
    root: str
    splits: list[SplitReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.splits)

    @property
    def unreadable(self) -> list[tuple[str, str]]:
        return [u for s in self.splits for u in s.unreadable]

    def format(self) -> str:
        """A human-readable report: one block per split, every unreadable file on its own line."""
        lines = []
        for s in self.splits:
            expected = f" (expected {s.expected})" if s.expected is not None else ""
            status = "OK" if s.ok else "PROBLEMS"
            lines.append(f"{self.name}/{s.split}: {s.found} images{expected}, {s.decoded} decoded, at {s.where}: "
                         f"{status}")
            lines += [f"  - {p}" for p in s.problems]
            if s.unreadable:
                lines.append(f"  - {len(s.unreadable)} unreadable file(s):")
                lines += [f"      {path}  ({reason})" for path, reason in s.unreadable]
        return "\n".join(lines)

    def raise_if_failed(self) -> None:
        """Raise :class:`DatasetError` with the formatted report unless everything is fine."""
        if not self.ok:
            raise DatasetError(f"dataset {self.name!r} under {self.root!r} has problems:\n{self.format()}")


def verify_dataset(name: str, root: str | os.PathLike | None = None, splits: list[str] | None = None,
                   sample: int | None = None, decode: bool = True, workers: int | None = None,
                   check_counts: bool = True) -> VerifyReport:
    """Check a dataset on disk against its registry entry.

    Args:
        name: registry name.
        root: the data root (as for :func:`create_eval_set`).
        splits: which splits (default: all of the entry's).
        sample: decode only this many images per split (a fixed random sample); counts still cover all.
        decode: ``False`` checks layout and counts only.
        workers: decoding threads (default ``min(8, cpu_count)``).
        check_counts: compare the number of images with the registry's; ``False`` only for a rehearsal's fixture
            datasets (a few images per class), whose counts are reported but never a problem.
    """
    cfg = get_dataset_cfg(name)
    base = resolve_dataset_root(cfg, root)
    report = VerifyReport(name=name, root=str(base))
    for split in splits or list(cfg["splits"]):
        report.splits.append(_verify_split(cfg, split, base, sample, decode, workers, check_counts))
    return report


def _verify_split(cfg: dict, split: str, base: Path, sample: int | None, decode: bool, workers: int | None,
                  check_counts: bool = True) -> SplitReport:
    if split not in cfg["splits"]:
        raise DatasetError(f"dataset {cfg['name']!r} has no split {split!r}; splits: {', '.join(cfg['splits'])}")
    spec = cfg["splits"][split]
    rep = SplitReport(split=split, where=str(base / spec.get("path", ".")), expected=spec.get("count"))
    ctx = SourceContext(name=cfg["name"], yaml_file=Path(cfg["source"]), base=base)
    try:
        data = open_split(cfg, split, base, lambda s, w: resolve_source(s, ctx, w))
    except DatasetError as e:  # unreadable metadata, mapping or array file: report it, keep going
        rep.problems.append(str(e))
        return rep
    rep.where = str(data.where)
    rep.problems += data.problems
    rep.found = len(data)
    if data.problems and rep.found == 0:
        return rep
    ctx.loader_classes = data.classes
    try:
        classnames = resolve_source(cfg["classnames"], ctx, "class names")
        if spec.get("loader", "imagefolder") == "imagefolder" and "folders" not in spec and "label_map" not in spec \
                and data.classes is not None and len(data.classes) != len(classnames):
            rep.problems.append(f"class-count mismatch: {len(data.classes)} class folders but {len(classnames)} "
                                f"class names")
    except DatasetError as e:
        rep.problems.append(str(e))
    if check_counts and rep.expected is not None and rep.found != rep.expected:
        rep.problems.append(f"count mismatch: found {rep.found} images, the registry expects {rep.expected} "
                            f"(an incomplete download or extraction?)")
    if decode and data.files:
        files = data.files
        if sample is not None and sample < len(files):
            pick = np.sort(np.random.default_rng(0).choice(len(files), size=sample, replace=False))
            files = [files[i] for i in pick]
        rep.unreadable = find_unreadable(files, desc=f"decoding {cfg['name']}/{split}", workers=workers)
        rep.decoded = len(files) - len(rep.unreadable)  # decoded means decoded: the unreadable are listed below
    elif data.images is not None:
        rep.decoded = len(data.images)  # arrays were decoded (and their shape checked) when loading
    return rep
