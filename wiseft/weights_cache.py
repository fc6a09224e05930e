"""Pretrained CLIP weights named by an open_clip tag, handled like data: cached where wiseft says, fetched once.

open_clip resolves a tag (``ViT-B-32`` + ``openai``) to a file on the Hugging Face Hub (or, for a few tags, a
plain URL). wiseft keeps those files in **its** cache, ``<cache>/weights`` (``$WISEFT_CACHE``, see
:mod:`wiseft.paths`), in the hub's own layout, so that one ``wiseft models download`` on a login node serves
every compute node that shares the cache. A Hugging Face cache the user already has (``$HF_HOME``,
``$HF_HUB_CACHE``) is looked in too.

Model creation never goes to the network for a cached file, and never retries for minutes for a missing one:
:func:`ensure_weights` returns the cached file, or probes the source once (a few seconds at most) and
downloads it, or raises :class:`WeightsUnavailable`, one line naming the model, the tag, where it looked and
the three ways out.

Example:
    >>> ensure_weights("ViT-B-32", "openai")        # doctest: +SKIP
    PosixPath('/home/me/.cache/wiseft/weights/models--timm--vit_base_patch32_clip_224.openai/snapshots/…')
"""

from __future__ import annotations

import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import WiseftError
from .paths import cache_dir

log = logging.getLogger(__name__)

__all__ = ["PROBE_TIMEOUT_S", "WeightsSource", "WeightsUnavailable", "ensure_weights", "find_cached", "hub_offline",
           "tag_preprocess_cfg", "weights_dir", "weights_source"]

#: Seconds the reachability probe waits before calling the source unreachable.
PROBE_TIMEOUT_S = 3.0
_HF_DEFAULT_FILE = "open_clip_pytorch_model.bin"  # open_clip's HF_WEIGHTS_NAME
_PREPROCESS_KEYS = ("size", "mode", "mean", "std", "interpolation", "resize_mode", "fill_color")


class WeightsUnavailable(WiseftError):
    """Pretrained weights are neither cached nor downloadable from here; the message says what to do."""


@dataclass(frozen=True)
class WeightsSource:
    """Where open_clip publishes the weights of ``model`` + ``tag``.

    Attributes:
        hf_repo: Hugging Face Hub repository (``timm/vit_base_patch32_clip_224.openai``), or ``None``.
        hf_files: file names to try in the repository, safetensors first.
        url: a plain download URL, used when there is no hub entry.
    """

    model: str
    tag: str
    hf_repo: str | None
    hf_files: tuple[str, ...]
    url: str | None
    config: dict[str, Any]

    @property
    def location(self) -> str:
        """The source in words (``hf-hub:<repo>`` or the URL)."""
        return f"hf-hub:{self.hf_repo}" if self.hf_repo else str(self.url)

    @property
    def probe_url(self) -> str:
        """An HTTP URL whose answer tells whether the source is reachable."""
        if self.hf_repo:
            from huggingface_hub import hf_hub_url

            return hf_hub_url(self.hf_repo, self.hf_files[-1])
        return str(self.url)


def weights_dir() -> Path:
    """wiseft's weights cache: ``<cache>/weights`` (``$WISEFT_CACHE/weights`` when that is set)."""
    return cache_dir() / "weights"


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` asks for no network at all (then nothing is probed or downloaded)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def weights_source(model: str, tag: str) -> WeightsSource:
    """The published source of ``model`` + ``tag`` according to open_clip.

    Raises:
        WiseftError: when open_clip has no such tag for the model, listing the tags it has.
    """
    from open_clip import pretrained as oc_pretrained

    cfg = oc_pretrained.get_pretrained_cfg(model, tag)
    if not cfg or not (cfg.get("hf_hub") or cfg.get("url")):
        tags = oc_pretrained.list_pretrained_tags_by_model(model)
        known = f"its tags: {', '.join(tags)}" if tags else "open_clip publishes no weights for this model"
        raise WiseftError(f"open_clip has no pretrained weights {tag!r} for model {model!r} ({known}); set "
                          f"model.pretrained to one of them, to a weights file, or to null for random weights")
    repo, files = None, ()
    if cfg.get("hf_hub") and oc_pretrained.has_hf_hub():
        repo, filename = os.path.split(cfg["hf_hub"])
        filename = filename or _HF_DEFAULT_FILE
        files = (*_safetensors_names(filename), filename)
    return WeightsSource(model=model, tag=tag, hf_repo=repo, hf_files=tuple(files), url=cfg.get("url") or None,
                         config=dict(cfg))


def _safetensors_names(filename: str) -> tuple[str, ...]:
    """The safetensors twin open_clip looks for first (``open_clip_pytorch_model.bin`` → ``open_clip_model.safetensors``)."""
    if filename == _HF_DEFAULT_FILE:
        return ("open_clip_model.safetensors",)
    if filename.endswith((".bin", ".pth")):
        return (filename[:-4] + ".safetensors",)
    return ()


def tag_preprocess_cfg(model: str, tag: str) -> dict[str, Any]:
    """The preprocessing the tag was trained with (mean, std, interpolation …), as open_clip applies it."""
    cfg = weights_source(model, tag).config
    return {k: cfg[k] for k in _PREPROCESS_KEYS if k in cfg}


def _search_dirs(cache: str | os.PathLike | None) -> list[Path]:
    dirs = [Path(cache).expanduser() if cache else weights_dir()]
    try:
        from huggingface_hub import constants

        hub_default = Path(constants.HF_HUB_CACHE).expanduser()
        if hub_default not in dirs:
            dirs.append(hub_default)
    except ImportError:
        pass
    return dirs


def find_cached(model: str, tag: str, cache: str | os.PathLike | None = None) -> Path | None:
    """The cached weights file of ``model`` + ``tag``, or ``None``; never touches the network.

    Looks in ``cache`` (default :func:`weights_dir`), then in the Hugging Face hub cache (``$HF_HUB_CACHE``).
    """
    source = weights_source(model, tag)
    for folder in _search_dirs(cache):
        if source.hf_repo:
            from huggingface_hub import try_to_load_from_cache

            for name in source.hf_files:
                found = try_to_load_from_cache(source.hf_repo, name, cache_dir=str(folder))
                if isinstance(found, str) and Path(found).is_file():
                    return Path(found)
        elif source.url:
            candidate = folder / os.path.basename(source.url)
            if candidate.is_file():
                return candidate
    return None


def _unavailable(source: WeightsSource, cache: str | os.PathLike | None, why: str) -> WeightsUnavailable:
    where = " and ".join(str(d) for d in _search_dirs(cache))
    files = f"{source.hf_repo}/{{{','.join(source.hf_files)}}}" if source.hf_repo else str(source.url)
    return WeightsUnavailable(
        f"pretrained weights for model {source.model!r}, tag {source.tag!r} ({files}) are not cached (looked in "
        f"{where}) and {why}. Three ways out: (1) on a node with internet, run `wiseft models download "
        f"{source.model} {source.tag}` with the same WISEFT_CACHE, then rerun here; (2) if a Hugging Face cache "
        f"elsewhere holds them, point HF_HUB_CACHE (or HF_HOME) at it and set HF_HUB_OFFLINE=1; (3) give a local "
        f"file: --set model.pretrained=/path/file.safetensors (model.pretrained in the profile)")


def _probe(url: str, timeout: float) -> str | None:
    """``None`` when ``url``'s server answers at all (any HTTP status), else why it could not be reached."""
    request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": "wiseft"})
    try:
        with urllib.request.build_opener().open(request, timeout=timeout):  # today's proxy settings
            return None
    except urllib.error.HTTPError:
        return None  # the server answered (redirects, 401, 404 …): the hub client will say more
    except (urllib.error.URLError, OSError, ValueError) as e:
        return f"{type(e).__name__}: {getattr(e, 'reason', e)}"


def ensure_weights(model: str, tag: str, cache: str | os.PathLike | None = None,
                   probe_timeout: float | None = None) -> Path:
    """The local file of ``model`` + ``tag``: cached, else fetched now into ``cache`` (default :func:`weights_dir`).

    Already cached: returns at once. Otherwise the source is probed (``probe_timeout`` seconds, default
    :data:`PROBE_TIMEOUT_S`) before open_clip's own downloader fetches it (hub files are checked by the hub
    client; OpenAI's URLs by their SHA-256).

    Raises:
        WeightsUnavailable: offline (``HF_HUB_OFFLINE=1``), unreachable, or the download failed.
    """
    found = find_cached(model, tag, cache)
    if found is not None:
        return found
    source = weights_source(model, tag)
    if hub_offline():
        raise _unavailable(source, cache, "HF_HUB_OFFLINE is set, so nothing is downloaded")
    why = _probe(source.probe_url, PROBE_TIMEOUT_S if probe_timeout is None else probe_timeout)
    if why is not None:
        raise _unavailable(source, cache, f"{source.probe_url} cannot be reached from here ({why})")
    from open_clip import pretrained as oc_pretrained

    target = Path(cache).expanduser() if cache else weights_dir()
    target.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s / %s from %s into %s", model, tag, source.location, target)
    try:
        path = oc_pretrained.download_pretrained(source.config, cache_dir=str(target))
    except Exception as e:  # open_clip and the hub raise anything; the user gets one line, the cause chained
        raise _unavailable(source, cache, f"the download failed ({type(e).__name__}: {str(e).splitlines()[0]})"
                           ) from e
    if not path or not Path(path).is_file():
        raise _unavailable(source, cache, "open_clip's downloader returned no file")
    return Path(path)

