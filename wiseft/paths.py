"""Where wiseft keeps caches, datasets and runs.

``WISEFT_CACHE`` moves the cache (pretrained weights in ``weights/``, the world model, feature caches, the
offline world's images);
``WISEFT_DATA`` points at the folder that holds real datasets (one sub-folder per dataset).
:func:`display_path` writes a path the way notebooks and reports print it: never with the machine's folders.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir", "data_root", "default_run_dir", "repo_root", "display_path", "NOTEBOOKS_MARKER"]

#: A file that marks the repository root (the folder holding the pipeline notebooks).
NOTEBOOKS_MARKER = Path("notebooks") / "01_data.ipynb"


def cache_dir() -> Path:
    """The cache folder: ``$WISEFT_CACHE``, else ``$XDG_CACHE_HOME/wiseft``, else ``~/.cache/wiseft``."""
    env = os.environ.get("WISEFT_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "wiseft"


def data_root() -> Path:
    """The default dataset root: ``$WISEFT_DATA``, else ``<cache>/data``."""
    env = os.environ.get("WISEFT_DATA")
    return Path(env).expanduser() if env else cache_dir() / "data"


def default_run_dir(profile_name: str) -> Path:
    """``runs/<profile>`` under the current directory, the default output folder of ``wiseft run``."""
    from .io import safe_name

    return Path("runs") / safe_name(profile_name, "profile name")


def repo_root(start: str | os.PathLike | None = None) -> Path | None:
    """The repository the notebooks run in: the first of ``start`` (default: the working directory, which
    Jupyter sets to the notebook's folder) and its parents that holds ``notebooks/01_data.ipynb``; else the
    source tree wiseft is imported from, when it has one; else ``None``."""
    here = Path(start if start is not None else Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / NOTEBOOKS_MARKER).is_file():
            return folder
    source_tree = Path(__file__).resolve().parents[1]
    return source_tree if (source_tree / NOTEBOOKS_MARKER).is_file() else None


def display_path(path: str | os.PathLike) -> str:
    """A path as the notebooks print it, without the machine's folders: relative to the repository
    (``runs/mini``), else under ``$WISEFT_RUNS`` or ``$WISEFT_CACHE`` (written so), else relative to the working
    directory, else under the home folder (``~/…``); only a path outside all of these is printed whole."""
    target = Path(path).expanduser().resolve()
    places: list[tuple[Path, str]] = []
    root = repo_root()
    if root is not None:
        places.append((root, ""))
    for env in ("WISEFT_RUNS", "WISEFT_CACHE"):
        if os.environ.get(env):
            places.append((Path(os.environ[env]).expanduser().resolve(), f"${env}"))
    places += [(Path.cwd().resolve(), ""), (Path.home().resolve(), "~")]
    for base, name in places:
        try:
            rel = target.relative_to(base)
        except ValueError:
            continue
        return "/".join(part for part in (name, rel.as_posix() if rel.parts else "") if part) or "."
    return str(target)
