"""Small file-system helpers: atomic writes, safe names, content hashes and the source tree's git commit.

Everything a user may read later is written to a temporary file in the destination folder and renamed into
place, so a crash or a kill never leaves a half-written file that looks complete.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Iterator

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "atomic_path",
    "safe_name",
    "safe_join",
    "sha256_file",
    "stable_hash",
    "git_commit",
]

_SAFE_CHARS = re.compile(r"[^A-Za-z0-9._+-]+")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds.

    Use it for writers that insist on a file name (``safetensors.torch.save_file``, ``fig.savefig``).
    The temporary file keeps the destination's suffix unless ``suffix`` is given, so writers that pick a
    format from the extension still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=(suffix if suffix is not None else path.suffix) + ".tmp", dir=path.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically and return the path."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> Path:
    """Write ``obj`` as JSON (sorted keys, trailing newline) atomically and return the path."""
    return atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=True, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):  # numpy scalars and arrays
        return obj.tolist()
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def safe_name(name: str, what: str = "name") -> str:
    """Turn a user-supplied string (class name, dataset name, run id) into one safe path component.

    Separators and ``..`` can never survive, so a name cannot climb out of the folder it is joined to.

    Raises:
        ValueError: if nothing printable is left.
    """
    cleaned = _SAFE_CHARS.sub("_", str(name)).strip("._")
    if not cleaned:
        raise ValueError(f"{what} {name!r} has no characters usable in a file name")
    return cleaned


def safe_join(root: str | os.PathLike, *parts: str) -> Path:
    """Join ``parts`` under ``root`` and refuse any result that escapes ``root``.

    Raises:
        ValueError: naming the offending part when the joined path leaves ``root``.
    """
    root_path = Path(root).resolve()
    candidate = root_path.joinpath(*parts).resolve()
    if candidate != root_path and root_path not in candidate.parents:
        raise ValueError(f"path {os.path.join(*parts)!r} escapes the folder {str(root_path)!r}")
    return candidate


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def stable_hash(obj: Any, length: int = 16) -> str:
    """Short hex hash of a JSON-serialisable object, independent of dict order; used as a cache key."""
    payload = json.dumps(obj, sort_keys=True, default=_json_default, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:length]


@functools.lru_cache(maxsize=1)
def git_commit() -> str:
    """The commit of the wiseft source tree (``-dirty`` when it has changes), or the package version."""
    from ._version import __version__

    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"], cwd=here,
                             capture_output=True, text=True, timeout=10, check=True)
        return out.stdout.strip() or f"v{__version__}"
    except (OSError, subprocess.SubprocessError):
        return f"v{__version__}"
