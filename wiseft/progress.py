"""Progress bars that stay out of recorded notebook outputs when asked to.

``WISEFT_PROGRESS=0`` turns every bar off (the test command sets it so nbval sees stable outputs).
"""

from __future__ import annotations

import os
from typing import Iterable, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")

__all__ = ["progress", "progress_enabled"]


def progress_enabled() -> bool:
    """Whether progress bars are shown (``WISEFT_PROGRESS`` is not ``0``/``false``)."""
    return os.environ.get("WISEFT_PROGRESS", "1").lower() not in {"0", "false", "no", "off"}


def progress(iterable: Iterable[T], desc: str | None = None, total: int | None = None, **kwargs) -> Iterable[T]:
    """Wrap ``iterable`` in a tqdm bar unless bars are disabled."""
    disable = bool(kwargs.pop("disable", False)) or not progress_enabled()
    return tqdm(iterable, desc=desc, total=total, disable=disable, leave=kwargs.pop("leave", False), **kwargs)
