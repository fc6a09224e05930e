"""Exceptions raised by wiseft.

Every error a user can cause derives from :class:`WiseftError`, so scripts can catch one type, and every
message names the file, key or value at fault and what to do about it.
"""

from __future__ import annotations


class WiseftError(Exception):
    """Base class of the errors wiseft raises for bad input or a failed step."""


class ProfileError(WiseftError, ValueError):
    """A profile (YAML or ``--set`` override) is malformed or names something that does not exist."""


class DatasetError(WiseftError):
    """A dataset is missing, laid out wrongly, or holds unreadable files."""


class CheckpointError(WiseftError):
    """A checkpoint is unsafe (pickle), truncated, or does not match its sidecar."""


class IncompatibleStateError(CheckpointError, ValueError):
    """Two state dicts cannot be combined: different keys, shapes, dtypes or integer buffers."""


class NumericsError(WiseftError, FloatingPointError):
    """A loss or a weight tensor became NaN or infinite."""


class PipelineError(WiseftError):
    """A pipeline step (notebook) failed."""


class RunFolderBusy(WiseftError):
    """Another process is writing into the run folder (it holds the folder's lock)."""


class StorageError(WiseftError):
    """A file or folder cannot be written or read: permissions, a full disk, a file where a folder belongs."""
