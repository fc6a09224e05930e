"""Tiny fake datasets in each real on-disk layout, for tests (ours and other modules').

:func:`build_fake_dataset` writes a few small images per class for any registry entry, laid out exactly as
the real dataset is (class folders, CIFAR python batches, ``.npy`` files, torchvision's layouts, SUN397
partitions, WILDS metadata CSVs), so the real loaders run on it. Nothing is downloaded. Counts differ from
the registry's (``verify`` reports that; loading only warns).

Example:
    >>> root = tmp_path / "data"                                            # doctest: +SKIP
    >>> build_fake_dataset("imagenet-a", root)                              # doctest: +SKIP
    >>> ev = create_eval_set("imagenet-a", root=root)                       # doctest: +SKIP
"""

from __future__ import annotations

import io
import json
import pickle  # writing fixtures only; wiseft never loads pickles except through safe_pickle
import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

from .registry import get_dataset_cfg, resolve_dataset_root
from .sources import SourceContext, resolve_source

__all__ = ["write_image", "write_bad_file", "make_image_folder", "build_fake_dataset", "build_fake_iwildcam",
           "build_fake_fmow", "build_fake_video_sets", "write_fake_objectnet_mappings"]


def write_image(path: str | Path, seed: int = 0, size: tuple[int, int] = (6, 6)) -> Path:
    """Write a small deterministic RGB image; the format follows the suffix (``.png``, ``.jpg`` …)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def write_bad_file(path: str | Path, kind: str = "truncated") -> Path:
    """Write an unreadable "image": ``truncated`` (a PNG cut in half) or ``text`` (not an image at all)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "text":
        path.write_text("this is not an image\n")
    else:
        buf = io.BytesIO()
        noise = np.random.default_rng(0).integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
        Image.fromarray(noise).save(buf, format="PNG")
        path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    return path


def make_image_folder(root: str | Path, folders: list[str], per_class: int = 1, ext: str = ".jpg") -> Path:
    """``root/<folder>/<i><ext>`` for each folder."""
    root = Path(root)
    for c, folder in enumerate(folders):
        for i in range(per_class):
            write_image(root / folder / f"img{i}{ext}", seed=c * 1000 + i)
    return root


def build_fake_dataset(name: str, root: str | Path, per_class: int = 1, splits: list[str] | None = None,
                       objectnet_mappings: str | Path | None = None) -> Path:
    """Write a fake ``name`` under ``root`` in its real layout; return the dataset's base folder.

    Args:
        per_class: images per class and split.
        splits: which splits (default all).
        objectnet_mappings: folder holding ObjectNet's four mapping files; copied to
            ``objectnet-1.0/mappings`` (needed by ``objectnet`` and ``imagenet-sub-objectnet``).
    """
    cfg = get_dataset_cfg(name)
    base = resolve_dataset_root(cfg, root)
    if objectnet_mappings is not None:
        dst = base / "objectnet-1.0" / "mappings"
        dst.mkdir(parents=True, exist_ok=True)
        for f in Path(objectnet_mappings).iterdir():
            shutil.copy(f, dst / f.name)
    sources = [cfg["classnames"], *(spec.get("label_map") for spec in cfg["splits"].values())]
    if any(isinstance(src, dict) and "video" in src for src in sources) and not (base / _VIDEO_ROOT).is_dir():
        build_fake_video_sets(base, per_class=per_class)  # the class-subsampled references read its metadata
    ctx = SourceContext(name=name, yaml_file=Path(cfg["source"]), base=base)
    for split in splits or list(cfg["splits"]):
        spec = cfg["splits"][split]
        _BUILDERS[spec.get("loader", "imagefolder")](cfg, split, spec, base, per_class, ctx)
    return base


def write_fake_objectnet_mappings(dst: str | Path, overlapping: int = 113, others: int = 3,
                                  imagenet_classes: int = 1000) -> Path:
    """ObjectNet's four ``mappings/`` files in their real formats, with made-up names, into ``dst``.

    ``overlapping`` ObjectNet classes map to ImageNet (the first 12 to two ImageNet classes each, as some real ones
    do), ``others`` have no ImageNet counterpart; ImageNet-2012 ids run in reverse PyTorch order, so the id
    translation is exercised.
    """
    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    names = [f"imagenet label {i:04d}" for i in range(imagenet_classes)]  # line i: ImageNet-2012 id i
    (dst / "imagenet_to_label_2012_v2").write_text("\n".join(names) + "\n", encoding="utf-8")
    pytorch_to_2012 = {str(k): imagenet_classes - 1 - k for k in range(imagenet_classes)}
    (dst / "pytorch_to_imagenet_2012_id.json").write_text(json.dumps(pytorch_to_2012), encoding="utf-8")
    folders = {f"object_{k:03d}": f"Object {k:03d}" for k in range(overlapping + others)}
    (dst / "folder_to_objectnet_label.json").write_text(json.dumps(folders), encoding="utf-8")
    to_imagenet, next_id = {}, 0
    for k in range(overlapping):
        width = 2 if k < 12 else 1
        to_imagenet[f"Object {k:03d}"] = "; ".join(names[next_id:next_id + width])
        next_id += width
    (dst / "objectnet_to_imagenet_1k.json").write_text(json.dumps(to_imagenet), encoding="utf-8")
    return dst


def _n_classes(cfg: dict, ctx: SourceContext) -> int:
    return len(resolve_source(cfg["classnames"], ctx, "class names"))


def _imagefolder(cfg: dict, split: str, spec: dict, base: Path, per: int, ctx: SourceContext) -> None:
    if "label_map" in spec:
        folders = list(resolve_source(spec["label_map"], ctx, "label map"))
    elif "folders" in spec:
        folders = list(resolve_source(spec["folders"], ctx, "class folders"))
    else:
        folders = [f"class_{i:03d}" for i in range(_n_classes(cfg, ctx))]
    make_image_folder(base / spec["path"], folders, per_class=per)


def _cifar_python(cfg: dict, split: str, spec: dict, base: Path, per: int, ctx: SourceContext) -> None:
    n_classes = _n_classes(cfg, ctx)
    for k, fname in enumerate(spec["files"]):
        labels = [c for c in range(n_classes) for _ in range(per)]
        data = np.random.default_rng(k).integers(0, 256, size=(len(labels), 3072), dtype=np.uint8)
        path = base / spec["path"] / fname
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pickle.dumps({"data": data, spec.get("label_key", "labels"): labels,
                                       "filenames": [f"img{i}.png" for i in range(len(labels))]}, protocol=2))


def _arrays(cfg: dict, per: int, ctx: SourceContext, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray([c for c in range(_n_classes(cfg, ctx)) for _ in range(per)], dtype=np.int64)
    return np.random.default_rng(seed).integers(0, 256, size=(len(labels), 32, 32, 3), dtype=np.uint8), labels


def _npy_pair(cfg: dict, split: str, spec: dict, base: Path, per: int, ctx: SourceContext) -> None:
    images, labels = _arrays(cfg, per, ctx)
    (base / spec["path"]).mkdir(parents=True, exist_ok=True)
    np.save(base / spec["path"] / spec["data"], images)
    np.save(base / spec["path"] / spec["labels"], labels)


def _npy_dict(cfg: dict, split: str, spec: dict, base: Path, per: int, ctx: SourceContext) -> None:
    images, labels = _arrays(cfg, per, ctx)
    (base / spec["path"]).mkdir(parents=True, exist_ok=True)
    np.save(base / spec["path"] / spec["file"], {spec.get("images_key", "images"): images,
                                                 spec.get("labels_key", "labels"): labels}, allow_pickle=True)


def _torchvision(cfg: dict, split: str, spec: dict, base: Path, per: int, ctx: SourceContext) -> None:
    names = [f"class_{i}" for i in range(3)]
    kind = spec["class"]
    if kind == "DTD":
        data = base / "dtd" / "dtd"
        lines = []
        for c, cls in enumerate(names):
            for i in range(per):
                write_image(data / "images" / cls / f"{cls}_{split}_{i}.jpg", seed=c * 100 + i)
                lines.append(f"{cls}/{cls}_{split}_{i}.jpg")
        (data / "labels").mkdir(parents=True, exist_ok=True)
        (data / "labels" / f"{spec['split']}{spec.get('kwargs', {}).get('partition', 1)}.txt").write_text(
            "\n".join(lines) + "\n")
    elif kind == "Food101":
        data = base / "food-101"
        meta = {}
        for c, cls in enumerate(names):
            meta[cls] = [f"{cls}/{split}{i}" for i in range(per)]
            for i in range(per):
                write_image(data / "images" / cls / f"{split}{i}.jpg", seed=c * 100 + i)
        (data / "meta").mkdir(parents=True, exist_ok=True)
        (data / "meta" / f"{spec['split']}.json").write_text(json.dumps(meta))
    elif kind == "StanfordCars":
        _stanford_cars(base / "stanford_cars", spec["split"], per, names)
    else:
        raise NotImplementedError(f"no fake layout for torchvision {kind}")


def _stanford_cars(data: Path, split: str, per: int, names: list[str]) -> None:
    import scipy.io

    (data / "devkit").mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(data / "devkit" / "cars_meta.mat", {"class_names": np.array(names, dtype=object)})
    rows = [(f"{split}_{c}_{i}.jpg", c + 1) for c in range(len(names)) for i in range(per)]
    annos = np.array(rows, dtype=[("fname", object), ("class", object)])
    folder = data / ("cars_train" if split == "train" else "cars_test")
    for k, (fname, _) in enumerate(rows):
        write_image(folder / fname, seed=k)
    mat = data / "devkit" / "cars_train_annos.mat" if split == "train" else data / "cars_test_annos_withlabels.mat"
    scipy.io.savemat(mat, {"annotations": annos})


def _sun397(cfg: dict, split: str, spec: dict, base: Path, per: int, ctx: SourceContext) -> None:
    data = base / spec["path"]
    classes = ["/a/abbey", "/a/apartment_building/outdoor", "/b/bakery/shop"]
    (data).mkdir(parents=True, exist_ok=True)
    (data / "ClassName.txt").write_text("\n".join(classes) + "\n")
    lines = []
    for c, cls in enumerate(classes):
        for i in range(per):
            rel = f"{cls}/sun_{split}{i}.jpg"
            write_image(data / rel.lstrip("/"), seed=c * 100 + i)
            lines.append(rel)
    (data / spec["file"]).parent.mkdir(parents=True, exist_ok=True)
    (data / spec["file"]).write_text("\n".join(lines) + "\n")


def _wilds(cfg: dict, split: str, spec: dict, base: Path, per: int, ctx: SourceContext) -> None:
    folder = {"iwildcam": "iwildcam_v2.0", "fmow": "fmow_v1.1"}[spec["dataset"]]
    if not (base / folder).is_dir():  # one build serves every split (and the -ood entry)
        {"iwildcam": build_fake_iwildcam, "fmow": build_fake_fmow}[spec["dataset"]](base)


def build_fake_iwildcam(root: str | Path, rows: list[tuple[str, int, int]] | None = None) -> Path:
    """``root/iwildcam_v2.0`` with ``metadata.csv`` (the columns wilds reads) and one JPEG per row.

    Args:
        rows: ``(split, y, location)``; the default has 3 classes and 2 locations in every split.
    """
    import pandas as pd

    rows = rows or [(s, y, loc) for s in ("train", "val", "test", "id_val", "id_test") for y in range(3)
                    for loc in range(2)]
    data = Path(root) / "iwildcam_v2.0"
    (data / "train").mkdir(parents=True, exist_ok=True)
    (data / "RELEASE_v2.0.txt").write_text("fake iWildCam v2.0 for tests\n")
    records = []
    for i, (split, y, loc) in enumerate(rows):
        name = f"img{i:05d}.jpg"
        write_image(data / "train" / name, seed=i)
        records.append({"split": split, "filename": name, "y": y, "location_remapped": loc, "sequence_remapped": i,
                        "datetime": f"2013-06-{1 + i % 28:02d} 12:00:00.000", "image_id": f"id{i}"})
    pd.DataFrame(records).to_csv(data / "metadata.csv", index=False)
    return data


def build_fake_fmow(root: str | Path, rows: list[tuple[str, str, str, str]] | None = None) -> Path:
    """``root/fmow_v1.1`` with ``rgb_metadata.csv``, ``country_code_mapping.csv`` and ``images/rgb_img_<i>.png``.

    Args:
        rows: ``(split column, category, country alpha-3, ISO timestamp)``. WILDS' official split puts 2016
            onwards in OOD test/val (by the ``split`` column) and 2013–2015 in OOD val; ``seq`` rows are dropped.
    """
    import pandas as pd

    if rows is None:
        # a sequestered row first (image numbering counts it) and a 2002 row (years are grouped from 2002)
        rows = [("seq", "airport", "USA", "2010-01-01T00:00:00Z"), ("train", "airport", "USA", "2002-05-01T00:00:00Z")]
        for split, year in (("train", 2010), ("val", 2010), ("test", 2010), ("val", 2014), ("test", 2017)):
            for cat in ("airport", "barn", "dam"):
                for country in ("USA", "FRA", "KEN"):
                    rows.append((split, cat, country, f"{year}-05-01T00:00:00Z"))
    data = Path(root) / "fmow_v1.1"
    (data / "images").mkdir(parents=True, exist_ok=True)
    (data / "RELEASE_v1.1.txt").write_text("fake FMoW v1.1 for tests\n")
    pd.DataFrame({"alpha-3": ["USA", "FRA", "KEN", "AUS", "CHN"],
                  "region": ["Americas", "Europe", "Africa", "Oceania", "Asia"]}).to_csv(
        data / "country_code_mapping.csv", index=False)
    pd.DataFrame([{"split": s, "category": c, "country_code": cc, "timestamp": t} for s, c, cc, t in rows]).to_csv(
        data / "rgb_metadata.csv", index=False)
    for i, (split, *_rest) in enumerate(rows):
        if split != "seq":
            write_image(data / "images" / f"rgb_img_{i}.png", seed=i)
    return data


_VIDEO_ROOT = "imagenet_vid_ytbb_robust"


def _video_frames(cfg: dict, split: str, spec: dict, base: Path, per: int, ctx: SourceContext) -> None:
    if not (base / _VIDEO_ROOT).is_dir():  # one build serves both sets (and their class-subsampled references)
        build_fake_video_sets(base, per_class=per)


def build_fake_video_sets(root: str | Path, per_class: int = 1, neighbours: int = 2) -> Path:
    """``root/imagenet_vid_ytbb_robust/`` as the archive unpacks: ImageNet-Vid-Robust and YTBB-Robust.

    Each class gets ``per_class`` anchor frames, each with ``neighbours`` frames of its pm-k set, and the
    metadata files the loaders read (``labels.json``, ``pmsets.json``; Vid's ``misc/`` class maps, with
    invented Vid wnids each merging two real ImageNet classes: Vid class ``k`` ← ImageNet ``2k, 2k+1``).

    Returns:
        The ``imagenet_vid_ytbb_robust`` folder.
    """
    from open_clip import IMAGENET_CLASSNAMES

    from .files import read_lines, timm_info_file
    from .video import _ytbb_classes

    top = Path(root) / _VIDEO_ROOT
    wnids = read_lines(timm_info_file("imagenet_synsets.txt"), "ImageNet synsets")
    vid = top / "imagenet-vid-robust"
    vid_index = {str(k): [f"n9{k:07d}", f"vid class {k}"] for k in range(30)}
    _write_json(vid / "misc" / "imagenet_vid_class_index.json", vid_index)
    _write_json(vid / "misc" / "imagenet_class_index.json",
                {str(i): [w, IMAGENET_CLASSNAMES[i]] for i, w in enumerate(wnids)})
    _write_json(vid / "misc" / "rev_wnid_map.json", {v[0]: [wnids[2 * k], wnids[2 * k + 1]]
                                                     for k, v in ((int(k), v) for k, v in vid_index.items())})
    _write_json(vid / "misc" / "wnid_map.json", {wnids[2 * k + j]: f"n9{k:07d}" for k in range(30) for j in (0, 1)})
    labels, pmsets = {}, {}
    for c in range(30):
        for i in range(per_class):
            keys = [f"val/ILSVRC2015_val_{c:04d}{i:04d}/{f:06d}.JPEG" for f in range(neighbours + 1)]
            for j, key in enumerate(keys):
                write_image(vid / key, seed=c * 100 + i * 10 + j)
                labels[key] = [c]
            pmsets[keys[0]] = keys[1:]
    _write_json(vid / "metadata" / "labels.json", labels)
    _write_json(vid / "metadata" / "pmsets.json", pmsets)

    ytbb = top / "ytbb-robust"
    names, _ = _ytbb_classes()
    labels, pmsets = {}, {}
    for c, name in enumerate(names):
        if name == "none":
            continue
        for i in range(per_class):
            keys = [f"yt{c:02d}v{i}_{1000 * (c + 1)}/frame-{15 * (c + 1) + f}.jpg" for f in range(neighbours + 1)]
            for j, key in enumerate(keys):
                write_image(ytbb / "ytbb_videos" / key, seed=5000 + c * 100 + i * 10 + j)
                labels[key] = [c]
            pmsets[keys[0]] = keys[1:]
    _write_json(ytbb / "metadata" / "labels.json", labels)
    _write_json(ytbb / "metadata" / "pmsets.json", pmsets)
    return top


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1))


_BUILDERS: dict[str, Callable[..., Any]] = {
    "imagefolder": _imagefolder, "cifar_python": _cifar_python, "npy_pair": _npy_pair, "npy_dict": _npy_dict,
    "torchvision": _torchvision, "sun397": _sun397, "wilds": _wilds, "video_frames": _video_frames,
}
