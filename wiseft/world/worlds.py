"""The registry of named worlds and the world's task metadata (packaged YAML plus tiny lookups).

- ``worlds.yaml``: named generator + pretraining settings (``mini``, ``tiny``);
- ``datasets.yaml``: the world's datasets in the dataset registry's format (name, role, class names, splits,
  counts), loaded by ``wiseft.datasets``;
- ``templates.txt``: the zero-shot templates every world dataset shares.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from importlib import resources
from typing import Any, Callable

import yaml

from ..errors import ProfileError

__all__ = ["WORLD_PREFIX", "list_worlds", "get_world_cfg", "spec_from_mapping", "parse_world_tag", "check_world_tag", "classnames",
           "templates", "world_datasets"]

#: the ``pretrained`` prefix that names a world's model (``world:mini``).
WORLD_PREFIX = "world:"


def spec_from_mapping(cls: type, raw: dict[str, Any], where: str, **convert: Callable[[Any], Any]) -> Any:
    """A settings dataclass (a world's generator or pretraining spec) from a YAML mapping.

    ``convert`` maps a key to a function applied to its value (YAML lists become the tuples the frozen
    dataclasses hash). Raises ``ValueError`` naming ``where``, the unknown keys and the known ones.
    """
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known keys: {sorted(known)}")
    return cls(**{key: convert[key](value) if key in convert else value for key, value in raw.items()})


@functools.lru_cache(maxsize=None)
def _read(name: str) -> Any:
    return yaml.safe_load(resources.files("wiseft.world").joinpath(name).read_text(encoding="utf-8"))


def list_worlds() -> list[str]:
    """Names of the packaged worlds, sorted."""
    return sorted(_read("worlds.yaml"))


def get_world_cfg(name: str) -> dict[str, Any]:
    """A copy of world ``name``'s entry (``description``, ``world``, ``pretrain``).

    Raises:
        ProfileError: for an unknown name, listing the known ones.
    """
    worlds = _read("worlds.yaml")
    if name not in worlds:
        raise ProfileError(f"unknown world {name!r}; known worlds: {', '.join(list_worlds())}")
    return copy.deepcopy(worlds[name])


def parse_world_tag(tag: str) -> str:
    """The world name in a ``pretrained`` tag: ``"world:mini"`` → ``"mini"``.

    Raises:
        ProfileError: if the tag does not start with ``world:`` or names an unknown world.
    """
    if not isinstance(tag, str) or not tag.startswith(WORLD_PREFIX):
        raise ProfileError(f"pretrained tag {tag!r} does not name an offline world; expected 'world:<name>' "
                           f"with <name> one of {', '.join(list_worlds())}")
    name = tag[len(WORLD_PREFIX):]
    if name not in _read("worlds.yaml"):
        raise ProfileError(f"pretrained tag {tag!r}: unknown world {name!r}; known worlds: {', '.join(list_worlds())}")
    return name


def check_world_tag(tag: str) -> str | None:
    """``None`` if ``tag`` names a known world (building nothing), else a sentence saying what is wrong."""
    try:
        parse_world_tag(tag)
    except ProfileError as e:
        return str(e)
    return None


def classnames() -> list[str]:
    """The ten class names, in label order (``zero`` … ``nine``)."""
    return list(_read("datasets.yaml")["world-print"]["classnames"])


def templates() -> list[str]:
    """The zero-shot templates of the digit task (``"the number {}."``, ``"a digit {}."``)."""
    text = resources.files("wiseft.world").joinpath("templates.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def world_datasets() -> dict[str, dict[str, Any]]:
    """A copy of ``datasets.yaml``'s entries by dataset name (the registry's hidden ``.anchor`` keys left out)."""
    return {k: copy.deepcopy(v) for k, v in _read("datasets.yaml").items() if not k.startswith(".")}
