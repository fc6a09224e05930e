"""The committed notebooks: one structure, thin cells, in sync with the generator, the steps registry and nbval."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from wiseft.course import strip_notebook
from wiseft.figures import get_figure, list_figures
from wiseft.pipeline import get_step, list_steps
from wiseft.pipeline.notebooks import COURSES, check_notebooks, notebook_paths

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
ALL = sorted(p.relative_to(NOTEBOOKS).as_posix() for p in NOTEBOOKS.rglob("*.ipynb")
             if ".ipynb_checkpoints" not in p.parts)
CHECK = "# NBVAL_CHECK_OUTPUT"


def read(rel: str):
    return nbformat.read(NOTEBOOKS / rel, as_version=4)


def code_cells(rel: str):
    return [c for c in read(rel).cells if c.cell_type == "code"]


def test_every_step_has_its_notebook_and_every_notebook_is_a_step_or_the_course():
    expected = {get_step(name).notebook for name in list_steps()}
    assert expected <= set(ALL), f"steps without a notebook: {sorted(expected - set(ALL))}"
    strays = [rel for rel in ALL if rel not in expected and not rel.startswith("course/")]
    assert not strays, f"notebooks that are neither a pipeline step nor course material: {strays}"
    assert set(COURSES) | set(COURSES.values()) <= set(ALL)
    # and every registered figure or table has a step (hence a notebook)
    assert set(list_figures()) <= set(list_steps())


@pytest.mark.parametrize("rel", ALL)
def test_one_parameters_cell_with_the_mini_defaults(rel):
    from papermill.translators import PythonTranslator

    cells = [c for c in read(rel).cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"{rel}: {len(cells)} cells tagged 'parameters'"
    params = {p.name: p.default for p in PythonTranslator.inspect(cells[0])}
    assert params == {"profile": '"mini"', "overrides": "[]", "run_dir": "None", "device": "None"}, params
    assert cells[0].cell_type == "code"


@pytest.mark.parametrize("rel", ALL)
def test_code_cells_are_short_and_define_nothing(rel):
    for i, cell in enumerate(code_cells(rel)):
        lines = cell.source.splitlines()
        assert len(lines) <= 10, f"{rel}, code cell {i + 1}: {len(lines)} lines (at most 10)"
        tree = ast.parse(cell.source)
        defined = [type(n).__name__ for n in ast.walk(tree)
                   if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda))]
        # the course's students write one function where the solution region is (Task 1's interpolate)
        marked = "### BEGIN SOLUTION" in cell.source or "# YOUR CODE HERE" in cell.source
        if rel.startswith("course/") and marked:
            defined = [d for d in defined if d != "FunctionDef"]
        assert not defined, f"{rel}, code cell {i + 1}: {defined} (notebooks call wiseft, they define nothing)"


@pytest.mark.parametrize("rel", [r for r in ALL if not r.startswith("course/")])
def test_pipeline_notebooks_have_no_control_flow(rel):
    for i, cell in enumerate(code_cells(rel)):
        flow = [type(n).__name__ for n in ast.walk(ast.parse(cell.source))
                if isinstance(n, (ast.For, ast.While, ast.If, ast.Try, ast.With))]
        assert not flow, f"{rel}, code cell {i + 1}: {flow}; move the logic into wiseft"


@pytest.mark.parametrize("rel", ALL)
def test_structure_title_imports_parameters_then_the_run(rel):
    cells = read(rel).cells
    assert cells[0].cell_type == "markdown" and cells[0].source.startswith("# "), f"{rel}: no title first"
    code = [c for c in cells if c.cell_type == "code"]
    assert code[0].source.lstrip().startswith(("import", "from")), f"{rel}: imports come first"
    assert "parameters" in code[1].metadata.get("tags", []), f"{rel}: the parameters cell follows the imports"
    assert code[2].source.startswith("ctx = open_run(profile, overrides, run_dir, device)"), rel
    assert any(CHECK in c.source for c in code), f"{rel}: no cell with key numbers for nbval ({CHECK})"


@pytest.mark.parametrize("name", list_figures())
def test_figure_notebooks_use_their_registry_entry_and_stop_cleanly(name):
    rel = get_step(name).notebook
    source = "\n".join(c.source for c in code_cells(rel))
    assert f"spec = get_figure({name!r})" in source
    assert "stop_if(spec.requires(df))" in source
    if get_figure(name).kind == "figure":
        assert "save_figure(" in source and "show(fig)" in source
    else:
        assert "save_table" in source and "print(markdown(" in source


def test_checked_cells_only_print():
    """nbval compares every stream of a checked cell, stderr too: work (and its log lines) happens elsewhere."""
    volatile = re.compile(r"describe_run|describe_world|ctx\.dir|figures_dir|time\.")
    for rel in ALL:
        for i, cell in enumerate(code_cells(rel)):
            if not cell.source.startswith(CHECK):
                continue
            where = f"{rel}, code cell {i + 1}"
            assert not volatile.search(cell.source), f"{where} prints volatile output"
            for stmt in ast.parse(cell.source).body:
                call = stmt.value if isinstance(stmt, ast.Expr) else None
                assert isinstance(call, ast.Call) and getattr(call.func, "id", "") in ("print", "stop_if"), \
                    f"{where}: a checked cell only prints (compute in the cell before)"


def test_notebooks_match_the_generator_and_the_course_copy_is_stripped():
    assert check_notebooks(NOTEBOOKS) == [], "run: python -m wiseft.pipeline.notebooks make"
    assert sorted(notebook_paths() + list(COURSES.values())) == ALL


@pytest.mark.parametrize("solved_rel, student_rel", list(COURSES.items()))
def test_students_copy_is_the_stripped_solved_notebook(solved_rel, student_rel):
    solved, student = read(solved_rel), read(student_rel)
    stripped = strip_notebook(solved)
    assert [(c.cell_type, c.source) for c in student.cells] == [(c.cell_type, c.source) for c in stripped.cells], \
        f"regenerate: python -m wiseft.course strip notebooks/{solved_rel} -o notebooks/{student_rel}"
    text = "\n".join(c.source for c in student.cells)
    assert "### BEGIN SOLUTION" not in text and "(1 - alpha) * theta_0[k]" not in text
    assert all(not c.get("outputs") for c in student.cells if c.cell_type == "code")


def test_sanitize_config_compiles_and_blanks_volatile_text():
    from nbval.plugin import get_sanitize_patterns

    text = (REPO / "tests" / "notebooks" / "sanitize.cfg").read_text()
    rules = [(re.compile(regex), replace) for regex, replace in get_sanitize_patterns(text)]
    assert len(rules) == text.count("\nregex: "), "every rule needs 'regex: ' and 'replace: ' on consecutive lines"

    def sanitize(text: str) -> str:
        for regex, replace in rules:
            text = regex.sub(replace, text)
        return text

    volatile = ["profile mini (wiseft/profiles/mini.yaml); run folder /home/u/wiseft/runs/mini; device cpu",
                "<Figure size 640x480 with 1 Axes> at 0x7f3a2b1c9d50",
                "step done in 12.3 s", "2024-05-01T12:00:03+00:00",
                "eval world-print:  45%|████▌     | 9/20 [00:01<00:02,  4.51it/s]"]
    assert len({sanitize(v) for v in volatile[:1] + [volatile[0].replace("/home/u", "/tmp/x")]}) == 1
    for text in volatile[1:]:
        assert sanitize(text) != text, text
    numbers = "| Zero-shot | 71.3 | 40.2 | 55.8 |"
    assert sanitize(numbers) == numbers  # the key numbers are never blanked


def test_nbval_collects_in_pipeline_order():
    """nbval sorts files alphabetically; notebooks/conftest.py puts them in the order of steps.yaml."""
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                          "--nbval-lax", "notebooks"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    files = list(dict.fromkeys(line.split("::")[0] for line in out.stdout.splitlines() if "::" in line))
    assert files == [f"notebooks/{rel}" for rel in notebook_paths()], files
