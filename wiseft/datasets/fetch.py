"""One file from a URL, resumable: retries with back-off, HTTP ``Range`` resume, then size and checksum checks.

:func:`fetch_url` streams into ``<dest>.part``. When the connection drops, it waits (``backoff``, doubling)
and asks the server for the rest (``Range: bytes=<have>-``); a server that answers 206 appends to the partial
file, one that ignores the range (200) starts the file over, so the result is the same either way. A failure
that outlasts the retries keeps the ``.part`` file, and running the same command later resumes from it. Only
a complete file whose size and published checksum match is renamed to ``dest``; a mismatch deletes the
partial file (its bytes cannot be trusted) and raises.

pooch was considered: its HTTP downloader neither resumes nor retries within a transfer, which is what large
archives (Food-101, 5 GB) need, so this stays on the standard library.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from ..errors import DatasetError
from ..progress import progress

log = logging.getLogger(__name__)

__all__ = ["BACKOFF_S", "RETRIES", "fetch_url", "hash_file"]

#: Attempts after the first one, and the first wait between attempts (doubled each time), module defaults.
RETRIES = 5
BACKOFF_S = 2.0
_SCHEMES = ("https", "http", "file")
_CHUNK = 1 << 20
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class _Interrupted(Exception):
    """A transfer broke in a way that another attempt may fix (network error, 5xx, short body)."""


def hash_file(path: str | os.PathLike, algos: tuple[str, ...] = ("md5", "sha256")) -> dict[str, str]:
    """Hex digests of a file, every algorithm in one pass."""
    digests = {a: hashlib.new(a) for a in algos}
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            for d in digests.values():
                d.update(chunk)
    return {a: d.hexdigest() for a, d in digests.items()}


def fetch_url(url: str, dest: str | os.PathLike, md5: str | None = None, sha256: str | None = None,
              size: int | None = None, timeout: float = 60.0, retries: int | None = None,
              backoff: float | None = None) -> Path:
    """Download ``url`` to ``dest``, resuming after dropped connections; check size and checksums; rename.

    Args:
        url: ``https``, ``http`` or ``file`` URL.
        dest: final path; the transfer goes to ``<dest>.part`` first.
        md5, sha256: published checksums (either, both or none).
        size: published size in bytes.
        timeout: seconds without data before an attempt counts as broken.
        retries: further attempts after a broken one (default :data:`RETRIES`).
        backoff: seconds before the first retry, doubled after each (default :data:`BACKOFF_S`).

    Raises:
        DatasetError: one line naming the URL and what failed. On a size or checksum mismatch nothing is
            kept; when the retries run out the ``.part`` file is kept for the next run to resume.
    """
    scheme = urllib.parse.urlparse(url).scheme
    if scheme not in _SCHEMES:
        raise DatasetError(f"refusing to download {url!r}: only {', '.join(_SCHEMES)} URLs are fetched")
    retries = RETRIES if retries is None else retries
    backoff = BACKOFF_S if backoff is None else backoff
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    attempt = 0
    while True:
        try:
            declared = _attempt(url, part, timeout, resumable=scheme in ("http", "https"))
            break
        except _Interrupted as e:
            attempt += 1
            have = part.stat().st_size if part.is_file() else 0
            if attempt > retries:
                raise DatasetError(f"download of {url!r} failed after {attempt} attempt(s): {e}; {have} bytes are "
                                   f"kept in {str(part)!r}: run the command again to resume") from None
            wait = backoff * 2 ** (attempt - 1)
            log.warning("download of %s interrupted at %d bytes (%s); retry %d of %d in %.1f s", url, have, e,
                        attempt, retries, wait)
            time.sleep(wait)
    _verify(url, part, declared, size, md5, sha256)
    os.replace(part, dest)
    return dest


def _attempt(url: str, part: Path, timeout: float, resumable: bool) -> int | None:
    """One request: continue ``part`` (or start it over); return the full size the server declared."""
    have = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": "wiseft"}
    if have and resumable:
        headers["Range"] = f"bytes={have}-"
    try:
        # a fresh opener reads the proxy settings now (urlopen's global one keeps those of its first call)
        resp = urllib.request.build_opener().open(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # the range starts at or past the end: complete already, or a stale partial
            total = _range_total(e.headers.get("Content-Range"))
            if total == have:
                return total
            part.unlink()
            raise _Interrupted(f"the server refused to resume at byte {have}; starting over") from None
        if e.code in (408, 429) or e.code >= 500:
            raise _Interrupted(f"HTTP {e.code} {e.reason}") from None
        raise DatasetError(f"download of {url!r} failed: HTTP {e.code} {e.reason}; check the URL in the dataset's "
                           f"registry entry") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
        raise _Interrupted(f"{type(e).__name__}: {getattr(e, 'reason', e)}") from None
    with resp:
        length = resp.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if have and getattr(resp, "status", None) == 206:
            start, total = _content_range(resp.headers.get("Content-Range"))
            if start != have:
                part.unlink()
                raise _Interrupted(f"the server resumed at byte {start} instead of {have}; starting over")
            mode = "ab"
            log.info("resuming %s at byte %d of %s", url, have, total)
        else:
            if have:
                log.info("%s: the server ignored the range request; downloading from the start", url)
            have, mode, total = 0, "wb", length
        try:
            with open(part, mode) as out:
                bar_total = (total - have) // _CHUNK + 1 if total else None
                out.writelines(progress(iter(lambda: resp.read(_CHUNK), b""), desc=f"downloading {part.stem}",
                                        total=bar_total, unit="MiB"))
        except (http.client.HTTPException, OSError, ValueError) as e:
            raise _Interrupted(f"{type(e).__name__} after {part.stat().st_size} bytes") from None
    got = part.stat().st_size
    if total is not None and got < total:
        raise _Interrupted(f"the connection closed at {got} of {total} bytes")
    return total


def _content_range(value: str | None) -> tuple[int, int | None]:
    m = _CONTENT_RANGE.fullmatch((value or "").strip())
    if not m:
        raise _Interrupted(f"a 206 answer without a usable Content-Range ({value!r})")
    return int(m.group(1)), None if m.group(3) == "*" else int(m.group(3))


def _range_total(value: str | None) -> int | None:
    m = re.fullmatch(r"bytes \*/(\d+)", (value or "").strip())
    return int(m.group(1)) if m else None


def _verify(url: str, part: Path, declared: int | None, size: int | None, md5: str | None,
            sha256: str | None) -> None:
    """Size and checksums of the complete partial file; on a mismatch it is deleted."""
    received = part.stat().st_size
    problem = None
    if declared is not None and received != declared:
        problem = f"truncated, {received} of {declared} bytes received"
    elif size is not None and received != size:
        problem = (f"{received} bytes, but the published size is {size} (the source may have changed or the "
                   f"transfer broke)")
    else:
        digests = hash_file(part)
        for algo, expected in (("md5", md5), ("sha256", sha256)):
            if expected and digests[algo] != expected.lower():
                problem = (f"checksum mismatch, {algo} {digests[algo]} but published {expected} (corrupt, or not "
                           f"the published file)")
                break
        if problem is None and not (md5 or sha256):
            log.info("%s: no published checksum; sha256 of what was received: %s", url, digests["sha256"])
    if problem is not None:
        part.unlink()
        raise DatasetError(f"download of {url!r}: {problem}; nothing was kept: run the command again")
