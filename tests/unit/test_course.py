"""Stripping solutions from the solved assignment, and the sweep checker's diagnoses."""

from __future__ import annotations

import runpy
import sys
import warnings

import nbformat
import pytest

from tests.helpers import synth_results as S
from wiseft.course import CODE_STUB, CourseError, check_sweep, main, strip_notebook, strip_source

SOLVED_CODE = """def mix(theta_0, theta_1, alpha):
    ### BEGIN SOLUTION
    return {k: (1 - alpha) * theta_0[k] + alpha * theta_1[k] for k in theta_0}
    ### END SOLUTION

print("kept")"""


def solved_notebook():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Assignment\nWhy does WiSE-FT work?\n### BEGIN SOLUTION\nBecause...\n### END SOLUTION"),
        nbformat.v4.new_code_cell(SOLVED_CODE, execution_count=3,
                                  outputs=[nbformat.v4.new_output("stream", name="stdout", text="kept\n")]),
        nbformat.v4.new_code_cell("alphas = [0, 0.5, 1]\nsweep = run(alphas)", metadata={"tags": ["solution"]}),
        nbformat.v4.new_code_cell("check_sweep(results, reference)"),
    ]
    return nb


def test_strip_source_keeps_indentation_and_the_rest():
    out, n = strip_source(SOLVED_CODE)
    assert n == 1
    assert out.splitlines() == ["def mix(theta_0, theta_1, alpha):", "    # YOUR CODE HERE", f"    {CODE_STUB}", "",
                                'print("kept")']
    compile(out, "<stripped>", "exec")  # still valid Python


@pytest.mark.parametrize("source, match", [
    ("x = 1\n### END SOLUTION", "line 2: '### END SOLUTION' without"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "line 2: '### BEGIN SOLUTION' inside a region opened on line 1"),
    ("### BEGIN SOLUTION\nx = 1", "opened on line 1 has no"),
])
def test_malformed_markers_are_named(source, match):
    with pytest.raises(CourseError, match=match):
        strip_source(source, where="cell 2 (code)")


def test_strip_notebook_removes_solutions_and_outputs():
    nb = strip_notebook(solved_notebook())
    text = "\n".join(c.source for c in nb.cells)
    assert "Because" not in text and "(1 - alpha)" not in text and "run(alphas)" not in text
    assert "_Your answer here._" in nb.cells[0].source and "Why does WiSE-FT work?" in nb.cells[0].source
    assert nb.cells[2].source.endswith(CODE_STUB) and "solution" not in nb.cells[2].metadata.get("tags", [])
    assert nb.cells[3].source == "check_sweep(results, reference)"
    assert all(c.outputs == [] and c.execution_count is None for c in nb.cells if c.cell_type == "code")
    with pytest.raises(CourseError, match="no solution regions"):
        strip_notebook(nb)


def test_cli_strip_writes_a_copy_and_refuses_to_overwrite(tmp_path, monkeypatch):
    src = tmp_path / "solved.ipynb"
    nbformat.write(solved_notebook(), src)
    assert main(["strip", str(src), "-o", str(src)]) == 2
    assert "(1 - alpha)" in src.read_text()  # untouched
    out = tmp_path / "student.ipynb"
    # `python -m wiseft.course strip ...`, run in-process (a subprocess would spend seconds importing).
    monkeypatch.setattr(sys, "argv", ["wiseft.course", "strip", str(src), "-o", str(out)])
    with pytest.raises(SystemExit) as exit_info, warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # runpy: the module is already imported by this test
        runpy.run_module("wiseft.course", run_name="__main__", alter_sys=False)
    assert exit_info.value.code == 0
    assert "(1 - alpha)" not in out.read_text() and nbformat.read(out, as_version=4).nbformat == 4


# ----------------------------------------------------------------------------------------------- check
DATASETS = ["imagenet", "imagenet-r"]
ALPHAS = [0.0, 0.25, 0.5, 0.75, 1.0]


def reference_frame():
    return S.frame([r for r in S.core_rows(DATASETS, ALPHAS) if r["model"] == "ViT-B-16"])


def student(fn):
    return {a: {d: fn(d, a) for d in DATASETS} for a in ALPHAS}


def test_correct_sweep_passes_in_fraction_or_percent():
    good = student(lambda d, a: S.acc(d, "e2e", a) + 0.001)
    check = check_sweep(good, reference_frame())
    assert check.ok and "All 10 numbers match" in str(check)
    pct = {a: {d: 100 * v for d, v in row.items()} for a, row in good.items()}
    assert check_sweep(pct, reference_frame()).ok
    check.raise_if_failed()


def test_off_values_are_named_in_words():
    bad = student(lambda d, a: S.acc(d, "e2e", a) - (0.03 if a == 0.25 and d == "imagenet" else 0))
    check = check_sweep(bad, reference_frame())
    assert not check.ok
    expected = 100 * S.acc("imagenet", "e2e", 0.25)
    assert f"α=0.25: your ImageNet accuracy {expected - 3:.1f}% differs from wiseft's {expected:.1f}% (-3.0 pp)" in str(check)
    assert str(check).startswith("Hint: the endpoints are right but the mixtures are not")
    with pytest.raises(CourseError, match="1 of 10 numbers differ"):
        check.raise_if_failed()


@pytest.mark.parametrize("fn, hint", [
    (lambda d, a: S.acc(d, "e2e", 1 - a), "reversed"),
    (lambda d, a: (1 - a) * S.acc(d, "e2e", 0) + a * S.acc(d, "e2e", 1), "averaged the two models' accuracies"),
    (lambda d, a: S.acc(d, "e2e", 0 if a < 1 else 1), "does not change with α"),
    (lambda d, a: S.acc(d, "e2e", a) - (0.05 if a == 0 else 0), "α = 0 (the zero-shot model)"),
])
def test_common_mistakes_get_a_hint(fn, hint):
    check = check_sweep(student(fn), reference_frame())
    assert not check.ok and hint in check.hints[0] and hint in str(check).splitlines()[0], str(check)


def test_missing_alphas_and_datasets_are_reported():
    partial = {a: {"imagenet": S.acc("imagenet", "e2e", a)} for a in ALPHAS if a != 0.5}
    check = check_sweep(partial, reference_frame())
    text = str(check)
    assert "ImageNet-R: your results have no numbers" in text and "no numbers at α = 0.5" in text


def test_wide_and_long_frames_are_accepted():
    import pandas as pd

    wide = pd.DataFrame({"alpha": ALPHAS, **{d: [S.acc(d, "lc", a) for a in ALPHAS] for d in DATASETS}})
    assert check_sweep(wide, reference_frame(), mode="lc").ok
    long = wide.melt(id_vars="alpha", var_name="dataset", value_name="accuracy")
    assert check_sweep(long, reference_frame(), mode="lc", datasets=["imagenet"]).ok
    with pytest.raises(CourseError, match="expected a column 'alpha'"):
        check_sweep(pd.DataFrame({"a": [1]}), reference_frame())
