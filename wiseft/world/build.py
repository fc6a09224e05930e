"""Writing the world to disk: ImageFolder trees, a caption table, a manifest, and a content-hash cache.

Layout of a built world (``<cache>/world/<hash>/``)::

    world.json                                   manifest: spec, hash, counts, datasets
    world-pretrain/captions.tsv                  open_clip CsvDataset format: filepath<TAB>title
    world-pretrain/images/<block>/<index>.png
    world-print/{train,val,test}/<k>_<classname>/<index>.png
    world-<shift>/test/<k>_<classname>/<index>.png

Class folders are ``0_zero`` … ``9_nine`` so that sorting them (as ``torchvision.datasets.ImageFolder`` does)
gives the label order. The hash covers the generator settings, the generator's source code and the versions of
the packages that draw the pixels, so a change to any of them builds a new world instead of reusing a stale one.
A world is built in a temporary folder and renamed into place, so an interrupted build never looks complete.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import multiprocessing
import os
import shutil
import time
import uuid
import zlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import DatasetError
from ..io import atomic_write_json, atomic_write_text, safe_name, stable_hash
from ..progress import progress
from .captions import caption
from .recipes import SHIFTS, recipe
from .render import DIGIT_WORDS, render
from .worlds import spec_from_mapping

log = logging.getLogger(__name__)

__all__ = ["WorldSpec", "world_hash", "build_world", "world_dir", "class_dir_names", "dataset_name",
           "MANIFEST", "PRETRAIN_DATASET", "REFERENCE_DATASET"]

#: bump when the layout or the meaning of a setting changes without a source change in the generator
GENERATOR_VERSION = 1
MANIFEST = "world.json"
PRETRAIN_DATASET = "world-pretrain"
REFERENCE_DATASET = "world-print"
#: modules whose source text is part of the content hash
_HASHED_MODULES = ("render.py", "recipes.py", "captions.py", "build.py")


@dataclass(frozen=True)
class WorldSpec:
    """Generator settings of one world. Counts are totals per split, spread evenly over the ten digits."""

    #: the seed of every image (each image draws from its own generator seeded by (seed, dataset, index)).
    seed: int = 0
    #: side of the square images, in pixels.
    image_size: int = 32
    #: image–caption pairs of the broad pretraining set.
    pretrain_pairs: int = 30000
    #: reference ("world-print") images in the fine-tuning, held-out and test splits.
    reference_train: int = 6000
    reference_val: int = 1000
    reference_test: int = 1000
    #: test images of each shift.
    shift_test: int = 1000
    #: the shifts to draw (names from ``wiseft.world.recipes.SHIFTS``).
    shifts: tuple[str, ...] = SHIFTS

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str = "world spec") -> "WorldSpec":
        """Build from a mapping (YAML), rejecting unknown keys and shifts with the lists of known ones."""
        spec = spec_from_mapping(cls, raw, where, shifts=tuple)
        bad = [s for s in spec.shifts if s not in SHIFTS]
        if bad:
            raise ValueError(f"{where}: unknown shift(s) {bad}; known shifts: {list(SHIFTS)}")
        return spec

    def splits(self) -> dict[str, dict[str, int]]:
        """``{dataset: {split: count}}`` of the classification datasets."""
        out = {REFERENCE_DATASET: {"train": self.reference_train, "val": self.reference_val,
                                   "test": self.reference_test}}
        for s in self.shifts:
            out[dataset_name(s)] = {"test": self.shift_test}
        return out


def dataset_name(shift: str) -> str:
    """Registry name of a shift dataset (``"colour"`` → ``"world-colour"``)."""
    return f"world-{shift}"


def class_dir_names() -> list[str]:
    """Folder names of the ten classes, in label order (``0_zero`` … ``9_nine``)."""
    return [f"{k}_{safe_name(w, 'class name')}" for k, w in enumerate(DIGIT_WORDS)]


def _code_digest() -> str:
    digest = hashlib.sha256()
    pkg = resources.files("wiseft.world")
    for name in _HASHED_MODULES:
        digest.update(name.encode())
        digest.update(pkg.joinpath(name).read_bytes())
    return digest.hexdigest()[:16]


def _library_versions() -> dict[str, str]:
    import matplotlib
    import PIL
    import sklearn

    return {"pillow": PIL.__version__, "matplotlib": matplotlib.__version__, "scikit-learn": sklearn.__version__,
            "numpy": np.__version__}


def world_hash(spec: WorldSpec) -> str:
    """Content hash of a world: settings, generator source, generator version and drawing libraries."""
    return stable_hash({"spec": dataclasses.asdict(spec), "code": _code_digest(), "version": GENERATOR_VERSION,
                        "libraries": _library_versions()})


def world_dir(spec: WorldSpec, root: str | os.PathLike | None = None) -> Path:
    """Where the world of ``spec`` lives: ``<root or cache>/world/<hash>``."""
    from ..paths import cache_dir

    base = Path(root) if root is not None else cache_dir() / "world"
    return base / world_hash(spec)


# ---------------------------------------------------------------------------------------------- drawing
def _rng(seed: int, dataset: str, index: int) -> np.random.Generator:
    """The generator of one image: independent of build order and of the number of worker processes."""
    return np.random.default_rng([seed, zlib.crc32(dataset.encode()), index])


def _jobs(spec: WorldSpec, block: int = 500) -> list[tuple[str, str, str, int, int]]:
    """``(dataset, split, recipe, start, stop)`` blocks covering every image of the world."""
    plan = [(PRETRAIN_DATASET, "train", "pretrain", spec.pretrain_pairs)]
    for split, n in spec.splits()[REFERENCE_DATASET].items():
        plan.append((REFERENCE_DATASET, split, "reference", n))
    for s in spec.shifts:
        plan.append((dataset_name(s), "test", s, spec.shift_test))
    return [(ds, split, rec, lo, min(n, lo + block)) for ds, split, rec, n in plan for lo in range(0, n, block)]


def _draw_block(args: tuple[Path, WorldSpec, str, str, str, int, int]) -> tuple[str, str, int, list[tuple[str, str]]]:
    """Draw and write one block of images; return the pretraining rows (path, caption) it produced."""
    tmp, spec, ds, split, rec, lo, hi = args
    sample = recipe(rec)
    classes = class_dir_names()
    rows = []
    for i in range(lo, hi):
        # the split is part of the stream name, so train and test images of a dataset never coincide
        rng = _rng(spec.seed, f"{ds}/{split}", i)
        digit = i % 10
        look = sample(rng, digit)
        pixels = render(look, rng, spec.image_size)
        if ds == PRETRAIN_DATASET:
            rel = Path(ds) / "images" / f"{i // 1000:03d}" / f"{i:06d}.png"
            rows.append((rel.relative_to(ds).as_posix(), caption(look, rng)))
        else:
            rel = Path(ds) / split / classes[digit] / f"{i:06d}.png"
        out = tmp / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(out, format="PNG", optimize=False, compress_level=6)
    return ds, split, lo, rows


def _draw_all(tmp: Path, spec: WorldSpec, workers: int) -> list[tuple[str, str]]:
    jobs = [(tmp, spec, *job) for job in _jobs(spec)]
    if workers > 1:
        ctx = multiprocessing.get_context("spawn" if os.name == "nt" else "fork")
        with ctx.Pool(workers) as pool:
            done = list(progress(pool.imap_unordered(_draw_block, jobs), desc="drawing the world", total=len(jobs)))
    else:
        done = [_draw_block(job) for job in progress(jobs, desc="drawing the world")]
    done.sort(key=lambda r: (r[0], r[1], r[2]))
    return [row for ds, _, _, rows in done if ds == PRETRAIN_DATASET for row in rows]


def _tsv_field(text: str) -> str:
    if "\t" in text or "\n" in text:
        raise DatasetError(f"caption {text!r} contains a tab or newline and cannot go into captions.tsv")
    return text


def build_world(spec: WorldSpec, root: str | os.PathLike | None = None, workers: int = 1) -> Path:
    """Draw the world of ``spec`` unless it is cached; return its folder.

    Args:
        spec: generator settings.
        root: folder holding built worlds (default ``<cache>/world``).
        workers: processes drawing images (the images do not depend on it).

    Returns:
        The folder of the complete world (it holds ``world.json``).

    Raises:
        DatasetError: if the cached folder exists but is not a complete world.
    """
    final = world_dir(spec, root)
    if (final / MANIFEST).is_file():
        log.debug("reusing the offline world at %s", final)
        return final
    if final.exists():
        raise DatasetError(f"{final} exists but has no {MANIFEST}: it is not a complete world; delete it and rerun")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".tmp-{final.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    n_images = spec.pretrain_pairs + sum(sum(s.values()) for s in spec.splits().values())
    log.info("building the offline world (%d images, seed %d) in %s; this happens once per setting",
             n_images, spec.seed, final)
    start = time.perf_counter()
    try:
        tmp.mkdir()
        rows = _draw_all(tmp, spec, max(1, workers))
        table = "filepath\ttitle\n" + "".join(f"{p}\t{_tsv_field(c)}\n" for p, c in rows)
        atomic_write_text(tmp / PRETRAIN_DATASET / "captions.tsv", table)
        manifest = {"format": "wiseft-world", "hash": final.name, "spec": dataclasses.asdict(spec),
                    "code": _code_digest(), "generator_version": GENERATOR_VERSION,
                    "libraries": _library_versions(), "classnames": list(DIGIT_WORDS),
                    "class_dirs": class_dir_names(), "pretrain_pairs": len(rows),
                    "datasets": spec.splits(), "seconds": round(time.perf_counter() - start, 1)}
        atomic_write_json(tmp / MANIFEST, manifest)
        try:
            os.rename(tmp, final)  # atomic: the world appears complete or not at all
        except OSError:
            if not (final / MANIFEST).is_file():
                raise
            log.info("another process finished the same world first; using it")
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    log.info("built the offline world in %.0f s: %s", time.perf_counter() - start, final)
    return final
