"""Loader kinds: how one split of a registry entry is read from disk.

Each kind turns a split's layout spec into a :class:`SplitData` (image files or arrays, labels, the classes
found, WILDS metadata) plus the layout problems it saw. The factory raises on problems; ``verify`` lists them.

================  ==========================================================================================
``imagefolder``   ``path/<class folder>/<image>``; ``folders`` (label order) or ``label_map`` (folder → label)
``cifar_python``  CIFAR's python batches (``files``, ``label_key``), read without running pickled code
``npy_pair``      ``data`` and ``labels`` ``.npy`` files (CIFAR-10.1)
``npy_dict``      one ``.npy`` holding a dict of ``images`` and ``labels`` (CIFAR-10.2)
``torchvision``   a torchvision dataset ``class`` parses the layout under ``path`` (Cars, DTD, Food-101)
``sun397``        ``SUN397/ClassName.txt`` plus a partition list ``file`` (``Partitions/Training_01.txt``)
``wilds``         a WILDS ``dataset`` and ``split``, through the ``wilds`` package
``video_frames``  the frames of a video set (``video: vid|ytbb``) its pm-k metadata names, keyed for pm-k scoring
================  ==========================================================================================
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import DatasetError
from .layout import IMG_EXTENSIONS, join_inside, scan_image_folder

log = logging.getLogger(__name__)

__all__ = ["SplitData", "open_split", "LOADERS", "describe_layout", "fetch_hint"]


@dataclass
class SplitData:
    """One split as found on disk."""

    where: Path
    files: list[str] | None = None
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    images: np.ndarray | None = None
    classes: list[str] | None = None
    metadata: dict[str, np.ndarray] | None = None
    wilds_dataset: Any = None
    problems: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)


def fetch_hint(cfg: dict, base: Path) -> str:
    """The sentence that says how to get the data of ``cfg``."""
    download = cfg.get("download") or {}
    if download.get("command"):
        return f"Create it with `{download['command']}`."
    return f"Fetch it with `wiseft data download {cfg['name']} --root {base}` (it prints the manual steps if any)."


def describe_layout(spec: dict) -> str:
    """A one-line description of the layout a split expects."""
    kind = spec.get("loader", "imagefolder")
    path = spec.get("path", ".")
    if kind == "imagefolder":
        return f"{path}/<class folder>/<image>"
    if kind == "cifar_python":
        return f"{path}/{{{','.join(spec.get('files', []))}}} (CIFAR python batches)"
    if kind == "npy_pair":
        return f"{path}/{spec.get('data')} and {path}/{spec.get('labels')}"
    if kind == "npy_dict":
        return f"{path}/{spec.get('file')}"
    if kind == "sun397":
        return f"{path}/ClassName.txt, {path}/{spec.get('file')} and {path}/<letter>/<class>/<image>.jpg"
    if kind == "video_frames":
        return f"{path}/{{metadata/labels.json, metadata/pmsets.json, frames}} (imagenet_vid_ytbb_robust.tar.gz)"
    if kind == "wilds":
        from .wilds_support import WILDS_FOLDERS

        release = WILDS_FOLDERS.get(spec.get("dataset"), ("", "RELEASE_v*.txt"))[1]
        return f"{path}/{{{release}, metadata CSV, images}} (the WILDS {spec.get('dataset')} release wilds downloads)"
    return f"{path}/ (the layout torchvision's {spec.get('class')} reads)"


def open_split(cfg: dict, split: str, base: Path, resolve: Callable[[Any, str], Any]) -> SplitData:
    """Read split ``split`` of entry ``cfg`` under ``base``; problems are collected, not raised."""
    if split not in cfg["splits"]:
        raise DatasetError(f"dataset {cfg['name']!r} has no split {split!r}; splits: {', '.join(cfg['splits'])}")
    spec = cfg["splits"][split]
    kind = spec.get("loader", "imagefolder")
    if kind not in LOADERS:
        raise DatasetError(f"dataset {cfg['name']!r}, split {split!r}: unknown loader {kind!r}; "
                           f"known: {', '.join(LOADERS)}")
    where = join_inside(base, spec.get("path", "."))
    if not where.exists():
        return SplitData(where=where, problems=[
            f"{cfg['name']} ({split}) not found: expected {str(where)!r} laid out as {describe_layout(spec)}. "
            f"{fetch_hint(cfg, base)}"])
    return LOADERS[kind](spec, where, base, resolve)


# ------------------------------------------------------------------------------------------- kinds
def _imagefolder(spec: dict, where: Path, base: Path, resolve: Callable) -> SplitData:
    if not where.is_dir():
        return SplitData(where=where, problems=[f"{str(where)!r} should be a folder of class folders"])
    folders = resolve(spec["folders"], "class folders") if "folders" in spec else None
    label_map = resolve(spec["label_map"], "label map") if "label_map" in spec else None
    if folders is not None and not (isinstance(folders, list) and all(isinstance(f, str) for f in folders)):
        raise DatasetError(f"{str(where)!r}: 'folders' must give a list of class folder names, got {folders!r}")
    if label_map is not None and not (isinstance(label_map, dict) and all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0
            for k, v in label_map.items())):
        raise DatasetError(f"{str(where)!r}: 'label_map' must map class folder names to labels 0, 1, …, got "
                           f"{label_map!r}")
    exts = tuple(e.lower() for e in spec.get("extensions", IMG_EXTENSIONS))
    scan = scan_image_folder(where, folders=folders, label_map=label_map,
                             ignore_other_folders=bool(spec.get("ignore_other_folders", False)), extensions=exts,
                             flat_hint=spec.get("flat_hint"))
    return SplitData(where=where, files=scan.files, labels=np.asarray(scan.labels, dtype=np.int64),
                     classes=scan.classes, problems=scan.problems, counts=scan.counts)


def _cifar_python(spec: dict, where: Path, base: Path, resolve: Callable) -> SplitData:
    from .safe_pickle import load_numpy_pickle

    images, labels, problems = [], [], []
    label_key = spec.get("label_key", "labels")
    for name in spec.get("files", []):
        path = join_inside(where, name)
        if not path.is_file():
            problems.append(f"missing file {str(path)!r} (CIFAR python batch)")
            continue
        batch = load_numpy_pickle(path)
        data = _key(batch, "data", path)
        y = _key(batch, label_key, path)
        images.append(np.asarray(data, dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.append(np.asarray(y, dtype=np.int64))
    if problems:
        return SplitData(where=where, problems=problems)
    return SplitData(where=where, images=np.concatenate(images), labels=np.concatenate(labels))


def _key(batch: Any, key: str, path: Path) -> Any:
    if isinstance(batch, dict):
        for k in (key, key.encode("latin1")):
            if k in batch:
                return batch[k]
    raise DatasetError(f"{str(path)!r} has no {key!r} entry; it is not a CIFAR python batch")


def _npy_pair(spec: dict, where: Path, base: Path, resolve: Callable) -> SplitData:
    arrays = []
    for key in ("data", "labels"):
        path = join_inside(where, spec[key])
        if not path.is_file():
            return SplitData(where=where, problems=[f"missing file {str(path)!r}"])
        try:
            arrays.append(np.load(path, allow_pickle=False))
        except (OSError, ValueError, EOFError) as e:
            raise DatasetError(f"cannot read {str(path)!r}: {e}. Delete it and download it again.") from e
    return _arrays(where, *arrays)


def _npy_dict(spec: dict, where: Path, base: Path, resolve: Callable) -> SplitData:
    from .safe_pickle import load_object_npy

    path = join_inside(where, spec["file"])
    if not path.is_file():
        return SplitData(where=where, problems=[f"missing file {str(path)!r}"])
    obj = load_object_npy(path)
    return _arrays(where, _key(obj, spec.get("images_key", "images"), path),
                   _key(obj, spec.get("labels_key", "labels"), path))


def _arrays(where: Path, images: Any, labels: Any) -> SplitData:
    images, labels = np.asarray(images), np.asarray(labels).reshape(-1)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8 or len(images) != len(labels):
        return SplitData(where=where, problems=[
            f"{str(where)!r}: expected uint8 images [N, H, W, 3] and N labels, got images {images.dtype} "
            f"{images.shape} and {len(labels)} labels"])
    return SplitData(where=where, images=images, labels=labels.astype(np.int64))


#: torchvision datasets the registry may name (a YAML file never picks an arbitrary attribute).
TORCHVISION_CLASSES = ("StanfordCars", "DTD", "Food101", "SUN397", "Flowers102", "OxfordIIITPet", "FGVCAircraft",
                       "Country211", "EuroSAT", "GTSRB", "RenderedSST2", "PCAM", "Caltech101")


def _torchvision(spec: dict, where: Path, base: Path, resolve: Callable) -> SplitData:
    import torchvision.datasets as tvd

    cls_name = spec.get("class")
    if cls_name not in TORCHVISION_CLASSES:
        raise DatasetError(f"torchvision dataset class {cls_name!r} is not supported; use one of "
                           f"{', '.join(TORCHVISION_CLASSES)}")
    kwargs = dict(spec.get("kwargs") or {})
    if spec.get("split_arg", "split"):
        kwargs[spec.get("split_arg", "split")] = spec["split"]
    try:
        ds = getattr(tvd, cls_name)(root=str(base), **kwargs)
    except TypeError as e:  # an argument the class does not take (the entry's 'kwargs' or 'split_arg')
        raise DatasetError(f"torchvision's {cls_name} does not accept the arguments {sorted(kwargs)} of this registry "
                           f"entry: {e}") from e
    except (RuntimeError, OSError, ValueError) as e:
        return SplitData(where=where, problems=[f"torchvision's {cls_name} cannot read {str(where)!r}: {e}"])
    if hasattr(ds, "_samples"):
        files, labels = zip(*ds._samples) if ds._samples else ((), ())
    else:
        files, labels = ds._image_files, ds._labels
    return SplitData(where=where, files=[str(f) for f in files], labels=np.asarray(labels, dtype=np.int64),
                     classes=list(ds.classes))


def _sun397(spec: dict, where: Path, base: Path, resolve: Callable) -> SplitData:
    class_file, list_file = where / "ClassName.txt", join_inside(where, spec["file"])
    missing = [str(p) for p in (class_file, list_file) if not p.is_file()]
    if missing:
        return SplitData(where=where, problems=[f"missing {', '.join(missing)}: SUN397 needs the class list of the "
                                                f"archive and the official partition files (Partitions.zip)"])
    from .sources import read_lines

    classes = read_lines(class_file, "SUN397 classes")
    index = {c: i for i, c in enumerate(classes)}
    files, labels, problems = [], [], []
    for line in read_lines(list_file, "SUN397 partition"):
        cls = "/" + line.strip("/").rsplit("/", 1)[0]
        if cls not in index:
            problems.append(f"{str(list_file)!r}: class {cls!r} of {line!r} is not in ClassName.txt")
            continue
        files.append(str(join_inside(where, line.lstrip("/"))))
        labels.append(index[cls])
    # '/a/apartment_building/outdoor' -> 'apartment building outdoor'
    names = [c[3:].replace("/", " ").replace("_", " ") for c in classes]
    return SplitData(where=where, files=files, labels=np.asarray(labels, dtype=np.int64), classes=names,
                     problems=problems[:20])


def _wilds(spec: dict, where: Path, base: Path, resolve: Callable) -> SplitData:
    from .wilds_support import wilds_split

    try:
        ds, files, labels, metadata = wilds_split(spec["dataset"], base, spec["split"])
    except DatasetError as e:
        return SplitData(where=where, problems=[str(e)])
    return SplitData(where=where, files=files, labels=labels, metadata={"wilds": metadata}, wilds_dataset=ds)


def _video_frames(spec: dict, where: Path, base: Path, resolve: Callable) -> SplitData:
    from .video import load_video_meta

    meta = load_video_meta(where, spec["video"])
    keys = meta.frame_keys()
    files = [join_inside(meta.frames_dir, k) for k in keys]
    absent = [str(f) for f in files if not f.is_file()]
    problems = [f"{len(absent)} frame(s) named by the pm-k metadata are missing, e.g. {absent[0]}"] if absent else []
    return SplitData(where=where, files=[str(f) for f in files], labels=np.asarray(
        [meta.labels[k][0] for k in keys], dtype=np.int64), metadata={"video_key": np.asarray(keys)},
        problems=problems)


LOADERS: dict[str, Callable[[dict, Path, Path, Callable], SplitData]] = {
    "imagefolder": _imagefolder, "cifar_python": _cifar_python, "npy_pair": _npy_pair, "npy_dict": _npy_dict,
    "torchvision": _torchvision, "sun397": _sun397, "wilds": _wilds, "video_frames": _video_frames,
}
