"""ObjectNet's mapping to ImageNet, read from the dataset's own ``mappings/`` folder.

The ObjectNet archive ships four files in ``objectnet-1.0/mappings/``:

- ``folder_to_objectnet_label.json``: image folder → ObjectNet class name (313 classes);
- ``objectnet_to_imagenet_1k.json``: ObjectNet class name → ``"; "``-separated ImageNet label strings
  (the 113 classes that overlap ImageNet);
- ``imagenet_to_label_2012_v2``: line ``i`` is the label string of ImageNet-2012 id ``i``;
- ``pytorch_to_imagenet_2012_id.json``: PyTorch (sorted-wnid) class index → ImageNet-2012 id.

From them we build, for the 113 classes in sorted folder order, the group of 1000-way model columns whose
maximum is the class's logit (paper App. C; wise-ft ``objectnet.py``), and the reverse map used to score
class-subsampled ImageNet on the same 113 classes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from ..errors import DatasetError

__all__ = ["ObjectNetMapping", "load_objectnet_mapping", "MAPPING_FILES"]

MAPPING_FILES = (
    "folder_to_objectnet_label.json",
    "objectnet_to_imagenet_1k.json",
    "imagenet_to_label_2012_v2",
    "pytorch_to_imagenet_2012_id.json",
)


@dataclass(frozen=True)
class ObjectNetMapping:
    """The 113 ObjectNet classes that overlap ImageNet.

    Attributes:
        folders: image folder names of the 113 classes, sorted (label ``i`` is ``folders[i]``).
        classnames: their ObjectNet names, lower-cased (``"alarm clock"``).
        groups: for each class, the ImageNet (PyTorch index) columns it pools.
        imagenet_to_label: ImageNet index → ObjectNet label, for the 125 mapped ImageNet classes.
    """

    folders: tuple[str, ...]
    classnames: tuple[str, ...]
    groups: tuple[tuple[int, ...], ...]
    imagenet_to_label: dict[int, int]


def load_objectnet_mapping(mappings_dir: str | Path) -> ObjectNetMapping:
    """Parse the four mapping files in ``mappings_dir`` (cached per folder and modification time).

    Raises:
        DatasetError: naming the missing or malformed file.
    """
    mappings_dir = Path(mappings_dir)
    missing = [f for f in MAPPING_FILES if not (mappings_dir / f).is_file()]
    if missing:
        raise DatasetError(
            f"ObjectNet mapping file(s) {', '.join(missing)} not found in {str(mappings_dir)!r}. They ship in the "
            f"'mappings/' folder of objectnet-1.0.zip; unzip the whole archive so that it holds "
            f"objectnet-1.0/images/ and objectnet-1.0/mappings/ (see `wiseft data download objectnet`).")
    stamp = tuple((mappings_dir / f).stat().st_mtime_ns for f in MAPPING_FILES)
    return _parse(str(mappings_dir.resolve()), stamp)


@functools.lru_cache(maxsize=8)
def _parse(mappings_dir: str, _stamp: tuple[int, ...]) -> ObjectNetMapping:
    d = Path(mappings_dir)
    folder_to_label = _read_json(d / "folder_to_objectnet_label.json", strings=True)
    objectnet_to_imagenet = _read_json(d / "objectnet_to_imagenet_1k.json", strings=True)
    pytorch_to_2012 = _read_json(d / "pytorch_to_imagenet_2012_id.json")
    try:
        lines = (d / "imagenet_to_label_2012_v2").read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"cannot read ObjectNet mapping {str(d / 'imagenet_to_label_2012_v2')!r}: {e}") from e

    try:
        id2012_to_pytorch = {int(v): int(k) for k, v in pytorch_to_2012.items()}
    except (TypeError, ValueError) as e:
        raise DatasetError(f"{str(d / 'pytorch_to_imagenet_2012_id.json')!r}: expected integer keys and "
                           f"values: {e}") from e
    name_to_pytorch: dict[str, int] = {}
    ambiguous: set[str] = set()
    for id2012, line in enumerate(lines):
        name = line.strip()
        if not name:
            continue
        if name in name_to_pytorch:
            ambiguous.add(name)  # "crane" (bird and machine) appears twice; ObjectNet does not use it
        if id2012 not in id2012_to_pytorch:
            raise DatasetError(f"{str(d / 'pytorch_to_imagenet_2012_id.json')!r} has no entry for ImageNet-2012 "
                               f"id {id2012} (line {id2012 + 1} of imagenet_to_label_2012_v2)")
        name_to_pytorch[name] = id2012_to_pytorch[id2012]
    label_to_folder = {v: k for k, v in folder_to_label.items()}

    by_folder: dict[str, tuple[str, tuple[int, ...]]] = {}
    for objectnet_name, imagenet_names in objectnet_to_imagenet.items():
        if objectnet_name not in label_to_folder:
            raise DatasetError(f"ObjectNet class {objectnet_name!r} of objectnet_to_imagenet_1k.json has no folder "
                               f"in folder_to_objectnet_label.json ({mappings_dir})")
        ids = []
        for imagenet_name in imagenet_names.split("; "):
            if imagenet_name in ambiguous:
                raise DatasetError(f"ImageNet label {imagenet_name!r} (for ObjectNet {objectnet_name!r}) appears "
                                   f"twice in imagenet_to_label_2012_v2; the mapping is ambiguous")
            if imagenet_name not in name_to_pytorch:
                raise DatasetError(f"ImageNet label {imagenet_name!r} (for ObjectNet {objectnet_name!r}) is not in "
                                   f"imagenet_to_label_2012_v2 ({mappings_dir})")
            ids.append(name_to_pytorch[imagenet_name])
        by_folder[label_to_folder[objectnet_name]] = (objectnet_name, tuple(ids))

    folders = tuple(sorted(by_folder))
    groups = tuple(by_folder[f][1] for f in folders)
    imagenet_to_label: dict[int, int] = {}
    for label, group in enumerate(groups):
        for idx in group:
            if idx in imagenet_to_label:
                raise DatasetError(f"ImageNet class {idx} maps to two ObjectNet classes ({mappings_dir})")
            imagenet_to_label[idx] = label
    return ObjectNetMapping(
        folders=folders,
        classnames=tuple(by_folder[f][0].lower() for f in folders),
        groups=groups,
        imagenet_to_label=imagenet_to_label,
    )


def _read_json(path: Path, strings: bool = False) -> dict:
    from .files import read_json_object

    data = read_json_object(path, "ObjectNet mapping")
    if strings and not all(isinstance(v, str) for v in data.values()):
        raise DatasetError(f"ObjectNet mapping {str(path)!r} must map names to names (strings)")
    return data
