"""Plain readers of the files datasets come with: text lists, JSON objects, timm's packaged class lists.

They import nothing else of :mod:`wiseft.datasets`, so every module of the package can use them
(:mod:`.sources` re-exports them for the registry's list sources).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ..errors import DatasetError
from ..schema import loads_bounded

__all__ = ["METADATA_DIR", "read_json_object", "read_lines", "timm_info_file"]

#: Lists that ship with wiseft (``package:<file>`` sources).
METADATA_DIR = Path(__file__).parent / "metadata"


def read_lines(path: Path, what: str = "list") -> list[str]:
    """Non-empty, non-comment lines of a UTF-8 text file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"cannot read the {what} file {str(path)!r}: {e}") from e
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def read_json_object(path: Path, what: str = "file") -> dict:
    """A UTF-8 JSON file that must hold an object (metadata files shipped with datasets)."""
    try:
        data = loads_bounded(Path(path).read_bytes())
    except (OSError, ValueError) as e:
        raise DatasetError(f"cannot read {what} {str(path)!r}: {e}") from e
    if not isinstance(data, dict):
        raise DatasetError(f"{what} {str(path)!r} must hold a JSON object")
    return data


def timm_info_file(filename: str) -> Path:
    """Path of a file in timm's packaged ``data/_info`` folder, found without importing timm."""
    spec = importlib.util.find_spec("timm")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError(f"timm is not installed; it provides {filename} (pip install timm)")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "_info" / filename
    if not path.is_file():
        raise DatasetError(f"timm's packaged file data/_info/{filename} is missing from {path.parent} "
                           f"(timm >= 0.9.16 ships it)")
    return path
