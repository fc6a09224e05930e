"""The run-folder lock, and temporaries that only their owner removes.

Every writer of a run folder (``wiseft run``, every batch command, a notebook through :class:`~wiseft.run.RunContext`)
holds an exclusive ``flock`` on ``<run>/.wiseft-run.lock`` while it works. The lock dies with its process, so a
killed run never blocks the next one. The lock file records who holds it, so that a refused writer can say which
process to wait for.

Within one process the lock is re-entrant (several ``RunContext`` objects on one folder share it). Processes that
``wiseft run`` starts (the notebooks' kernels) inherit its permission through ``$WISEFT_RUN_LOCK``, which names the
folder and a random token also written into the lock file: a child whose token matches the holder's works under
the parent's lock instead of being refused by it.

Temporaries are named after their owner (:func:`private_name`) and :func:`is_stale` tells whether the process that
made one is gone, so cleaning up never removes another process's live file.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import re
import sys
import tempfile
import threading
import uuid
from pathlib import Path

from .errors import RunFolderBusy
from .schema import loads_bounded

log = logging.getLogger(__name__)

__all__ = ["LOCK_NAME", "LOCK_ENV", "RunFolderBusy", "acquire", "release", "run_folder_lock", "private_name",
           "owner_pid", "is_stale", "pid_alive"]

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no run-folder lock
    fcntl = None

LOCK_NAME = ".wiseft-run.lock"
LOCK_ENV = "WISEFT_RUN_LOCK"

_guard = threading.Lock()
_held: dict[Path, list] = {}   # resolved run folder -> [lock file or None (inherited), holds, token or None]


def _describe_self() -> str:
    argv0 = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    if argv0 in ("__main__.py", "wiseft") and len(sys.argv) > 1:
        return " ".join(["wiseft", *[a for a in sys.argv[1:] if not a.startswith("-")][:1]])
    if "ipykernel" in argv0:
        return "a Jupyter kernel (notebook)"
    return argv0


def _holder(path: Path) -> str:
    try:
        info = loads_bounded(path.read_bytes()[:4096])
        return f"pid {int(info['pid'])} ({str(info['what'])[:80]}, since {str(info['since'])[:32]})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


def _inherited(folder: Path) -> bool:
    """Whether the process that started this one holds the lock of ``folder`` (or of a folder above it)."""
    value = os.environ.get(LOCK_ENV, "")
    parent_dir, _, token = value.rpartition("\n")
    if not parent_dir or not token:
        return False
    parent = Path(parent_dir)
    if folder != parent and parent not in folder.parents:
        return False
    try:
        info = loads_bounded((parent / LOCK_NAME).read_bytes()[:4096])
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and info.get("token") == token


def acquire(run_dir: str | os.PathLike, what: str | None = None) -> Path:
    """Take the lock of ``run_dir`` (creating the folder) for this process; return the resolved folder.

    Raises:
        RunFolderBusy: another process holds it; the message names the holder and what to do.
        OSError: the folder cannot be created or written (the CLI words it, naming the path).
    """
    folder = Path(run_dir).resolve()
    with _guard:
        if folder in _held:
            _held[folder][1] += 1
            return folder
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):  # a read-only folder or mount fails here, before any work
            pass
        lock_path = folder / LOCK_NAME
        fh = open(lock_path, "a+", encoding="utf-8")  # also proves the folder is writable, before any work
        if fcntl is not None:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.close()
                if _inherited(folder):
                    _held[folder] = [None, 1, None]
                    return folder
                raise RunFolderBusy(f"run folder {folder} is in use by {_holder(lock_path)}; wait for it to finish, "
                                    "or use another run folder (--out)") from None
        token = uuid.uuid4().hex
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"pid": os.getpid(), "what": what or _describe_self(), "token": token,
                             "since": _dt.datetime.now().isoformat(timespec="seconds")}))
        fh.flush()
        _held[folder] = [fh, 1, token]
        return folder


def release(run_dir: str | os.PathLike) -> None:
    """Give back one hold of the lock of ``run_dir``; the last one unlocks it."""
    folder = Path(run_dir).resolve()
    with _guard:
        entry = _held.get(folder)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] <= 0:
            del _held[folder]
            if entry[0] is not None:
                entry[0].close()  # closing the file drops the flock


class run_folder_lock:
    """``with run_folder_lock(run_dir):`` hold the lock; children started inside may write the folder too."""

    def __init__(self, run_dir: str | os.PathLike, what: str | None = None):
        self.run_dir, self.what = run_dir, what

    def __enter__(self) -> Path:
        self.folder = acquire(self.run_dir, self.what)
        entry = _held[self.folder]
        self._saved_env = os.environ.get(LOCK_ENV)
        if entry[2] is not None:  # this process holds the flock itself: let the processes it starts share it
            os.environ[LOCK_ENV] = f"{self.folder}\n{entry[2]}"
        return self.folder

    def __exit__(self, *exc) -> None:
        if self._saved_env is None:
            os.environ.pop(LOCK_ENV, None)
        else:
            os.environ[LOCK_ENV] = self._saved_env
        release(self.folder)


# ------------------------------------------------------------------------------------------ temporaries
_OWNER_RE = re.compile(r"-pid(\d+)-[0-9a-f]{8}(?:\.|$)")


def private_name(stem: str) -> str:
    """``<stem>-pid<pid>-<random>``: a temporary's name that no other process (or thread) can choose."""
    return f"{stem}-pid{os.getpid()}-{uuid.uuid4().hex[:8]}"


def owner_pid(name: str) -> int | None:
    """The pid recorded in a :func:`private_name`, or ``None`` for a name without one."""
    m = _OWNER_RE.search(name)
    return int(m.group(1)) if m else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def is_stale(name: str) -> bool:
    """Whether a temporary called ``name`` was left by a process that no longer runs (so it may be removed).

    A name without an owner (an older wiseft's) counts as stale only when its process cannot be known; callers
    hold the run-folder lock, so no live writer of this version can own it.
    """
    pid = owner_pid(name)
    if pid is None:
        return True
    return pid != os.getpid() and not pid_alive(pid)
