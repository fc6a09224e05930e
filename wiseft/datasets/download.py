"""``wiseft data download``: fetch a dataset from its published source, checked, or say what to do by hand.

Every file is streamed by :func:`wiseft.datasets.fetch.fetch_url` into a ``.part`` file next to its
destination, with retries and HTTP ``Range`` resume when the connection drops; its size is checked against
the server's and the registry's ``size``, its checksum against the published one where there is one
(``md5``/``sha256``), and only then is it renamed into place: an interrupted or corrupted download never
looks complete, and a rerun resumes an interrupted one. Archives are unpacked into a temporary folder inside the data root with members that
would land outside it refused, then moved into place.

Datasets behind a licence or a sign-in (ImageNet, ObjectNet, ImageNet-Sketch, Stanford Cars) raise
:class:`ManualDownloadRequired`, whose message lists the exact steps.
"""

from __future__ import annotations

import logging
import os
import shutil
import tarfile
import tempfile
import urllib.parse
import zipfile
from pathlib import Path

from ..errors import DatasetError
from ..io import atomic_write_text, safe_join
from .fetch import fetch_url, hash_file
from .registry import get_dataset_cfg, resolve_dataset_root

log = logging.getLogger(__name__)

__all__ = ["download_dataset", "download_instructions", "fetch_url", "extract_archive", "ManualDownloadRequired"]

_DOWNLOADS = ".wiseft-downloads"


class ManualDownloadRequired(DatasetError):
    """The dataset needs a manual step (licence, sign-in); the message says exactly what to do."""


def download_instructions(name: str, root: str | os.PathLike | None = None) -> str | None:
    """The manual steps for ``name`` with the data root filled in, or ``None`` if wiseft can fetch it."""
    spec, _ = _download_spec(name)
    if not spec.get("manual"):
        return None
    base = resolve_dataset_root(get_dataset_cfg(name), root)
    return spec["manual"].format(root=base).rstrip()


def download_dataset(name: str, root: str | os.PathLike | None = None, keep_archives: bool = False) -> list[Path]:
    """Fetch dataset ``name`` into the data root and return the files or folders it produced.

    Raises:
        ManualDownloadRequired: with the steps to follow, for datasets that cannot be fetched automatically.
        DatasetError: on a failed transfer, a size or checksum mismatch, or an unsafe archive.
    """
    spec, source_name = _download_spec(name)
    cfg = get_dataset_cfg(name)
    base = resolve_dataset_root(cfg, root)
    if spec.get("manual"):
        raise ManualDownloadRequired(f"{name} must be downloaded by hand:\n{spec['manual'].format(root=base).rstrip()}")
    if spec.get("command"):
        raise ManualDownloadRequired(f"{name} is not downloaded; create it with `{spec['command']}`")
    base.mkdir(parents=True, exist_ok=True)
    if spec.get("wilds"):
        return [_download_wilds(spec["wilds"], base)]
    if not spec.get("files"):
        raise DatasetError(f"dataset {name!r} has no download source in {cfg['source']}")
    produced = []
    for item in spec["files"]:
        produced.append(_fetch_item(item, base, source_name, keep_archives))
    return produced


def _download_spec(name: str) -> tuple[dict, str]:
    seen = []
    while True:
        seen.append(name)
        spec = get_dataset_cfg(name).get("download") or {}
        if "same_as" not in spec:
            return spec, name
        name = spec["same_as"]
        if name in seen:
            raise DatasetError(f"download specs refer to each other in a loop: {' -> '.join(seen + [name])}")


def _fetch_item(item: dict, base: Path, name: str, keep_archives: bool) -> Path:
    url = item["url"]
    filename = Path(urllib.parse.urlparse(url).path).name or f"{name}.download"
    checks = {k: item.get(k) for k in ("md5", "sha256", "size")}
    if not item.get("extract"):
        dest = _safe(base, item.get("dest") or filename)
        if dest.is_file() and _matches(dest, checks):
            log.info("%s is already there", dest)
            return dest
        return fetch_url(url, dest, **checks)
    into = _safe(base, item.get("extract_to", "."))
    done = _safe(base, f"{_DOWNLOADS}/{filename}.extracted")
    if done.is_file():
        log.info("%s was already downloaded and extracted into %s", url, into)
        return into
    archive = _safe(base, f"{_DOWNLOADS}/{filename}")
    if not (archive.is_file() and _matches(archive, checks) and any(checks.values())):
        fetch_url(url, archive, **checks)
    extract_archive(archive, into, strip_top=bool(item.get("strip_top")))
    atomic_write_text(done, url + "\n")
    if not keep_archives:
        archive.unlink()
    return into


def _safe(base: Path, rel: str) -> Path:
    try:
        return safe_join(base, rel)
    except ValueError as e:
        raise DatasetError(f"download destination {rel!r}: {e}") from e


def _matches(path: Path, checks: dict) -> bool:
    if checks.get("size") is not None and path.stat().st_size != checks["size"]:
        return False
    wanted = tuple(a for a in ("md5", "sha256") if checks.get(a))
    digests = hash_file(path, wanted) if wanted else {}
    return all(digests[a] == checks[a].lower() for a in wanted)


def extract_archive(archive: str | os.PathLike, into: str | os.PathLike, strip_top: bool = False) -> Path:
    """Unpack a ``.tar(.gz|.bz2|.xz)`` or ``.zip`` into ``into``, refusing members that would land outside.

    Extraction happens in a temporary folder inside ``into``; entries are moved into place afterwards
    (merging with folders that exist). ``strip_top`` drops a single top-level folder of the archive.
    """
    archive, into = Path(archive), Path(into)
    into.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".wiseft-extract-", dir=into))
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for member in zf.infolist():
                    try:
                        safe_join(tmp, member.filename)
                    except ValueError as e:
                        raise DatasetError(f"archive {str(archive)!r} has an unsafe member: {e}") from e
                zf.extractall(tmp)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                try:
                    tf.extractall(tmp, filter="data")  # refuses absolute paths, '..', links leaving tmp, devices
                except tarfile.FilterError as e:
                    raise DatasetError(f"archive {str(archive)!r} has an unsafe member: {e}") from e
        else:
            raise DatasetError(f"{str(archive)!r} is neither a tar nor a zip archive")
        top = [p for p in tmp.iterdir()]
        if strip_top and len(top) == 1 and top[0].is_dir():
            top = list(top[0].iterdir())
        for entry in top:
            _merge_move(entry, into / entry.name)
    except (OSError, tarfile.TarError, zipfile.BadZipFile, EOFError) as e:
        raise DatasetError(f"cannot extract {str(archive)!r}: {type(e).__name__}: {e}. Delete it and download "
                           f"again.") from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return into


def _merge_move(src: Path, dst: Path) -> None:
    if dst.is_dir() and src.is_dir() and not dst.is_symlink():
        for child in src.iterdir():
            _merge_move(child, dst / child.name)
        src.rmdir()
    else:
        os.replace(src, dst)


def _download_wilds(dataset: str, base: Path) -> Path:
    from .wilds_support import WILDS_FOLDERS, import_wilds

    folder, release = WILDS_FOLDERS[dataset]
    if not (base / folder / release).is_file():
        wilds = import_wilds()
        log.info("downloading WILDS %s with the wilds package (its archive and checks) into %s", dataset, base)
        try:
            wilds.get_dataset(dataset=dataset, root_dir=str(base), download=True)
        except (OSError, ValueError, RuntimeError) as e:
            raise DatasetError(f"wilds could not download {dataset} into {str(base)!r}: {e}") from e
    if not (base / folder / release).is_file():
        raise DatasetError(f"the download of WILDS {dataset} did not complete ({release} is missing in "
                           f"{str(base / folder)!r}); delete that folder and run the command again, or download "
                           f"it from https://wilds.stanford.edu/downloads")
    return base / folder
