"""Every pipeline and figure notebook ends by saying what its run shows, in a cell nbval checks (issue 17).

The course assignments end with questions for the student instead: what the run shows is theirs to say."""

from __future__ import annotations

import pytest

from wiseft.figures.claims import CLAIMS
from wiseft.pipeline.notebooks import COURSES, build_notebook, notebook_paths

NOTEBOOKS = [p for p in notebook_paths() if p not in {*COURSES, *COURSES.values()}]


@pytest.mark.parametrize("rel", NOTEBOOKS)
def test_last_cell_states_what_the_run_shows(rel):
    nb = build_notebook(rel)
    last, heading = nb.cells[-1], nb.cells[-2]
    assert heading.cell_type == "markdown" and heading.source.startswith("## What this run shows")
    assert last.cell_type == "code"
    assert last.source.startswith("# NBVAL_CHECK_OUTPUT\nprint(what_this_run_shows(")
    name = rel.rsplit("/", 1)[-1].removesuffix(".ipynb")
    key = "spec.name" if rel.startswith("figures/") else repr(name)
    assert f", {key}))" in last.source
    assert name in CLAIMS  # a claim is registered for it, not the "no claim" fallback
