"""One shared kernel for a run's notebooks: each notebook still starts clean (variables, early stops, figures)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from wiseft.pipeline.warm import WarmKernel


def _notebook(path: Path, *cells: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, path)
    return path


def _text(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))


@pytest.mark.slow
def test_a_shared_kernel_starts_every_notebook_clean(tmp_path):
    from wiseft.errors import PipelineError

    shared = "print('shared cell')"  # the same source in both notebooks: a stop lets cells already in `In` run
    first = _notebook(tmp_path / "a.ipynb", "secret = 42", shared,
                      "from wiseft.notebook import stop_if\nstop_if('nothing to draw')", "print('after the stop')")
    second = _notebook(tmp_path / "b.ipynb", "print('defined' if 'secret' in dir() else 'clean')", shared,
                       "print('ran to the end')")
    failing = _notebook(tmp_path / "c.ipynb", "raise ValueError('boom')")
    with WarmKernel() as kernel:
        kernel(first, tmp_path / "out" / "a.ipynb", {}, kernel_name="python3", step="a")
        kernel(second, tmp_path / "out" / "b.ipynb", {}, kernel_name="python3", step="b")
        with pytest.raises(PipelineError, match="step 'c'.*ValueError: boom"):
            kernel(failing, tmp_path / "out" / "c.ipynb", {}, kernel_name="python3", step="c")
        kernel(second, tmp_path / "out" / "b2.ipynb", {}, kernel_name="python3", step="b")  # still usable
        assert kernel.notebooks == 4
    a = _text(tmp_path / "out" / "a.ipynb")
    assert "Not drawn: nothing to draw" in a and "(skipped: nothing to draw)" in a and "after the stop" not in a
    b = _text(tmp_path / "out" / "b.ipynb")
    assert b == "clean\nshared cell\nran to the end\n"
    assert _text(tmp_path / "out" / "b2.ipynb") == b
