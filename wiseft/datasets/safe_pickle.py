"""Reading the two pickle-based files the paper's datasets ship, without running code from them.

CIFAR-10/100 (``cifar-10-batches-py``) and CIFAR-10.2 (``cifar102_test.npy``, an object array holding a
dict) are only distributed as pickles. A plain ``pickle.load`` would run whatever a tampered file asks for.
Here the unpickler resolves only the handful of numpy reconstructors that arrays, dtypes and scalars need
(the same idea as ``torch.load(weights_only=True)``); any other global is refused with an error, so loading
can build containers and numpy arrays and nothing else.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import DatasetError

__all__ = ["load_numpy_pickle", "load_object_npy"]


def _numpy_attr(module: str, name: str) -> Callable[[], Any]:
    def get() -> Any:
        import importlib

        return getattr(importlib.import_module(module), name)

    return get


def _codecs_encode() -> Any:
    import codecs

    return codecs.encode


# Pickles written by numpy 1.x name ``numpy.core``; numpy 2 moved it to ``numpy._core``. Map both to the objects
# of the numpy that is installed, without importing the deprecated alias.
_CORE = "numpy._core" if hasattr(np, "_core") else "numpy.core"
_ALLOWED: dict[tuple[str, str], Callable[[], Any]] = {
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _numpy_attr(f"{_CORE}.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"): _numpy_attr(f"{_CORE}.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"): _numpy_attr(f"{_CORE}.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"): _numpy_attr(f"{_CORE}.multiarray", "scalar"),
    # protocol-2 pickles (Python 2) spell bytes as codecs.encode(str, 'latin1')
    ("_codecs", "encode"): _codecs_encode,
    ("codecs", "encode"): _codecs_encode,
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def __init__(self, fh: io.BufferedIOBase, path: Path, encoding: str) -> None:
        super().__init__(fh, encoding=encoding)
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        getter = _ALLOWED.get((module, name))
        if getter is None:
            raise DatasetError(f"{str(self._path)!r} asks to load {module}.{name}; only numpy arrays, lists, dicts, "
                               f"strings and numbers are accepted from a dataset file. The file is not the "
                               f"published one: delete it and download it again.")
        return getter()


def load_numpy_pickle(path: str | Path, encoding: str = "latin1") -> Any:
    """Unpickle ``path`` allowing only builtin containers and numpy arrays (CIFAR's python batches)."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            return _NumpyOnlyUnpickler(fh, path, encoding).load()
    except DatasetError:
        raise
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError) as e:
        raise DatasetError(f"cannot read {str(path)!r}: {type(e).__name__}: {e}. The file is truncated or not the "
                           f"published one; delete it and download it again.") from e


def load_object_npy(path: str | Path) -> Any:
    """The object stored in a 0-d object ``.npy`` (what ``np.save(path, some_dict)`` writes), loaded safely."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _fortran, dtype = reader(fh)
            if dtype.hasobject:
                obj = _NumpyOnlyUnpickler(fh, path, "latin1").load()
            else:  # a plain array: no pickle involved at all
                fh.seek(0)
                return np.load(fh, allow_pickle=False)
    except DatasetError:
        raise
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError) as e:
        raise DatasetError(f"cannot read {str(path)!r}: {type(e).__name__}: {e}. The file is truncated or not the "
                           f"published one; delete it and download it again.") from e
    if isinstance(obj, np.ndarray) and obj.shape == () and shape == ():
        return obj.item()
    return obj
