"""The dataset registry: YAML entries plus tiny lookups.

Every dataset the kit knows is one YAML entry (packaged under ``wiseft/datasets/registry/``, in the offline
world's ``wiseft/world/datasets.yaml`` when present, in files named by ``$WISEFT_DATASET_CONFIGS``, or added
at run time with :func:`add_dataset_config`). An entry says where the images are, how they are labelled, how
many there should be, how logits are scored and how to get the data; the schema is in ``docs/datasets.md``.

Loading only parses YAML and checks the keys, so :func:`list_datasets` stays cheap enough for profile
validation; class lists, mapping files and loaders are resolved when a dataset is opened.
"""

from __future__ import annotations

import copy
import importlib
import logging
import os
import re
import threading
from pathlib import Path
from typing import Any, Callable

import yaml

from ..errors import DatasetError

log = logging.getLogger(__name__)

__all__ = [
    "list_datasets",
    "get_dataset_cfg",
    "add_dataset_config",
    "register_root_resolver",
    "resolve_dataset_root",
    "check_dataset_name",
]

_REGISTRY_DIR = Path(__file__).parent / "registry"
#: Registry files of other packages, loaded when they exist (the offline world ships its datasets here).
_OPTIONAL_PACKAGED = (Path(__file__).parent.parent / "world" / "datasets.yaml",)
#: ``os.pathsep``-separated YAML files of the user's own datasets, loaded with the packaged ones.
ENV_CONFIGS = "WISEFT_DATASET_CONFIGS"

#: Keys an entry may have (anything else is a typo and is reported with the file and entry).
ENTRY_KEYS = {
    "description", "role", "classnames", "templates", "root", "layout", "splits", "eval_split", "train_split",
    "heldout_split", "protocol", "border_crop", "download", "notes",
}
#: Keys a split may have; loaders read the ones they need.
SPLIT_KEYS = {
    "loader", "path", "folders", "label_map", "ignore_other_folders", "count", "files", "label_key", "data",
    "labels", "file", "images_key", "labels_key", "dataset", "split", "class", "kwargs", "split_arg",
    "partition", "flat_hint", "extensions", "classes", "video",
}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_HIDDEN_RE = re.compile(r"^\.[A-Za-z_][A-Za-z0-9_-]*$")

_lock = threading.RLock()
_REGISTRY: dict[str, dict[str, Any]] | None = None
_USER_FILES: list[Path] = []

#: Named roots: ``root: world`` in an entry means "ask ``wiseft.world.world_root()``", imported lazily.
_ROOT_RESOLVERS: dict[str, str | Callable[[], os.PathLike | str]] = {"world": "wiseft.world:world_root"}


# ---------------------------------------------------------------------------------------------- lookups
def list_datasets() -> list[str]:
    """Names of every registered dataset, sorted."""
    return sorted(_registry())


def get_dataset_cfg(name: str) -> dict[str, Any]:
    """A deep copy of the registry entry ``name`` (with ``name`` and ``source`` keys added).

    Raises:
        DatasetError: for an unknown name, listing the known ones.
    """
    reg = _registry()
    if name not in reg:
        import difflib

        close = difflib.get_close_matches(str(name), list(reg), n=3)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise DatasetError(f"unknown dataset {name!r}{hint} Known datasets: {', '.join(sorted(reg))}. "
                           f"Add your own with wiseft.datasets.add_dataset_config('my_datasets.yaml').")
    return copy.deepcopy(reg[name])


def add_dataset_config(path: str | os.PathLike) -> list[str]:
    """Register the datasets of a user's YAML file and return their names.

    The file maps dataset names to entries (see ``docs/datasets.md``). Relative paths inside it (``root``,
    ``file:`` class lists, ``file:`` templates) are relative to the file's folder. An entry whose name is
    already registered replaces it, with a warning.

    Raises:
        DatasetError: if the file is missing or an entry is malformed (naming the file, entry and key).
    """
    path = Path(path).expanduser().resolve()
    entries = _load_file(path)
    with _lock:
        reg = _registry()
        for name in entries:
            if name in reg and reg[name]["source"] != str(path):
                log.warning("dataset %r from %s replaces the entry from %s", name, path, reg[name]["source"])
        reg.update(entries)
        if path not in _USER_FILES:
            _USER_FILES.append(path)
    return list(entries)


def register_root_resolver(name: str, resolver: str | Callable[[], os.PathLike | str]) -> None:
    """Let entries say ``root: <name>``; ``resolver`` is a callable or ``"module:function"`` (imported lazily)."""
    _ROOT_RESOLVERS[name] = resolver


def resolve_dataset_root(cfg: dict[str, Any], root: str | os.PathLike | None) -> Path:
    """The folder an entry's split paths are relative to.

    An entry's own ``root`` wins: a registered resolver name (``world``) or a path (relative to the YAML
    file that defined it). Otherwise ``root`` (the user's data folder), else ``wiseft.paths.data_root()``.
    """
    own = cfg.get("root")
    if own is not None:
        resolver = _ROOT_RESOLVERS.get(own)
        if resolver is not None:
            try:
                if isinstance(resolver, str):
                    module, _, func = resolver.partition(":")
                    resolver = getattr(importlib.import_module(module), func)
                return Path(resolver()).expanduser()
            except (ImportError, AttributeError) as e:
                raise DatasetError(f"dataset {cfg['name']!r} lives under the {own!r} root, but its resolver is not "
                                   f"available ({e}); is that part of wiseft installed?") from e
        own_path = Path(own).expanduser()
        if not own_path.is_absolute():
            own_path = Path(cfg["source"]).parent / own_path
        return own_path
    if root is not None:
        return Path(root).expanduser()
    from ..paths import data_root

    return data_root()


def check_dataset_name(name: Any, what: str = "dataset name") -> str:
    """``name`` if it is a safe registry name (letters, digits, ``._+-``; no ``/`` and no ``..``)."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or ".." in name:
        raise DatasetError(f"{what} {name!r} is not allowed: use letters, digits and '._+-', "
                           f"starting with a letter or digit, without '/' or '..'")
    return name


# ---------------------------------------------------------------------------------------- entry types
def _text(v: Any) -> bool:
    return isinstance(v, str) and bool(v)


def _texts(v: Any) -> bool:
    return isinstance(v, list) and all(_text(x) for x in v)


def _source(v: Any) -> bool:
    return isinstance(v, (str, list, dict)) and not (isinstance(v, str) and not v)


_TEXT = (_text, "a non-empty string")
_SOURCE = (_source, "a list or a source such as 'file:classes.txt'")
#: Value types of split keys (a registry file is user input: check before a loader indexes into it).
_SPLIT_TYPES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "path": _TEXT, "folders": _SOURCE, "label_map": _SOURCE, "classes": _SOURCE,
    "ignore_other_folders": (lambda v: isinstance(v, bool), "true or false"),
    "files": (lambda v: _texts(v) and bool(v), "a non-empty list of file names"),
    "label_key": _TEXT, "data": _TEXT, "labels": _TEXT, "file": _TEXT, "images_key": _TEXT, "labels_key": _TEXT,
    "dataset": _TEXT, "split": _TEXT, "class": _TEXT, "flat_hint": _TEXT,
    "kwargs": (lambda v: isinstance(v, dict) and all(isinstance(k, str) for k in v), "a mapping of arguments"),
    "split_arg": (lambda v: v is None or v is False or _text(v), "an argument name, or null"),
    "extensions": (lambda v: _texts(v) and bool(v) and all(x.startswith(".") for x in v),
                   "a list of suffixes such as ['.jpg', '.png']"),
    "video": (lambda v: v in ("vid", "ytbb"), "vid or ytbb"),
}
#: Keys a loader cannot work without.
_REQUIRED_SPLIT_KEYS = {"cifar_python": ("files",), "npy_pair": ("data", "labels"), "npy_dict": ("file",),
                        "torchvision": ("class",), "sun397": ("file",), "wilds": ("dataset", "split"),
                        "video_frames": ("video",)}
_ENTRY_TYPES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "description": (lambda v: isinstance(v, str), "a string"), "notes": (lambda v: isinstance(v, str), "a string"),
    "classnames": _SOURCE, "templates": _TEXT, "root": _TEXT, "eval_split": _TEXT, "train_split": _TEXT,
    "border_crop": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
                    "a non-negative number of pixels"),
    "download": (lambda v: isinstance(v, dict), "a mapping (files, manual, command, wilds or same_as)"),
}


def _check_split(where: str, split: Any, spec: dict[str, Any]) -> None:
    from .loaders import LOADERS

    kind = spec["loader"]
    if not isinstance(kind, str) or kind not in LOADERS:
        raise DatasetError(f"{where}: split {split!r} key 'loader' must be one of {', '.join(LOADERS)}, got {kind!r}")
    for key, (ok, expected) in _SPLIT_TYPES.items():
        if key in spec and not ok(spec[key]):
            raise DatasetError(f"{where}: split {split!r} key {key!r} must be {expected}, got {spec[key]!r}")
    required = list(_REQUIRED_SPLIT_KEYS.get(kind, ()))
    if kind == "torchvision" and spec.get("split_arg", "split"):
        required.append("split")
    missing = [k for k in required if k not in spec]
    if missing:
        raise DatasetError(f"{where}: split {split!r} (loader {kind}) needs key(s) {', '.join(missing)}")


# ------------------------------------------------------------------------------------------- loading
def _registry() -> dict[str, dict[str, Any]]:
    global _REGISTRY
    if _REGISTRY is None:
        with _lock:
            if _REGISTRY is None:
                reg: dict[str, dict[str, Any]] = {}
                for path in _default_files():
                    reg.update(_load_file(path))
                _REGISTRY = reg
    return _REGISTRY


def _default_files() -> list[Path]:
    files = sorted(_REGISTRY_DIR.glob("*.yaml"))
    files += [p for p in _OPTIONAL_PACKAGED if p.is_file()]
    for item in filter(None, os.environ.get(ENV_CONFIGS, "").split(os.pathsep)):
        files.append(Path(item).expanduser().resolve())
    return files


def _reset_registry() -> None:
    """Forget every loaded entry (tests use it after changing ``$WISEFT_DATASET_CONFIGS``)."""
    global _REGISTRY
    with _lock:
        _REGISTRY = None
        _USER_FILES.clear()


def _load_file(path: Path) -> dict[str, dict[str, Any]]:
    if not path.is_file():
        raise DatasetError(f"dataset config {str(path)!r} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise DatasetError(f"dataset config {str(path)!r} is not valid YAML: {e}") from e
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"dataset config {str(path)!r} cannot be read as UTF-8 text: {e}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise DatasetError(f"dataset config {str(path)!r} must map dataset names to entries, "
                           f"got a {type(data).__name__}")
    entries = {}
    for name, entry in data.items():
        if isinstance(name, str) and _HIDDEN_RE.match(name):  # anchors kept in hidden keys (``.splits: &splits``)
            continue
        entries[name] = _normalise_entry(name, entry, path)
    return entries


def _normalise_entry(name: Any, entry: Any, path: Path) -> dict[str, Any]:
    where = f"dataset config {str(path)!r}, entry {name!r}"
    try:
        check_dataset_name(name)
    except DatasetError as e:
        raise DatasetError(f"{where}: {e}") from e
    if not isinstance(entry, dict):
        raise DatasetError(f"{where}: expected a mapping of keys, got {type(entry).__name__}")
    unknown = set(entry) - ENTRY_KEYS
    if unknown:
        raise DatasetError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
                           f"allowed: {', '.join(sorted(ENTRY_KEYS))}")
    if "classnames" not in entry:
        raise DatasetError(f"{where}: missing key 'classnames' (a list, or a source such as 'file:classes.txt')")
    splits = entry.get("splits")
    if not isinstance(splits, dict) or not splits:
        raise DatasetError(f"{where}: key 'splits' must map split names to their layout, e.g. "
                           f"splits: {{test: {{path: my_set/test}}}}")
    layout = entry.get("layout") or {}
    if not isinstance(layout, dict):
        raise DatasetError(f"{where}: key 'layout' must be a mapping of split keys shared by every split")
    norm_splits = {}
    for split, spec in splits.items():
        spec = {**layout, **(spec or {})}
        bad = set(spec) - SPLIT_KEYS
        if bad:
            raise DatasetError(f"{where}: split {split!r} has unknown key(s) {', '.join(sorted(map(str, bad)))}; "
                               f"allowed: {', '.join(sorted(SPLIT_KEYS))}")
        count = spec.get("count")
        if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 0):
            raise DatasetError(f"{where}: split {split!r} key 'count' must be a non-negative integer, got {count!r}")
        spec.setdefault("loader", "imagefolder")
        _check_split(where, split, spec)
        norm_splits[str(split)] = spec
    for key, (ok, expected) in _ENTRY_TYPES.items():
        if key in entry and not ok(entry[key]):
            raise DatasetError(f"{where}: key {key!r} must be {expected}, got {entry[key]!r}")
    out = dict(entry)
    out.pop("layout", None)
    out["splits"] = norm_splits
    out["name"] = name
    out["source"] = str(path)
    out.setdefault("description", "")
    out.setdefault("role", "shift")
    if out["role"] not in ("reference", "shift", "extra"):
        raise DatasetError(f"{where}: key 'role' must be reference, shift or extra, got {out['role']!r}")
    out.setdefault("templates", "simple_imagenet")
    templates = out["templates"]
    if isinstance(templates, str) and templates.startswith("file:"):
        tpath = Path(templates[5:]).expanduser()
        out["templates"] = "file:" + str(tpath if tpath.is_absolute() else path.parent / tpath)
    out.setdefault("protocol", {"type": "identity"})
    if isinstance(out["protocol"], str):
        out["protocol"] = {"type": out["protocol"]}
    if not isinstance(out["protocol"], dict) or "type" not in out["protocol"]:
        raise DatasetError(f"{where}: key 'protocol' must be a name or a mapping with a 'type'")
    # heldout_split: a split of the reference distribution kept out of training and of the reported test numbers,
    # for choosing hyperparameters and α (by default `val` when the evaluation split is another one).
    for key, preferred in (("eval_split", ("test", "val")), ("train_split", ("train",)), ("heldout_split", ("val",))):
        if key in out:
            if out[key] not in norm_splits:
                raise DatasetError(f"{where}: key {key!r} names split {out[key]!r}, which is not among the "
                                   f"splits {', '.join(norm_splits)}")
        else:
            choice = next((s for s in preferred if s in norm_splits), None)
            if choice is None and key == "eval_split":
                choice = list(norm_splits)[-1]
            if key == "heldout_split" and (choice == out.get("eval_split") or "train_split" not in out):
                choice = None
            if choice is not None:
                out[key] = choice
    return out
