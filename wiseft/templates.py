"""Prompt templates for zero-shot heads: a registry of named sets.

A template is a string with one positional ``{}`` where the class name goes (``"a photo of a {}."``), the form
``open_clip.build_zero_shot_classifier`` formats. Sets come from three places:

- ``openai_imagenet`` (80 prompts) and ``simple_imagenet`` are open_clip's ``OPENAI_IMAGENET_TEMPLATES`` and
  ``SIMPLE_IMAGENET_TEMPLATES``, converted from lambdas, never copied;
- packaged YAML files ``wiseft/templates/<name>.yaml`` (CLIP's prompts for CIFAR, Cars, DTD, Food-101, SUN397;
  the wise-ft repository's for FMoW and iWildCam; ``simple``);
- ``file:<path>``: a text file with one template per line (blank lines and ``#`` comments skipped), or sets
  registered at run time with :func:`add_templates`.

Example:
    >>> from wiseft.templates import get_templates
    >>> get_templates("food101")
    ['a photo of {}, a type of food.']
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import Iterable

import yaml

from .errors import WiseftError

__all__ = ["ArticleTemplate", "list_templates", "get_templates", "add_templates", "validate_template"]

_OPEN_CLIP_SETS = {"openai_imagenet": "OPENAI_IMAGENET_TEMPLATES", "simple_imagenet": "SIMPLE_IMAGENET_TEMPLATES"}
_USER_SETS: dict[str, list[str]] = {}


class ArticleTemplate(str):
    """A template that puts "a" or "an" before the class name (and turns ``_`` into spaces).

    It is a ``str`` (so anything that expects a template string accepts it); only :meth:`format` differs.
    The wise-ft repository's FMoW prompts use this rule (``append_proper_article``).

    Example:
        >>> ArticleTemplate("satellite photo of {}.").format("airport")
        'satellite photo of an airport.'
    """

    def format(self, *args, **kwargs) -> str:  # noqa: A003 - mirrors str.format
        name = str(args[0]).replace("_", " ")
        article = "an" if name[:1].lower() in "aeiou" and name else "a"
        return str.format(self, f"{article} {name}")


def validate_template(template: str, where: str) -> str:
    """Return ``template`` if it has exactly one ``{}`` and no other braces.

    Raises:
        WiseftError: naming ``where`` (file and line, or set and index) and the template.
    """
    if not isinstance(template, str):
        raise WiseftError(f"{where}: template {template!r} is not a string")
    rest = template.replace("{}", "")
    if template.count("{}") != 1 or "{" in rest or "}" in rest:
        hint = " (write the class name as '{}', not '{c}')" if "{c}" in template else ""
        raise WiseftError(f"{where}: template {template!r} must contain exactly one '{{}}' where the class name "
                          f"goes and no other braces{hint}")
    return template


@functools.lru_cache(maxsize=1)
def _packaged_sets() -> dict[str, list[str]]:
    sets: dict[str, list[str]] = {}
    for entry in sorted(resources.files("wiseft").joinpath("templates").iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".yaml"):
            name = entry.name[: -len(".yaml")]
            sets[name] = _parse_yaml_set(entry.read_text(encoding="utf-8"), f"wiseft/templates/{entry.name}")
    return sets


def _parse_yaml_set(text: str, where: str) -> list[str]:
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or not isinstance(data.get("templates"), list) or not data["templates"]:
        raise WiseftError(f"{where}: expected a mapping with a non-empty 'templates' list")
    out: list[str] = []
    for i, item in enumerate(data["templates"]):
        item_where = f"{where}: templates[{i}]"
        if isinstance(item, dict):
            unknown = set(item) - {"template", "article"}
            if unknown:
                raise WiseftError(f"{item_where}: unknown keys {sorted(unknown)}; allowed: template, article")
            tmpl = validate_template(item.get("template"), item_where)
            out.append(ArticleTemplate(tmpl) if item.get("article") else tmpl)
        else:
            out.append(validate_template(item, item_where))
    return out


def _read_template_file(path: Path) -> list[str]:
    if not path.is_file():
        raise WiseftError(f"template file {str(path)!r} does not exist (file:<path> needs one template per line)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise WiseftError(f"template file {str(path)!r} cannot be read as UTF-8 text: {e}") from e
    out = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if line and not line.startswith("#"):
            out.append(validate_template(line, f"{path}:{lineno}"))
    if not out:
        raise WiseftError(f"template file {str(path)!r} holds no templates (one per line, '#' starts a comment)")
    return out


def list_templates() -> list[str]:
    """Names of all template sets: open_clip's, the packaged YAML ones and those added at run time."""
    return sorted(set(_OPEN_CLIP_SETS) | set(_packaged_sets()) | set(_USER_SETS))


def get_templates(name: str) -> list[str]:
    """The templates of a set, as a new list of ``{}`` strings.

    Args:
        name: a registered set (see :func:`list_templates`) or ``file:<path>``.

    Raises:
        WiseftError: unknown set (listing the known ones), or a malformed template naming file and line.
    """
    if name.startswith("file:"):
        return _read_template_file(Path(name[len("file:"):]).expanduser())
    if name in _USER_SETS:
        return list(_USER_SETS[name])
    if name in _OPEN_CLIP_SETS:
        import open_clip

        return [fn("{}") for fn in getattr(open_clip, _OPEN_CLIP_SETS[name])]
    packaged = _packaged_sets()
    if name in packaged:
        return list(packaged[name])
    raise WiseftError(f"unknown template set {name!r}; known sets: {', '.join(list_templates())} "
                      f"(or file:<path> with one template per line)")


def add_templates(name: str, templates: Iterable[str], overwrite: bool = False) -> None:
    """Register a template set under ``name`` for this process.

    Raises:
        WiseftError: if a template is malformed, the set is empty, or ``name`` exists and ``overwrite`` is false.
    """
    if name.startswith("file:"):
        raise WiseftError(f"template set name {name!r} may not start with 'file:'")
    if name in list_templates() and not overwrite:
        raise WiseftError(f"template set {name!r} already exists; pass overwrite=True to replace it")
    items = [validate_template(t, f"template set {name!r}[{i}]") for i, t in enumerate(templates)]
    if not items:
        raise WiseftError(f"template set {name!r} is empty")
    _USER_SETS[name] = items
