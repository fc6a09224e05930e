"""One-line wording of operating-system errors: which path, what went wrong, what to do.

The CLI turns every ``OSError`` that reaches it into such a line (exit code 2) instead of a traceback; writers
that can check a folder before the work starts (:class:`~wiseft.run.RunContext`) raise the same words as a
:class:`~wiseft.errors.StorageError` at once, so that nothing is computed that could not be saved.
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

from .errors import StorageError

__all__ = ["describe_os_error", "writable_folder_error", "os_error_from_safetensors"]

_FULL = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}
_DENIED = {errno.EACCES, errno.EPERM, errno.EROFS}


def describe_os_error(e: OSError, where: str | os.PathLike | None = None) -> str:
    """``e`` in one line naming the path and the fix (``where``: the path when ``e`` carries none)."""
    path = e.filename if e.filename is not None else where
    path = f"{path}" if path is not None else "a file"
    if e.filename2 is not None:
        path = f"{path} -> {e.filename2}"
    reason = (e.strerror or str(e) or type(e).__name__).splitlines()[0]
    if e.errno in _FULL:
        fix = "free some disk space (or raise the quota) and run again, or choose another --out"
    elif e.errno in _DENIED:
        fix = "make it writable for this user (chmod/chown) or choose another --out"
    elif e.errno == errno.EISDIR:
        fix = "a folder stands where a file belongs: move it away"
    elif e.errno in (errno.EEXIST, errno.ENOTDIR):
        fix = "a file stands where a folder belongs: move it away or choose another --out"
    elif e.errno == errno.ENOENT:
        fix = "check that the path exists"
    else:
        fix = "check the path, its permissions and the disk"
    return f"cannot use {path}: {reason}; {fix}"


def writable_folder_error(e: OSError, folder: str | os.PathLike) -> StorageError:
    """The :class:`StorageError` for a run folder that cannot be created or written."""
    return StorageError(describe_os_error(e, Path(folder)))


_CODE = re.compile(r"(?:code:|os error)\s*(\d+)")


def os_error_from_safetensors(e: Exception, path: str | os.PathLike) -> OSError | None:
    """The ``OSError`` inside a safetensors write error (its Rust I/O error carries the errno), else ``None``."""
    m = _CODE.search(str(e))
    if type(e).__name__ != "SafetensorError" or not m:
        return None
    code = int(m.group(1))
    return OSError(code, os.strerror(code), str(path))
