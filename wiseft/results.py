"""The results store: tidy rows in ``<run>/results.jsonl``, read back as a DataFrame.

Each evaluation writes one JSON object per (model setting, dataset, metric). The store keeps **one row per
measurement**: a row's identity is :func:`row_key` (profile, model, method, mode, α, dataset, metric and the
setting's own knobs in ``extra``), and writing a row whose key the file already holds replaces that row in place
instead of adding a second one. The run id (a hash of the profile's settings) is not part of the key: a run folder
run again with changed settings holds the new numbers, not both. Re-executing a step on an existing run (a notebook run again, nbval over a
finished run, ``wiseft run --force``) therefore leaves the file as it was when the numbers are the same (the
old row, with its time, is kept byte for byte) and updates it in place when they differ; a table never depends
on how often a step ran.

Writes are atomic and safe between processes, under an exclusive ``flock`` of the file: rows with new keys are
encoded first and appended with a single ``write`` on a file opened with ``O_APPEND``; a batch that replaces rows
rewrites the whole file into a temporary file renamed over it (a writer that waited for the lock on the old
file notices the rename and starts again on the new one). A crash never leaves half a line, and two processes
writing at once lose nothing. A torn last line (a machine that lost power mid-write) is reported and skipped by
the loader, never parsed, and kept as it is by a rewrite; the next append starts on a new line so that it is not
glued onto the torn one.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd

from .errors import WiseftError
from .schema import is_int, is_number, is_text, loads_bounded

log = logging.getLogger(__name__)

__all__ = ["ResultRow", "ResultsStore", "load_results", "row_key", "duplicate_keys", "ROW_FIELDS", "METHODS", "MODES",
           "ROLES", "KEY_FIELDS"]

#: Column order of the store (``extra`` holds method-specific knobs such as ``lr`` or ``decay``).
ROW_FIELDS = ("run_id", "profile", "model", "pretrained", "method", "mode", "alpha", "dataset", "role", "metric",
              "value", "n", "time", "git_commit", "extra")
METHODS = ("zeroshot", "finetuned", "wiseft", "ose", "ose_prob", "fisher", "random_interp", "l2sp", "ema",
           "ema_biased", "distill", "lpft", "lc_l2sp", "variant", "kshot", "student")
MODES = ("e2e", "lc")
ROLES = ("reference", "shift", "extra", "heldout")
#: The columns that identify a measurement (with ``extra`` less :data:`_EXTRA_NOT_KEY`); ``value``, ``n``,
#: ``role``, ``run_id``, ``time`` and ``git_commit`` are what was measured, with which settings and when, not what.
KEY_FIELDS = ("profile", "model", "pretrained", "method", "mode", "alpha", "dataset", "metric")
#: ``extra`` entries that describe a measurement rather than name it: the dataset's protocol, images skipped as
#: unreadable, the hash of a baseline's inputs (a retrained baseline's new rows replace its old ones).
_EXTRA_NOT_KEY = frozenset({"protocol", "skipped_images", "fingerprint"})
#: Fields that may differ between two writes of the same measurement without it counting as a change.
_PROVENANCE = ("time", "git_commit")

try:  # POSIX advisory locks; on other systems O_APPEND single writes are the guarantee
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None


@dataclass
class ResultRow:
    """One measurement. ``value`` is a fraction in [0, 1] (accuracy, macro-F1, …)."""

    run_id: str
    profile: str
    model: str
    pretrained: str | None
    method: str
    mode: str | None
    alpha: float | None
    dataset: str
    role: str
    metric: str
    value: float
    n: int
    time: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    git_commit: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        """Raise :class:`WiseftError` for a row that would corrupt later analysis."""
        if self.method not in METHODS:
            raise WiseftError(f"result row: unknown method {self.method!r}; expected one of {', '.join(METHODS)}")
        if self.mode is not None and self.mode not in MODES:
            raise WiseftError(f"result row: unknown mode {self.mode!r}; expected one of {', '.join(MODES)}")
        if self.role not in ROLES:
            raise WiseftError(f"result row: unknown role {self.role!r}; expected one of {', '.join(ROLES)}")
        if not (isinstance(self.value, (int, float)) and math.isfinite(self.value) and 0.0 <= self.value <= 1.0):
            raise WiseftError(f"result row for {self.dataset}/{self.metric}: value {self.value!r} is not a fraction in [0, 1]")
        if self.alpha is not None and not 0.0 <= self.alpha <= 1.0:
            raise WiseftError(f"result row for {self.dataset}: alpha {self.alpha!r} outside [0, 1]")


def row_key(row: ResultRow | Mapping[str, Any]) -> str:
    """The identity of a measurement: :data:`KEY_FIELDS` and the naming entries of ``extra``, as one string.

    Two rows with the same key measure the same thing (the same model setting of a profile on the same dataset
    and metric); the store keeps only the latest of them.
    """
    record = asdict(row) if isinstance(row, ResultRow) else row
    extra = record.get("extra")
    extra = {k: v for k, v in extra.items() if k not in _EXTRA_NOT_KEY} if isinstance(extra, Mapping) else extra
    alpha = record.get("alpha")
    alpha = float(alpha) if _is_number(alpha) else alpha  # 1 and 1.0 are the same α
    return json.dumps([*(record.get(k) for k in KEY_FIELDS if k != "alpha"), alpha, extra], sort_keys=True,
                      separators=(",", ":"), default=str)


def duplicate_keys(path: str | os.PathLike) -> list[str]:
    """The keys (:func:`row_key`) held by more than one row of a results file: empty for a sound file."""
    seen: dict[str, int] = {}
    for _, record in _read_records(Path(path)):
        if isinstance(record, dict):
            key = row_key(record)
            seen[key] = seen.get(key, 0) + 1
    return [k for k, count in seen.items() if count > 1]


def _read_records(path: Path, data: bytes | None = None) -> list[tuple[bytes, Any]]:
    """Every line of a results file (with its newline) and its parsed JSON (``None`` when it is not JSON)."""
    if data is None:
        if not path.exists():
            return []
        data = path.read_bytes()
    out = []
    for line in data.splitlines(keepends=True):
        if not line.strip():
            continue
        try:
            out.append((line, json.loads(line)))
        except (json.JSONDecodeError, UnicodeDecodeError):
            out.append((line, None))
    return out


def _same_measurement(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether two rows hold the same numbers (they may differ in when and at which commit they were written)."""
    strip = lambda r: {k: v for k, v in r.items() if k not in _PROVENANCE}  # noqa: E731
    return strip(old) == strip(new)


class ResultsStore:
    """JSONL file of :class:`ResultRow` s, one row per measurement (:func:`row_key`).

    Example:
        >>> store = ResultsStore("runs/mini/results.jsonl")
        >>> store.append([row])            # doctest: +SKIP
        >>> df = store.load()               # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        #: the file's whole lines as this store last read them, and their keys
        self._seen: tuple[bytes, set[str]] = (b"", set())

    def append(self, rows: Iterable[ResultRow | Mapping[str, Any]]) -> int:
        """Validate and write rows atomically; return how many measurements (distinct keys) the batch held.

        A row whose key (:func:`row_key`) the file already holds replaces that row in place (all of them, should
        an older file hold several); the old row is kept untouched when its numbers are the same. Rows with new
        keys are appended. Within one batch, the last of several rows with one key wins.
        """
        records: dict[str, dict[str, Any]] = {}
        for row in rows:
            if not isinstance(row, ResultRow):
                row = ResultRow(**dict(row))
            row.validate()
            record = json.loads(json.dumps(asdict(row), separators=(",", ":")))  # as it will read back
            key = row_key(record)
            if key in records:
                log.warning("%s: two rows of one batch measure %s; keeping the later", self.path, key)
            records[key] = record
        if not records:
            return 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    # A writer that replaced the file while this one waited for the lock: start again on the new one.
                    if os.path.exists(self.path) and os.fstat(fd).st_ino == os.stat(self.path).st_ino:
                        self._write_locked(fd, records)
                        return len(records)
                finally:
                    if fcntl is not None:
                        fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    def _write_locked(self, fd: int, records: dict[str, dict[str, Any]]) -> None:
        data = _read_fd(fd)
        held = self._held_keys(data)
        if not any(key in held for key in records):
            self._append_locked(fd, data, [records[key] for key in records])
            return
        existing = _read_records(self.path, data)
        lines, placed = [], set()
        for raw, old in existing:
            key = row_key(old) if isinstance(old, dict) else None
            if key not in records:
                lines.append(raw if raw.endswith(b"\n") else raw + b"\n")
            elif key not in placed:  # the first row of the key takes the new numbers; later copies go
                placed.add(key)
                lines.append(raw if _same_measurement(old, records[key]) else _encode(records[key]))
        lines += [_encode(records[key]) for key in records if key not in placed]
        payload = b"".join(lines)
        if payload == data:
            return  # every row was already there, unchanged: nothing to write
        from .io import atomic_write_bytes

        mode = os.fstat(fd).st_mode & 0o777
        atomic_write_bytes(self.path, payload)
        os.chmod(self.path, mode)
        log.info("%s: %d row(s) replaced in place", self.path, len(placed))

    def _held_keys(self, data: bytes) -> set[str]:
        """The keys of the rows in ``data``; only lines after the part read last time are parsed again, so a
        process that appends many small batches does not parse the whole file each time."""
        prefix, keys = self._seen
        if not data.startswith(prefix):  # rewritten by another writer since
            prefix, keys = b"", set()
        whole = data.rfind(b"\n") + 1  # only whole lines are remembered (a torn last line may be completed)
        keys = keys | {row_key(r) for _, r in _read_records(self.path, data[len(prefix):whole]) if isinstance(r, dict)}
        self._seen = (data[:whole], keys)
        return keys | {row_key(r) for _, r in _read_records(self.path, data[whole:]) if isinstance(r, dict)}

    def _append_locked(self, fd: int, data: bytes, records: list[dict[str, Any]]) -> None:
        payload = b"".join(_encode(r) for r in records)
        if data and not data.endswith(b"\n"):
            # A torn last line (power loss mid-write): end it, or these rows would be glued onto it and skipped
            # with it by the loader.
            log.warning("%s: ends in an incomplete line; starting the new rows on a line of their own", self.path)
            payload = b"\n" + payload
        written = os.write(fd, payload)
        while written < len(payload):  # a short write on a full pipe or disk: finish it under the lock
            written += os.write(fd, payload[written:])
        os.fsync(fd)

    def load(self) -> pd.DataFrame:
        """All rows as a DataFrame (see :func:`load_results`)."""
        return load_results(self.path)


#: The loader's schema of a row: field -> (check, what it must be). Rows are JSON from a file anyone may edit;
#: one that fails is skipped with a warning, so that a wrong type never reaches a table or a figure.
_TEXT_FIELDS = ("run_id", "profile", "model", "pretrained", "mode", "role", "time", "git_commit")
_ROW_SCHEMA: dict[str, tuple[Any, str]] = {
    "method": (lambda v: is_text(v, 100), "a method name"),
    "dataset": (lambda v: is_text(v, 200), "a dataset name"),
    "metric": (lambda v: is_text(v, 100), "a metric name"),
    "value": (lambda v: is_number(v) and 0.0 <= v <= 1.0, "a fraction in [0, 1]"),
    "alpha": (lambda v: v is None or (is_number(v) and 0.0 <= v <= 1.0), "null or a number in [0, 1]"),
    "n": (lambda v: v is None or is_int(v, 0), "null or a whole number of images >= 0"),
    "extra": (lambda v: v is None or isinstance(v, dict), "null or a mapping"),
    **{k: (lambda v: v is None or is_text(v, 4096, empty=True), "null or a string") for k in _TEXT_FIELDS},
}
_REQUIRED = ("method", "dataset", "metric", "value")


def _read_fd(fd: int) -> bytes:
    """The whole content of an open file (read from its start; ``O_APPEND`` writes still go to the end)."""
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 1 << 24):
        chunks.append(chunk)
    return b"".join(chunks)


def _encode(record: Mapping[str, Any]) -> bytes:
    return (json.dumps(record, sort_keys=False, separators=(",", ":")) + "\n").encode("utf-8")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _row_problem(record: Any) -> str | None:
    """Why a parsed line cannot be a row (every row the store writes passed :meth:`ResultRow.validate`)."""
    if not isinstance(record, dict):
        return f"a JSON {type(record).__name__}, not an object"
    missing = [k for k in _REQUIRED if k not in record]
    if missing:
        return f"no {', '.join(missing)}"
    for key, (ok, expected) in _ROW_SCHEMA.items():
        if key in record and not ok(record[key]):
            shown = repr(record[key])
            return f"{key} {shown if len(shown) <= 60 else shown[:57] + '...'} is not {expected}"
    return None


def load_results(path: str | os.PathLike) -> pd.DataFrame:
    """Read a results file into a DataFrame with the columns of :data:`ROW_FIELDS`.

    A missing file gives an empty frame. Lines are read one by one, and a line that cannot be a row is skipped
    with a warning naming the file, the line number and why, while every good row is kept: a line that is not
    UTF-8 or not valid JSON (a torn last line after a power loss, a damaged disk block), JSON nested absurdly
    deep, or JSON that breaks the row schema (:data:`_ROW_SCHEMA`: types and bounds of every field; a damaged or
    hand-edited file).
    """
    path = Path(path)
    records: list[dict[str, Any]] = []
    if path.exists():
        with open(path, "rb") as fh:
            for lineno, raw in enumerate(fh, start=1):
                if not raw.strip():
                    continue
                try:
                    record = loads_bounded(raw.decode("utf-8"))
                except UnicodeDecodeError:
                    log.warning("%s:%d: skipping a line that is not UTF-8 text", path, lineno)
                    continue
                except ValueError as e:
                    log.warning("%s:%d: skipping a line that is not complete JSON (%s)", path, lineno,
                                str(e).splitlines()[0][:120])
                    continue
                problem = _row_problem(record)
                if problem:
                    log.warning("%s:%d: skipping a line that is not a result row (%s)", path, lineno, problem)
                    continue
                records.append(record)
    frame = pd.DataFrame.from_records(records, columns=list(ROW_FIELDS))
    if not frame.empty:
        frame["value"] = frame["value"].astype(float)
        frame["alpha"] = pd.to_numeric(frame["alpha"], errors="coerce")
    return frame
