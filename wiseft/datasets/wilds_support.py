"""WILDS iWildCam and FMoW through the ``wilds`` package: its splits, its metadata and its own ``eval``.

``import wilds`` starts a thread that asks PyPI whether wilds is outdated (``wilds/version.py``). On a
cluster node without internet that thread hangs or logs noise, so :func:`import_wilds` imports the package
with the optional ``outdated`` dependency hidden; wilds then skips the check, as it does when ``outdated``
is not installed. The package is imported only when a WILDS dataset is opened.

Group metrics in wilds (FMoW's per-region and per-year accuracy) call ``torch_scatter.scatter(…, reduce="mean")``,
a compiled extension that ``pip install wilds`` does not bring and that has no wheels for recent torch.
:func:`wilds_eval` runs ``dataset.eval`` with a pure-torch stand-in for that one function when the real
package is missing, and removes it again afterwards.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DatasetError

log = logging.getLogger(__name__)

__all__ = ["import_wilds", "open_wilds", "wilds_split", "wilds_eval", "WILDS_FOLDERS"]

#: The folder each WILDS dataset version lives in under the data root (and the release file wilds checks).
WILDS_FOLDERS = {"iwildcam": ("iwildcam_v2.0", "RELEASE_v2.0.txt"), "fmow": ("fmow_v1.1", "RELEASE_v1.1.txt")}


def import_wilds() -> Any:
    """``import wilds`` without its network version check."""
    if "wilds" in sys.modules:
        return sys.modules["wilds"]
    hide = "outdated" not in sys.modules
    if hide:
        sys.modules["outdated"] = None  # type: ignore[assignment]  # makes `from outdated import …` fail
    try:
        import wilds
    except ImportError as e:
        raise DatasetError(f"the WILDS datasets need the `wilds` package: pip install 'wiseft[wilds]' ({e})") from e
    finally:
        if hide and sys.modules.get("outdated", 0) is None:
            del sys.modules["outdated"]
    return wilds


def open_wilds(dataset: str, base: Path) -> Any:
    """The ``WILDSDataset`` of ``dataset`` under ``base`` (cached: ID and OOD sets share one object)."""
    if dataset not in WILDS_FOLDERS:
        raise DatasetError(f"WILDS dataset {dataset!r} is not supported; known: {', '.join(WILDS_FOLDERS)}")
    folder, release = WILDS_FOLDERS[dataset]
    data_dir = Path(base) / folder
    if not (data_dir / release).is_file():
        raise DatasetError(
            f"WILDS {dataset} not found: expected {str(data_dir)!r} with {release}, the metadata CSV and the images "
            f"(the layout `wilds` downloads). Fetch it with `wiseft data download {dataset} --root {base}`.")
    return _open_cached(dataset, str(Path(base).resolve()))


@functools.lru_cache(maxsize=4)
def _open_cached(dataset: str, base: str) -> Any:
    wilds = import_wilds()
    try:
        return wilds.get_dataset(dataset=dataset, root_dir=base, download=False)
    except (OSError, ValueError, KeyError, AssertionError) as e:
        folder = WILDS_FOLDERS[dataset][0]
        raise DatasetError(f"cannot open WILDS {dataset} in {str(Path(base) / folder)!r}: {type(e).__name__}: {e}. "
                           f"The metadata is incomplete or from another release; run `wiseft data verify {dataset} "
                           f"--root {base}` or download it again.") from e


def _paths_iwildcam(ds: Any, idx: np.ndarray) -> list[str]:
    root = Path(ds.data_dir) / "train"  # wilds keeps every iWildCam image in train/, whatever the split
    return [str(root / ds._input_array[i]) for i in idx]


def _paths_fmow(ds: Any, idx: np.ndarray) -> list[str]:
    root = Path(ds.data_dir) / "images"  # numbered by the row of rgb_metadata.csv, sequestered rows included
    return [str(root / f"rgb_img_{ds.full_idxs[i]}.png") for i in idx]


_IMAGE_PATHS = {"iwildcam": _paths_iwildcam, "fmow": _paths_fmow}


def wilds_split(dataset: str, base: Path, split: str) -> tuple[Any, list[str], np.ndarray, np.ndarray]:
    """``(wilds_dataset, files, labels, metadata)`` of one split (``train``, ``id_test``, ``test`` …)."""
    ds = open_wilds(dataset, base)
    if split not in ds.split_dict:
        raise DatasetError(f"WILDS {dataset} has no split {split!r}; splits: {', '.join(ds.split_dict)}")
    idx = np.flatnonzero(np.asarray(ds.split_array) == ds.split_dict[split])
    files = _IMAGE_PATHS[dataset](ds, idx)
    labels = np.asarray(ds.y_array)[idx].astype(np.int64)
    metadata = np.asarray(ds.metadata_array)[idx].astype(np.int64)
    return ds, files, labels, metadata


def wilds_eval(wilds_dataset: Any, y_pred: Any, y_true: Any, metadata: Any) -> dict[str, float]:
    """``wilds_dataset.eval(y_pred, y_true, metadata)[0]``, with :func:`_scatter_mean` standing in for
    ``torch_scatter`` if that is not installed."""
    with _torch_scatter_fallback():
        results, _ = wilds_dataset.eval(y_pred, y_true, metadata)
    return results


def _scatter_mean(src: Any, index: Any, dim: int = -1, out: Any = None, dim_size: int | None = None,
                  reduce: str = "sum") -> Any:
    """``torch_scatter.scatter`` for what wilds uses: a 1-d ``src``, ``reduce="mean"``, empty groups 0."""
    import torch

    if reduce != "mean" or src.dim() != 1 or out is not None:
        raise NotImplementedError("the torch_scatter stand-in only averages 1-d tensors; pip install torch-scatter")
    n = int(dim_size) if dim_size is not None else int(index.max()) + 1
    sums = torch.zeros(n, dtype=src.dtype, device=src.device).index_add_(0, index, src)
    counts = torch.zeros(n, dtype=src.dtype, device=src.device).index_add_(0, index, torch.ones_like(src))
    return sums / counts.clamp(min=1)


@contextlib.contextmanager
def _torch_scatter_fallback():
    try:
        import torch_scatter  # noqa: F401
        yield
        return
    except ImportError:
        pass
    stand_in = types.ModuleType("torch_scatter")
    stand_in.scatter = _scatter_mean  # type: ignore[attr-defined]
    sys.modules["torch_scatter"] = stand_in
    try:
        yield
    finally:
        if sys.modules.get("torch_scatter") is stand_in:
            del sys.modules["torch_scatter"]
