"""The repository's notebooks, executed by papermill through ``run_pipeline`` on the toy task (a tiny random
CLIP and three colour classes): the steps run, figures and tables are written, a figure the data cannot feed
stops cleanly, and the report links what was made.

Each notebook starts its own kernel (≈5 s with torch imported on an idle machine), so the test runs the four
pipeline steps and four figure notebooks, one of each kind (a figure, a stop, a table and the sweep tables), then
the solved course assignments on the same run.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat
import pytest

from tests.helpers.toy_task import build_toy_task, toy_profile
from wiseft.pipeline import run_pipeline
from wiseft.pipeline.execute import execute_notebook, resolve_kernel
from wiseft.profile import load_profile

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"


def outputs(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


@pytest.mark.slow
def test_pipeline_notebooks_on_the_toy_task(tmp_path, tiny_model_name, monkeypatch):
    build_toy_task(tmp_path)
    baselines = ["baselines"] if importlib.util.find_spec("wiseft.steps.baselines") else []
    steps = ["data", "zeroshot", "finetune", "interpolate", *baselines, "fig1", "fig9", "table1", "sweep_table"]
    profile = toy_profile(tmp_path, tiny_model_name, steps=f"steps: [{', '.join(steps)}]\n")
    # Kernels are processes of their own: an IPython startup file registers the tiny model config in each.
    startup = tmp_path / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-tiny-model.py").write_text(
        f"import open_clip\nopen_clip.add_model_config({str(FIXTURES / (tiny_model_name + '.json'))!r})\n")
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # two shared cores: one thread per kernel is faster
    run = tmp_path / "run"

    outcomes = run_pipeline(load_profile(profile), profile_ref=str(profile), out_dir=run,
                            notebooks_dir=REPO / "notebooks")

    assert [(o.step, o.status) for o in outcomes] == [(s, "ran") for s in steps]
    figures = sorted(p.name for p in (run / "figures").iterdir())
    assert figures == ["fig1.pdf", "fig1.png", "sweep_table_e2e.csv", "sweep_table_e2e.md", "sweep_table_lc.csv",
                       "sweep_table_lc.md", "table1.csv", "table1.md"]
    executed = run / "notebooks"
    assert "All 2 datasets are in place" in outputs(executed / "01_data.ipynb")
    assert "| zeroshot |" in outputs(executed / "02_zeroshot.ipynb")
    assert "| finetuned e2e |" in outputs(executed / "03_finetune.ipynb")
    interpolate = outputs(executed / "04_interpolate.ipynb")
    assert "Table 1 layout" in interpolate and "WiSE-FT E2E, optimal α" in interpolate and "| 0.5 |" in interpolate
    fig9 = outputs(executed / "figures" / "fig9.ipynb")
    assert "Not drawn: this profile has none of the further shifts" in fig9 and "(skipped:" in fig9
    fig1 = nbformat.read(executed / "figures" / "fig1.ipynb", as_version=4)
    assert any("image/png" in o.get("data", {}) for c in fig1.cells if c.cell_type == "code" for o in c.outputs)
    assert "no counterpart among the paper's tables" in outputs(executed / "figures" / "table1.ipynb")
    report = (run / "report.md").read_text()
    assert "![fig1](figures/fig1.png)" in report and "### table1" in report and "### sweep_table_e2e" in report

    # Unchanged: every step is skipped without starting a kernel.
    again = run_pipeline(load_profile(profile), profile_ref=str(profile), out_dir=run,
                         notebooks_dir=REPO / "notebooks")
    assert {o.status for o in again} == {"skipped"}

    # The solved course assignments on the same run (another profile than mini): the students' numbers match.
    params = {"profile": str(profile), "overrides": [], "run_dir": str(run), "device": None}
    course = execute_notebook(REPO / "notebooks" / "course" / "wiseft_assignment_solved.ipynb",
                              tmp_path / "course.ipynb", params, kernel_name=resolve_kernel(), step="course")
    text = outputs(course)
    assert "Your θ_α matches wiseft's in every tensor at α = 0, 0.25, 0.8, 1." in text
    assert "numbers match wiseft's within 0.5 pp" in text and "Your table and best α values match" in text
    choose = execute_notebook(REPO / "notebooks" / "course" / "wiseft_choose_alpha_solved.ipynb",
                              tmp_path / "choose.ipynb", params, kernel_name=resolve_kernel(), step="course")
    text = outputs(choose)
    assert "Right: α = " in text and "Your outcome table matches wiseft's numbers" in text
