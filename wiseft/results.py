"""The results store: tidy rows appended to ``<run>/results.jsonl``, read back as a DataFrame.

Each evaluation appends one JSON object per (model setting, dataset, metric). Appends are atomic: each batch
of rows is encoded first and written with a single ``write`` on a file opened with ``O_APPEND``, under an
exclusive ``flock``, so a crash never leaves half a line and two processes appending at once lose nothing.
A torn last line (a machine that lost power mid-write) is reported and skipped by the loader, never parsed,
and the next append starts on a new line so that it is not glued onto the torn one.
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

__all__ = ["ResultRow", "ResultsStore", "load_results", "ROW_FIELDS", "METHODS", "MODES", "ROLES"]

#: Column order of the store (``extra`` holds method-specific knobs such as ``lr`` or ``decay``).
ROW_FIELDS = ("run_id", "profile", "model", "pretrained", "method", "mode", "alpha", "dataset", "role", "metric",
              "value", "n", "time", "git_commit", "extra")
METHODS = ("zeroshot", "finetuned", "wiseft", "ose", "ose_prob", "fisher", "random_interp", "l2sp", "ema",
           "ema_biased", "distill", "lpft", "lc_l2sp", "variant", "kshot", "student")
MODES = ("e2e", "lc")
ROLES = ("reference", "shift", "extra", "heldout")

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


class ResultsStore:
    """Append-only JSONL file of :class:`ResultRow` s.

    Example:
        >>> store = ResultsStore("runs/mini/results.jsonl")
        >>> store.append([row])            # doctest: +SKIP
        >>> df = store.load()               # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def append(self, rows: Iterable[ResultRow | Mapping[str, Any]]) -> int:
        """Validate and append rows in one atomic write; return how many were written."""
        lines = []
        for row in rows:
            if not isinstance(row, ResultRow):
                row = ResultRow(**dict(row))
            row.validate()
            lines.append(json.dumps(asdict(row), sort_keys=False, separators=(",", ":")))
        if not lines:
            return 0
        payload = ("\n".join(lines) + "\n").encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                size = os.fstat(fd).st_size
                if size and hasattr(os, "pread") and os.pread(fd, 1, size - 1) != b"\n":
                    # A torn last line (power loss mid-write): end it, or these rows would be glued onto it
                    # and skipped with it by the loader.
                    log.warning("%s: ends in an incomplete line; starting the new rows on a line of their own",
                                self.path)
                    payload = b"\n" + payload
                written = os.write(fd, payload)
                while written < len(payload):  # a short write on a full pipe or disk: finish it under the lock
                    written += os.write(fd, payload[written:])
                os.fsync(fd)
            finally:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
        return len(lines)

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
