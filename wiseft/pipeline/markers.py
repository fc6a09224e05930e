"""Done-markers: ``<run>/steps/<step>.json``, written last and atomically when a step succeeds.

A marker holds the step's *fingerprint*: a hash of the resolved profile, the code cells of the notebook and the
markers of the steps upstream of it, and the size, modification time and SHA-256 of every file the step produced.
A step is skipped when its marker's fingerprint equals the current one, the executed notebook is there, and every
output is still the file it recorded: same size and, unless its modification time is unchanged too, same hash
(a copied run folder keeps its outputs; a truncated or replaced checkpoint means redo the step). Because a dependency's
marker changes each time that step runs, rerunning a step reruns everything downstream of it.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import stat
import uuid
from pathlib import Path
from typing import Any, Mapping

from ..io import atomic_write_json, sha256_file, stable_hash
from ..schema import is_int, loads_bounded

log = logging.getLogger(__name__)

__all__ = ["notebook_code_hash", "marker_path", "read_marker", "write_marker", "remove_marker", "fingerprint",
           "is_up_to_date", "file_record"]

MARKER_FORMAT = 1


def marker_path(steps_dir: Path, step: str) -> Path:
    return Path(steps_dir) / f"{step}.json"


def read_marker(steps_dir: Path, step: str) -> dict[str, Any] | None:
    """The marker of ``step``, or ``None`` when there is none or it cannot be read (then the step reruns)."""
    path = marker_path(steps_dir, step)
    if not path.is_file():
        return None
    try:
        marker = loads_bounded(path.read_bytes())
    except (OSError, ValueError) as e:  # ValueError: not JSON, not UTF-8 at all, or nested absurdly deep
        log.warning("%s: unreadable done-marker (%s); the step will run again", path, e)
        return None
    if not isinstance(marker, dict) or marker.get("format") != MARKER_FORMAT:
        return None
    outputs = marker.get("outputs", [])
    files = marker.get("files", {})
    if not (isinstance(marker.get("fingerprint"), str) and isinstance(marker.get("notebook", ""), str)
            and isinstance(outputs, list) and all(_inside(o) for o in outputs)
            and isinstance(files, dict) and all(_file_record_ok(k, v) for k, v in files.items())):
        log.warning("%s: damaged done-marker; the step will run again", path)
        return None
    return marker


def _inside(rel: Any) -> bool:
    """A path relative to the run folder that stays in it (a marker must not send the checks elsewhere)."""
    return (isinstance(rel, str) and len(rel) <= 1000 and not Path(rel).is_absolute()
            and ".." not in Path(rel).parts)


def _file_record_ok(rel: Any, record: Any) -> bool:
    return (_inside(rel) and isinstance(record, dict) and is_int(record.get("size"), 0)
            and is_int(record.get("mtime_ns"), 0) and isinstance(record.get("sha256"), str)
            and len(record["sha256"]) == 64)


def file_record(path: Path) -> dict[str, Any]:
    """What a marker remembers of an output: size, modification time (ns) and SHA-256."""
    st = Path(path).stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256_file(path)}


def _changed(path: Path, record: Mapping[str, Any]) -> str | None:
    """Why the file at ``path`` is no longer the one ``record`` describes, or ``None``."""
    try:
        st = path.stat()
    except OSError:
        return "is missing"
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file"
    if st.st_size != record["size"]:
        return f"changed size ({record['size']} -> {st.st_size} bytes): damaged or replaced"
    if st.st_mtime_ns != record["mtime_ns"] and sha256_file(path) != record["sha256"]:
        return "changed content (SHA-256 differs): damaged or replaced"
    return None


def remove_marker(steps_dir: Path, step: str) -> None:
    """Forget that ``step`` finished (done before it runs again, so a kill cannot leave a stale marker)."""
    marker_path(steps_dir, step).unlink(missing_ok=True)


def notebook_code_hash(notebook: Path) -> str:
    """SHA-256 of a notebook's code cells only.

    Outputs, execution counts, metadata and markdown do not change what a step computes; the repository's
    notebooks carry recorded outputs (for nbval), and re-recording them must not rerun a pipeline.
    """
    try:
        nb = json.loads(Path(notebook).read_text(encoding="utf-8"))
        cells = [c.get("source", "") for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    except (OSError, ValueError, AttributeError) as e:
        log.warning("%s: not a readable notebook (%s); hashing the whole file", notebook, e)
        return sha256_file(notebook)
    return stable_hash(["".join(c) if isinstance(c, list) else c for c in cells], length=64)


def fingerprint(step: str, profile: Mapping[str, Any], notebook: Path,
                dependencies: Mapping[str, Mapping[str, Any] | None]) -> str:
    """Hash of what a step's result depends on: profile, notebook content, and its dependencies' markers.

    Args:
        dependencies: ``name -> marker`` (``None`` for a dependency that has not run, e.g. excluded by the
            profile's ``steps``).
    """
    return stable_hash({
        "step": step,
        "profile": dict(profile),
        "notebook_code": notebook_code_hash(notebook),
        "dependencies": {name: (stable_hash(m, 64) if m else None) for name, m in sorted(dependencies.items())},
    }, length=64)


def write_marker(steps_dir: Path, step: str, fp: str, *, run_dir: Path, notebook: Path, source: Path,
                 outputs: list[Path], started: float, finished: float, parameters: Mapping[str, Any]) -> Path:
    """Write the done-marker of a finished step (the last thing a step does)."""
    def rel(p: Path) -> str:
        try:
            return str(Path(p).resolve().relative_to(Path(run_dir).resolve()))
        except ValueError:
            return str(p)

    stamp = lambda t: _dt.datetime.fromtimestamp(t, _dt.timezone.utc).isoformat(timespec="seconds")  # noqa: E731
    return atomic_write_json(marker_path(steps_dir, step), {
        "format": MARKER_FORMAT,
        "step": step,
        "fingerprint": fp,
        # Unique per execution, so that steps downstream of a rerun step always see a changed marker.
        "execution": uuid.uuid4().hex,
        "notebook": rel(notebook),
        "source_notebook": str(source),
        "outputs": sorted(rel(p) for p in outputs),
        "files": {rel(p): file_record(p) for p in outputs},
        "parameters": dict(parameters),
        "started": stamp(started),
        "finished": stamp(finished),
        "seconds": round(finished - started, 3),
    })


def is_up_to_date(marker: Mapping[str, Any] | None, fp: str, run_dir: Path) -> tuple[bool, str]:
    """Whether a step with ``marker`` can be skipped, and why (or why not), in words."""
    if marker is None:
        return False, "not run yet"
    if marker.get("fingerprint") != fp:
        return False, "its profile, notebook or an upstream step changed"
    for rel in [marker.get("notebook", ""), *marker.get("outputs", [])]:
        if rel and not (Path(run_dir) / rel).exists():
            return False, f"{rel} is missing"
    for rel, record in marker.get("files", {}).items():
        why = _changed(Path(run_dir) / rel, record)
        if why:
            return False, f"{rel} {why}"
    return True, "unchanged"
