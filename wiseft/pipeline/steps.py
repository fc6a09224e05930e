"""The step registry: which notebook each pipeline step runs, what it needs and what it writes.

The steps are data (``steps.yaml`` in this package); this module reads them and chooses the steps of a run.
A step whose notebook lives under ``figures/`` is a figure step: the profile's ``figures.include`` filters it.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field
from importlib import resources
from typing import Literal, Sequence

import yaml

from ..errors import PipelineError, ProfileError

__all__ = ["Step", "list_steps", "get_step", "select_steps", "upstream"]


@dataclass(frozen=True)
class Step:
    """One pipeline step.

    Attributes:
        name: the step's name (``--only`` takes it).
        notebook: the notebook's path relative to the notebooks folder.
        depends: steps whose done-markers are part of this step's fingerprint.
        produces: globs (relative to the run folder) of the files the step writes.
        scope: ``run`` (per profile or suite member) or ``suite`` (once per suite, over all members).
        description: one line for the report.
    """

    name: str
    notebook: str
    depends: tuple[str, ...] = ()
    produces: tuple[str, ...] = ()
    scope: Literal["run", "suite"] = "run"
    description: str = ""
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def is_figure(self) -> bool:
        """Whether the step draws a paper figure or table (its notebook is under ``figures/``)."""
        return self.notebook.startswith("figures/")


@functools.lru_cache(maxsize=1)
def _load() -> tuple[Step, ...]:
    raw = yaml.safe_load(resources.files("wiseft.pipeline").joinpath("steps.yaml").read_text(encoding="utf-8"))
    steps = []
    for item in raw["steps"]:
        item = dict(item)
        steps.append(Step(name=item.pop("name"), notebook=item.pop("notebook"),
                          depends=tuple(item.pop("depends", ())), produces=tuple(item.pop("produces", ())),
                          scope=item.pop("scope", "run"), description=item.pop("description", ""), extra=item))
    names = [s.name for s in steps]
    for s in steps:  # the registry is package data: a broken entry is a bug, not a user error
        assert all(d in names[: names.index(s.name)] for d in s.depends), f"step {s.name}: unknown or later dependency"
    return tuple(steps)


def list_steps(scope: str | None = None) -> list[str]:
    """Step names in execution order (optionally only those of one ``scope``)."""
    return [s.name for s in _load() if scope is None or s.scope == scope]


def get_step(name: str) -> Step:
    """The step called ``name`` (a copy).

    Raises:
        PipelineError: listing the known steps.
    """
    for s in _load():
        if s.name == name:
            return copy.deepcopy(s)
    raise PipelineError(f"unknown pipeline step {name!r}; known steps: {', '.join(list_steps())}")


def upstream(name: str) -> list[str]:
    """Every step ``name`` depends on, directly or through others, in execution order."""
    steps = {s.name: s for s in _load()}
    seen: set[str] = set()
    todo = list(steps[name].depends)
    while todo:
        dep = todo.pop()
        if dep not in seen:
            seen.add(dep)
            todo.extend(steps[dep].depends)
    return [n for n in steps if n in seen]


def select_steps(scope: str, *, profile_steps: Sequence[str] | None = None, figures: Sequence[str] | None = None,
                 only: Sequence[str] | None = None) -> list[Step]:
    """The steps of one ``scope`` to run, in order.

    Args:
        profile_steps: the profile's ``steps`` (``None``: all); filters every step by name.
        figures: the profile's ``figures.include`` (``None``: every figure step); filters the figure steps.
        only: ``--only`` (``None``: no restriction).

    Raises:
        ProfileError: for unknown names in ``steps`` or ``figures.include``.
        PipelineError: for unknown names in ``only``.
    """
    known = list_steps()
    for key, names in (("steps", profile_steps), ("figures.include", figures)):
        for n in names or ():
            if n not in known:
                raise ProfileError(f"profile key '{key}': unknown step {n!r}; known steps: {', '.join(known)}")
    for n in only or ():
        if n not in known:
            raise PipelineError(f"--only {n}: unknown step; known steps: {', '.join(known)}")
    chosen = []
    for s in _load():
        if s.scope != scope:
            continue
        if profile_steps is not None and s.name not in profile_steps:
            continue
        if s.is_figure and figures is not None and s.name not in figures:
            continue
        if only is not None and s.name not in only:
            continue
        chosen.append(copy.deepcopy(s))
    return chosen
