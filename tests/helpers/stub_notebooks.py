"""Placeholder notebooks for the pipeline's steps, for tests of the runner that do not execute real notebooks."""

from __future__ import annotations

from pathlib import Path

import nbformat

from wiseft.pipeline import get_step, list_steps


def write_step_notebooks(folder: Path, steps: list[str] | None = None, body: str = "") -> None:
    """One notebook per step (default: every step) at the step's path under ``folder``: ``# <step>`` + ``body``."""
    for name in steps or list_steps():
        path = folder / get_step(name).notebook
        path.parent.mkdir(parents=True, exist_ok=True)
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(f"# {name}\n{body}" if body else f"# {name}")]
        nbformat.write(nb, path)
