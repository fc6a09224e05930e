"""Fixture datasets for a rehearsal, in each dataset's real on-disk layout, built by the data step.

Every dataset a rehearsed profile evaluates (reference, shifts, extras, suite members) is written under the
profile's ``data.root`` by :func:`wiseft.datasets.fixtures.build_fake_dataset`, so the real loaders, protocols
and verifiers read it. A dataset that reads another's files (``download: {same_as: ...}``: the class-subsampled
ImageNet references, WILDS' OOD entries) makes that one be built; ObjectNet's ``mappings/`` are written in their
real format with made-up names. Entries with a root of their own (the offline world) are not written here: the
world is drawn by the data step as in a real run.

A hook for datasets whose fixtures live elsewhere (video sets): :data:`FIXTURE_BUILDERS` maps a registry loader
or dataset name to a builder ``(name, root, per_class) -> None``; an entry found there is used instead of
``build_fake_dataset``.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Callable

from ..profile import Profile

log = logging.getLogger(__name__)

__all__ = ["FIXTURE_BUILDERS", "rehearsal_datasets", "build_rehearsal_data", "IMAGES_PER_SPLIT"]

def _iwildcam(name: str, root: Path, per_class: int) -> None:
    """iWildCam with enough rows per split for a fine-tuning batch: 6 classes × 2 cameras × ``per_class``."""
    from ..datasets.fixtures import build_fake_iwildcam

    splits = ("train", "val", "test", "id_val", "id_test")
    build_fake_iwildcam(root, rows=[(s, y, loc) for s in splits for y in range(6) for loc in range(2)
                                    for _ in range(per_class)])


#: Fixture builders by dataset name or split loader, ``builder(name, root, per_class)``, used instead of
#: ``build_fake_dataset`` (the video sets register theirs here).
FIXTURE_BUILDERS: dict[str, Callable[[str, Path, int], None]] = {"iwildcam": _iwildcam}
#: About this many images per split (at least two per class, so that a class can lend one to a held-out split;
#: at most four).
IMAGES_PER_SPLIT = 48
_DONE = ".wiseft-fixtures.json"
_OBJECTNET_MAPPINGS = "objectnet-1.0/mappings"


def rehearsal_datasets(profile: Profile) -> list[str]:
    """Every dataset the profile (and each suite member) evaluates, in order, without repeats."""
    names = list(profile.datasets) + [n for m in profile.suite_members() for n in m.datasets]
    return list(dict.fromkeys(names))


def _per_class(name: str, root: Path) -> int:
    from ..datasets import get_classnames
    from ..errors import DatasetError

    try:
        n = len(get_classnames(name, root))
    except (DatasetError, OSError):  # names read from the data itself (torchvision sets) exist only afterwards
        n = 3
    return max(2, min(4, math.ceil(IMAGES_PER_SPLIT / max(n, 1))))


def _targets(names: list[str]) -> list[str]:
    """The datasets whose files must be written: ``same_as`` entries are replaced by what they read."""
    from ..datasets import get_dataset_cfg

    out = []
    for name in names:
        cfg = get_dataset_cfg(name)
        if cfg.get("root") is not None:  # an own root (the offline world): not fixture data
            continue
        out.append((cfg.get("download") or {}).get("same_as", name))
    return list(dict.fromkeys(out))


def build_rehearsal_data(profile: Profile) -> list[str]:
    """Write the fixtures of every dataset of ``profile`` under its ``data.root`` (once); return the names built.

    Raises:
        PipelineError: for a profile that is not a rehearsal (fixtures never go into a real data root).
    """
    from ..datasets import get_dataset_cfg
    from ..datasets.fixtures import build_fake_dataset, write_fake_objectnet_mappings
    from ..errors import PipelineError

    if not profile.rehearsal or profile.data.root is None:
        raise PipelineError(f"profile {profile.name!r} is not a rehearsal with its own data root: fixture datasets "
                            "are only written for `wiseft run --rehearse`")
    root = Path(profile.data.root)
    root.mkdir(parents=True, exist_ok=True)
    done_path = root / _DONE
    done = set(json.loads(done_path.read_text(encoding="utf-8"))) if done_path.is_file() else set()
    names = rehearsal_datasets(profile)
    built = []
    if any(n in ("objectnet", "imagenet-sub-objectnet") for n in names) and "objectnet-mappings" not in done:
        write_fake_objectnet_mappings(root / _OBJECTNET_MAPPINGS)
        done.add("objectnet-mappings")
    for name in _targets(names):
        if name in done:
            continue
        cfg = get_dataset_cfg(name)
        loaders = {spec.get("loader", "imagefolder") for spec in cfg["splits"].values()}
        builder = FIXTURE_BUILDERS.get(name) or next((FIXTURE_BUILDERS[k] for k in loaders if k in FIXTURE_BUILDERS),
                                                     None)
        per_class = _per_class(name, root)
        log.info("rehearsal: writing fixture dataset %s (%d image(s) per class and split) under %s", name,
                 per_class, root)
        if builder is not None:
            builder(name, root, per_class)
        else:
            build_fake_dataset(name, root, per_class=per_class)
        done.add(name)
        built.append(name)
        done_path.write_text(json.dumps(sorted(done)), encoding="utf-8")
    return built
