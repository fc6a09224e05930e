"""On-disk layouts: joining user-named paths safely and scanning class-folder trees.

:func:`join_inside` is a *lexical* check: a class folder or registry path containing ``..``, a separator
where one component is expected, or an absolute path is refused, but symbolic links inside the data root are
followed. Clusters routinely link ``/data/imagenet`` to another disk; resolving links (as
:func:`wiseft.io.safe_join` does for the files wiseft writes) would reject those legitimate layouts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from ..errors import DatasetError

__all__ = ["IMG_EXTENSIONS", "join_inside", "check_component", "FolderScan", "scan_image_folder"]

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def join_inside(root: str | os.PathLike, rel: str | os.PathLike) -> Path:
    """``root / rel`` for a relative ``rel`` without ``..`` components.

    Raises:
        DatasetError: naming ``rel`` if it is absolute or climbs out of ``root``.
    """
    rel_str = str(rel)
    parts = PurePath(rel_str.replace("\\", "/")).parts
    if not rel_str or "\x00" in rel_str or PurePath(rel_str).is_absolute() or rel_str.startswith(("/", "\\")) \
            or any(p == ".." for p in parts):
        raise DatasetError(f"path {rel_str!r} is not allowed under {str(root)!r}: dataset paths must be relative "
                           f"and may not contain '..'")
    return Path(root).joinpath(*parts)


def check_component(name: str, what: str = "class folder") -> str:
    """``name`` if it is usable as one path component (no separators, not ``.``/``..``, not empty)."""
    if not isinstance(name, str) or not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise DatasetError(f"{what} name {name!r} is not allowed: it must be one folder name, without '/', '\\' "
                           f"or '..'")
    return name


@dataclass
class FolderScan:
    """What a class-folder tree holds.

    Attributes:
        files, labels: every image and its label, in label-then-name order.
        classes: the folder names, in label order.
        problems: layout problems (missing, empty or unexpected folders; loose images), one sentence each.
        counts: images per class folder.
    """

    files: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


def scan_image_folder(split_dir: Path, folders: list[str] | None = None, label_map: dict[str, int] | None = None,
                      ignore_other_folders: bool = False, extensions: tuple[str, ...] = IMG_EXTENSIONS,
                      flat_hint: str | None = None) -> FolderScan:
    """Scan ``split_dir/<class folder>/<image>``.

    Args:
        folders: class folder names in label order (``None``: every sub-folder, sorted, like ImageFolder).
        label_map: folder → label, several folders may share a label (class-subsampled ImageNet for ObjectNet).
        ignore_other_folders: folders outside ``folders``/``label_map`` are skipped instead of reported.
        flat_hint: what to do when images sit directly in ``split_dir`` (ImageNet's official flat val).
    """
    scan = FolderScan()
    entries = sorted(os.scandir(split_dir), key=lambda e: e.name)
    present = {e.name for e in entries if e.is_dir() and not e.name.startswith(".")}
    loose = [e.name for e in entries if e.is_file() and e.name.lower().endswith(extensions)]
    if loose:
        hint = f" {flat_hint}" if flat_hint else " Images must sit in one sub-folder per class."
        scan.problems.append(f"wrong layout: {len(loose)} image(s) lie directly in {str(split_dir)!r} "
                             f"(e.g. {loose[0]}) instead of in class folders.{hint}")
    if label_map is not None:
        wanted = {check_component(k): int(v) for k, v in label_map.items()}
    elif folders is not None:
        wanted = {check_component(f): i for i, f in enumerate(folders)}
    else:
        wanted = {f: i for i, f in enumerate(sorted(present))}
    if label_map is None:
        scan.classes = list(wanted)
    else:
        scan.classes = sorted(wanted, key=lambda f: (wanted[f], f))

    missing = [f for f in wanted if f not in present]
    if missing:
        scan.problems.append(
            f"class-count mismatch: {str(split_dir)!r} should hold {len(wanted)} class folders, {len(missing)} "
            f"missing (e.g. {', '.join(missing[:5])}); {len(present)} folder(s) present")
    extra = sorted(present - set(wanted))
    if extra and not ignore_other_folders:
        scan.problems.append(
            f"class-count mismatch: {len(extra)} unexpected folder(s) in {str(split_dir)!r} (e.g. "
            f"{', '.join(extra[:5])}); expected exactly the {len(wanted)} class folders of the registry")

    empty = []
    for folder in sorted(wanted, key=lambda f: (wanted[f], f)):
        if folder not in present:
            continue
        sub = split_dir / folder
        names = sorted(e.name for e in os.scandir(sub)
                       if not e.name.startswith(".") and e.name.lower().endswith(extensions) and e.is_file())
        scan.counts[folder] = len(names)
        if not names:
            empty.append(folder)
        scan.files.extend(str(sub / n) for n in names)
        scan.labels.extend([wanted[folder]] * len(names))
    if empty:
        scan.problems.append(f"{len(empty)} empty class folder(s) in {str(split_dir)!r} (no "
                             f"{'/'.join(e.lstrip('.') for e in extensions[:3])}… images): {', '.join(empty[:10])}"
                             f"{' …' if len(empty) > 10 else ''}")
    return scan
