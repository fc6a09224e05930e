"""Sort ImageNet's official flat validation folder into one folder per class (``val/<wnid>/<image>``).

``ILSVRC2012_img_val.tar`` unpacks to 50,000 files ``ILSVRC2012_val_00000001.JPEG`` … with no class folders.
The labels come from one of:

- the devkit (``ILSVRC2012_devkit_t12.tar.gz`` or its unpacked folder): ``data/ILSVRC2012_validation_ground_truth.txt``
  (one ILSVRC id per image, in file-name order) and ``data/meta.mat`` (ILSVRC id → wnid);
- Kaggle's ``LOC_val_solution.csv`` (``ImageId,PredictionString`` with the wnid first);
- a text file of ``<file name> <wnid>`` lines.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import shutil
import tarfile
from pathlib import Path

from ..errors import DatasetError
from ..progress import progress
from .layout import check_component

log = logging.getLogger(__name__)

__all__ = ["convert_imagenet_val", "read_val_labels"]

_GT = "data/ILSVRC2012_validation_ground_truth.txt"
_META = "data/meta.mat"


def read_val_labels(devkit: str | os.PathLike | None = None, labels: str | os.PathLike | None = None
                    ) -> dict[str, str]:
    """Validation file name (``ILSVRC2012_val_00000001.JPEG``) → wnid, from the devkit or a labels file."""
    if (devkit is None) == (labels is None):
        raise DatasetError("give exactly one of the devkit (ILSVRC2012_devkit_t12.tar.gz or folder) or a labels file "
                           "(LOC_val_solution.csv or '<file> <wnid>' lines)")
    if devkit is not None:
        gt_text, meta_bytes = _read_devkit(Path(devkit))
        id_to_wnid = _meta_wnids(meta_bytes, devkit)
        try:
            ids = [int(x) for x in gt_text.split()]
            return {f"ILSVRC2012_val_{i + 1:08d}.JPEG": id_to_wnid[v] for i, v in enumerate(ids)}
        except (ValueError, KeyError) as e:
            raise DatasetError(f"the devkit {str(devkit)!r}: {_GT} holds {e}, which is not a class id of its "
                               f"meta.mat; is it the ILSVRC2012 devkit?") from e
    path = Path(labels)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"cannot read the labels file {str(path)!r} as UTF-8 text: {e}") from e
    if text.startswith("ImageId,PredictionString"):
        rows = csv.DictReader(io.StringIO(text))
        return {f"{r['ImageId']}.JPEG": r["PredictionString"].split()[0] for r in rows}
    out = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2:
            raise DatasetError(f"{str(path)!r} line {n}: expected '<file name> <wnid>', got {line!r}")
        out[parts[0]] = parts[1]
    return out


def _read_devkit(devkit: Path) -> tuple[str, bytes]:
    if devkit.is_dir():
        root = devkit / "ILSVRC2012_devkit_t12" if (devkit / "ILSVRC2012_devkit_t12").is_dir() else devkit
        try:
            return (root / _GT).read_text(encoding="utf-8"), (root / _META).read_bytes()
        except (OSError, UnicodeDecodeError) as e:
            raise DatasetError(f"devkit folder {str(devkit)!r} lacks {_GT} or {_META}: {e}") from e
    try:
        with tarfile.open(devkit) as tf:
            members = {m.name.split("/", 1)[-1]: m for m in tf.getmembers() if m.isfile()}
            gt, meta = members.get(_GT), members.get(_META)
            if gt is None or meta is None:
                raise DatasetError(f"{str(devkit)!r} lacks {_GT} or {_META}; is it ILSVRC2012_devkit_t12.tar.gz?")
            return tf.extractfile(gt).read().decode("utf-8"), tf.extractfile(meta).read()
    except (OSError, tarfile.TarError, UnicodeDecodeError) as e:
        raise DatasetError(f"cannot read the devkit {str(devkit)!r}: {e}") from e


def _meta_wnids(meta_bytes: bytes, where: object) -> dict[int, str]:
    import scipy.io

    out = {}
    try:  # a MATLAB file: scipy reads arrays and structs from it, never code
        synsets = scipy.io.loadmat(io.BytesIO(meta_bytes), squeeze_me=True)["synsets"]
        for row in synsets:
            if int(row["num_children"]) == 0:  # the 1000 leaf classes
                out[int(row["ILSVRC2012_ID"])] = str(row["WNID"])
    except (ValueError, TypeError, KeyError, IndexError, NotImplementedError, OSError) as e:
        raise DatasetError(f"the devkit's meta.mat ({where}) cannot be read: {type(e).__name__}: {e}") from e
    if not out:
        raise DatasetError(f"no leaf synsets in the devkit's meta.mat ({where})")
    return out


def convert_imagenet_val(flat: str | os.PathLike, out: str | os.PathLike, devkit: str | os.PathLike | None = None,
                         labels: str | os.PathLike | None = None, copy: bool = False) -> int:
    """Move (or copy) every image of the flat folder into ``out/<wnid>/``; return how many are in place.

    Rerunning after an interruption continues where it stopped.

    Raises:
        DatasetError: if an image has no label or a label is not a plain folder name.
    """
    flat, out = Path(flat), Path(out)
    mapping = read_val_labels(devkit=devkit, labels=labels)
    if not flat.is_dir():
        raise DatasetError(f"flat validation folder {str(flat)!r} does not exist (unpack ILSVRC2012_img_val.tar "
                           f"into it first)")
    images = sorted(p.name for p in flat.iterdir() if p.is_file() and p.suffix.lower() in (".jpeg", ".jpg", ".png"))
    unlabelled = [n for n in images if n not in mapping]
    if unlabelled:
        raise DatasetError(f"{len(unlabelled)} image(s) in {str(flat)!r} have no label (e.g. {unlabelled[0]}); the "
                           f"labels file does not belong to these images")
    done = 0
    for name in progress(images, desc="sorting ImageNet val"):
        wnid = check_component(mapping[name], "wnid")
        dst_dir = out / wnid
        dst_dir.mkdir(parents=True, exist_ok=True)
        dst = dst_dir / check_component(name, "image")
        if copy:
            tmp = dst_dir / f".{name}.tmp"
            shutil.copy2(flat / name, tmp)
            os.replace(tmp, dst)
        else:
            shutil.move(str(flat / name), str(dst))
        done += 1
    already = sum(1 for _ in out.glob("*/*")) if out.is_dir() else 0
    log.info("ImageNet val: %d image(s) sorted now, %d in %s", done, already, out)
    return already
