"""Where wiseft keeps caches, datasets and runs.

``WISEFT_CACHE`` moves the cache (pretrained weights in ``weights/``, the world model, feature caches, the
offline world's images);
``WISEFT_DATA`` points at the folder that holds real datasets (one sub-folder per dataset).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir", "data_root", "default_run_dir"]


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
