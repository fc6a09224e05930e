"""Existence checks behind profile validation: datasets, models, pretrained weights, template sets.

Each check returns ``None`` when the name is fine, or a sentence that says what is wrong and what exists.
The profile loader turns that sentence into a :class:`~wiseft.errors.ProfileError` naming the file and key.
Imports are lazy so that loading a profile stays cheap.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["check_dataset", "check_model", "check_templates", "add_datasets"]


def check_dataset(name: str) -> str | None:
    """``None`` if ``name`` is in the dataset registry, else a message listing the known names."""
    from .datasets import list_datasets

    known = list_datasets()
    if name in known:
        return None
    return f"unknown dataset {name!r}; known datasets: {', '.join(known)} (add your own with a dataset YAML)"


def add_datasets(path: Path) -> str | None:
    """Register the datasets of a user's YAML file; ``None`` on success, else what is wrong with it."""
    from .datasets import add_dataset_config
    from .errors import DatasetError

    try:
        add_dataset_config(path)
    except DatasetError as e:
        return str(e)
    return None


def check_model(name: str, pretrained: str | None) -> str | None:
    """``None`` if open_clip (or the offline world) knows ``name`` and ``pretrained`` can be resolved."""
    if pretrained is not None and pretrained.startswith("world:"):
        from . import world

        if name == world.MODEL_NAME:  # the world's own model: no need to import open_clip (seconds) to know it
            return world.check_world_tag(pretrained)
    import open_clip

    from .errors import WiseftError
    from .models import ensure_model_config  # registers the offline world's configs when needed
    from .weights import looks_like_path

    try:
        ensure_model_config(name)
    except WiseftError:
        import difflib

        close = difflib.get_close_matches(name, open_clip.list_models(), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        return f"unknown model {name!r} (not an open_clip model config){hint}"
    if pretrained is None:
        return None
    if pretrained.startswith("world:"):
        from . import world

        return world.check_world_tag(pretrained)
    if looks_like_path(pretrained):
        if not Path(pretrained).expanduser().is_file():
            return f"pretrained weights file {pretrained!r} does not exist"
        return None
    tags = open_clip.list_pretrained_tags_by_model(name)
    if pretrained not in tags:
        return (f"unknown pretrained tag {pretrained!r} for model {name!r}; open_clip knows: "
                f"{', '.join(tags) or 'none'} (or give a path to a weights file)")
    return None


def check_templates(name: str) -> str | None:
    """``None`` if ``name`` is a registered template set or ``file:<path>`` to an existing file."""
    from .templates import list_templates

    if name.startswith("file:"):
        path = Path(name[5:]).expanduser()
        return None if path.is_file() else f"template file {str(path)!r} does not exist"
    known = list_templates()
    if name in known:
        return None
    return f"unknown template set {name!r}; known sets: {', '.join(known)} (or file:<path> with one template per line)"
