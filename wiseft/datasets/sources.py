"""Where registry lists come from: class names, class folders, label maps and logit groups.

A registry value that names a list is either the list itself or a *source*:

=================================  ====================================================================
``open_clip:imagenet``             ``open_clip.IMAGENET_CLASSNAMES`` (the OpenAI-curated 1000 names)
``timm:imagenet_r_indices.txt``    a file of timm's packaged ``timm/data/_info/`` (read without importing timm)
``package:fmow_classnames.txt``    a file of ``wiseft/datasets/metadata/``
``dataset:<relative path>``        a text file inside the dataset root (one item per line)
``file:<path>``                    a user's text file (relative to the YAML file that names it)
``range:<n>``                      ``"0" … "n-1"`` (ImageNet-V2's folder names)
``loader``                         the class list the loader reads from the data (Food-101, SUN397 …)
``{from: S, indices: T}``          ``S[int(i)] for i in T`` (ImageNet-A/R names from the 1000)
``{from: S, replace: {a: b}}``     ``S`` with substrings replaced (``_`` → space)
``{objectnet: <what>, mappings: <folder under the root>}``  ``classnames``, ``folders``,
                                   ``folder_labels``, ``imagenet_wnid_labels`` or ``imagenet_groups``
``{video: <what>, set: vid|ytbb, folder: <folder under the root>}``  a video set's ``classnames``,
                                   ``imagenet_wnid_labels`` or ``meta`` (everything, for its protocol)
=================================  ====================================================================

Text files: one item per line, blank lines and lines starting with ``#`` skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DatasetError
from .files import METADATA_DIR, read_json_object, read_lines, timm_info_file

__all__ = ["SourceContext", "resolve_source", "read_lines", "read_json_object", "timm_info_file", "METADATA_DIR"]

_OPEN_CLIP_LISTS = {"imagenet": "IMAGENET_CLASSNAMES"}


@dataclass
class SourceContext:
    """What a source may need: the dataset root, the YAML file it came from, classes found by a loader."""

    name: str
    yaml_file: Path
    base: Path | None = None
    loader_classes: list[str] | None = None
    cache: dict = field(default_factory=dict)


def resolve_source(spec: Any, ctx: SourceContext, what: str = "list") -> Any:
    """Resolve a registry value to the list, map or groups it names (see the module docstring)."""
    if isinstance(spec, list):
        return [str(x) if not isinstance(x, list) else x for x in spec]
    if isinstance(spec, dict):
        if "objectnet" in spec:
            return _objectnet(spec, ctx, what)
        if "video" in spec:
            return _video(spec, ctx, what)
        if "from" in spec:
            items = resolve_source(spec["from"], ctx, what)
            if "indices" in spec:
                idx = resolve_source(spec["indices"], ctx, what)
                try:
                    items = [items[int(i)] for i in idx]
                except (ValueError, IndexError) as e:
                    raise DatasetError(f"dataset {ctx.name!r}: {what}: bad index in {spec['indices']!r}: {e}") from e
            for old, new in (spec.get("replace") or {}).items():
                items = [s.replace(old, new) for s in items]
            if spec.get("lower"):
                items = [s.lower() for s in items]
            return items
        raise DatasetError(f"dataset {ctx.name!r}: {what}: a mapping source needs 'from', 'objectnet' or 'video', "
                           f"got {spec!r}")
    if not isinstance(spec, str):
        raise DatasetError(f"dataset {ctx.name!r}: {what}: expected a list or a source string, got {spec!r}")
    if spec == "loader":
        if ctx.loader_classes is None:
            raise DatasetError(f"dataset {ctx.name!r}: {what} comes from the data itself; give the dataset root")
        return list(ctx.loader_classes)
    scheme, sep, arg = spec.partition(":")
    if not sep or scheme not in _SCHEMES:
        raise DatasetError(f"dataset {ctx.name!r}: {what}: unknown source {spec!r}; use one of "
                           f"{', '.join(s + ':…' for s in _SCHEMES)}, 'loader', or an inline list")
    return _SCHEMES[scheme](arg, ctx, what)


# ------------------------------------------------------------------------------------------- schemes
def _open_clip(arg: str, ctx: SourceContext, what: str) -> list[str]:
    if arg not in _OPEN_CLIP_LISTS:
        raise DatasetError(f"dataset {ctx.name!r}: {what}: open_clip list {arg!r} unknown; "
                           f"known: {', '.join(_OPEN_CLIP_LISTS)}")
    from open_clip import zero_shot_metadata

    return list(getattr(zero_shot_metadata, _OPEN_CLIP_LISTS[arg]))


def _timm(arg: str, ctx: SourceContext, what: str) -> list[str]:
    return read_lines(timm_info_file(_plain_file_name(arg, ctx, what)), what)


def _package(arg: str, ctx: SourceContext, what: str) -> list[str]:
    return read_lines(METADATA_DIR / _plain_file_name(arg, ctx, what), what)


def _dataset(arg: str, ctx: SourceContext, what: str) -> list[str]:
    if ctx.base is None:
        raise DatasetError(f"dataset {ctx.name!r}: the {what} is read from the data ({arg}); give the dataset root")
    from .layout import join_inside

    return read_lines(join_inside(ctx.base, arg), what)


def _file(arg: str, ctx: SourceContext, what: str) -> list[str]:
    path = Path(arg).expanduser()
    if not path.is_absolute():
        path = ctx.yaml_file.parent / path
    return read_lines(path, what)


def _range(arg: str, ctx: SourceContext, what: str) -> list[str]:
    try:
        return [str(i) for i in range(int(arg))]
    except ValueError as e:
        raise DatasetError(f"dataset {ctx.name!r}: {what}: range:{arg} needs an integer") from e


def _plain_file_name(arg: str, ctx: SourceContext, what: str) -> str:
    if not arg or "/" in arg or "\\" in arg or arg.startswith("."):
        raise DatasetError(f"dataset {ctx.name!r}: {what}: {arg!r} must be a plain file name")
    return arg


_SCHEMES = {"open_clip": _open_clip, "timm": _timm, "package": _package, "dataset": _dataset, "file": _file,
            "range": _range}


def _objectnet(spec: dict, ctx: SourceContext, what: str) -> Any:
    from .layout import join_inside
    from .objectnet import load_objectnet_mapping

    if ctx.base is None:
        raise DatasetError(f"dataset {ctx.name!r}: the {what} comes from ObjectNet's mapping files; "
                           f"give the data root that holds objectnet-1.0/")
    mapping = load_objectnet_mapping(join_inside(ctx.base, spec.get("mappings", "objectnet-1.0/mappings")))
    kind = spec["objectnet"]
    if kind == "classnames":
        return list(mapping.classnames)
    if kind == "folders":
        return list(mapping.folders)
    if kind == "folder_labels":
        return {folder: i for i, folder in enumerate(mapping.folders)}
    if kind == "imagenet_groups":
        return [list(g) for g in mapping.groups]
    if kind == "imagenet_wnid_labels":
        wnids = read_lines(timm_info_file("imagenet_synsets.txt"), "ImageNet synsets")
        return {wnids[idx]: label for idx, label in sorted(mapping.imagenet_to_label.items())}
    raise DatasetError(f"dataset {ctx.name!r}: {what}: unknown ObjectNet list {kind!r}; use classnames, folders, "
                       f"folder_labels, imagenet_groups or imagenet_wnid_labels")


def _video(spec: dict, ctx: SourceContext, what: str) -> Any:
    from .layout import join_inside
    from .video import load_video_meta

    if ctx.base is None:
        raise DatasetError(f"dataset {ctx.name!r}: the {what} comes from the video set's metadata; give the data root")
    meta = load_video_meta(join_inside(ctx.base, spec.get("folder", "")), spec.get("set", ""))
    kind = spec["video"]
    if kind == "classnames":
        return list(meta.classnames)
    if kind == "imagenet_wnid_labels":
        return meta.imagenet_wnid_labels()
    if kind == "meta":
        return meta
    raise DatasetError(f"dataset {ctx.name!r}: {what}: unknown video list {kind!r}; use classnames, "
                       f"imagenet_wnid_labels or meta")
