"""nbval itself, in both tiers, catches a regression planted in the real sweep code: WiSE-FT with α applied
reversed, on the toy task. The CHECK cell is the one the pipeline notebooks carry (``notebook_text.CHECK_RUN``);
its output is recorded from a sound run, then nbval runs it against the sound run and against the broken one,
with the exact tier's sanitize file and with the device tier's (scripts/run_tests.sh picks one by device)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tests.helpers.toy_task import build_toy_task, toy_profile
from wiseft.check import record_expected
from wiseft.pipeline import notebook_text as T
from wiseft.pipeline.execute import kernel_env
from wiseft.profile import load_profile
from wiseft.results import duplicate_keys, load_results
from wiseft.run import RunContext

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
#: the toy without the parts this test does not need (variants, k-shot, Fisher): a sweep of α ∈ {0, 0.5, 1}
OVERRIDES = ["finetune.variants=[]", "finetune.lc.shots=[]", "interpolation.fisher=false", "baselines.methods=[]"]


def _reversed_lerp_settings(theta0, theta1, alphas, **kwargs):
    """The planted bug: θ_α = (1−α)·θ₁ + α·θ₀, α applied reversed."""
    from wiseft.evaluation import lerp_settings

    return lerp_settings(theta1, theta0, alphas, **kwargs)


def _notebook(profile: Path, run: Path) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("from wiseft.check import check_run\nfrom wiseft.notebook import open_run"),
                nbformat.v4.new_code_cell(f"ctx = open_run({str(profile)!r}, {OVERRIDES!r}, {str(run)!r}, None)"),
                nbformat.v4.new_code_cell(T.CHECK_RUN)]
    for i, cell in enumerate(nb.cells, start=1):
        cell.execution_count = i  # as a recorded notebook has (nbval refuses outputs of cells never run)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def _nbval(folder: Path, cfg: str) -> str:
    with kernel_env():
        proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", "-v",
                               "--rootdir", str(folder), "--nbval-lax",
                               "--nbval-sanitize-with", str(REPO / "tests" / "notebooks" / cfg),
                               "sound.ipynb", "planted.ipynb"], cwd=folder, capture_output=True, text=True, timeout=300)
    return proc.stdout + proc.stderr


@pytest.mark.slow
def test_nbval_fails_a_planted_regression_in_both_tiers(tmp_path, tiny_model_name, monkeypatch):
    from wiseft.check import check_run
    from wiseft.steps import evaluate_all_finetuned, run_finetune, run_interpolation, run_zeroshot

    build_toy_task(tmp_path)
    profile = toy_profile(tmp_path, tiny_model_name)
    sound = RunContext(load_profile(profile, OVERRIDES), out_dir=tmp_path / "sound")
    run_zeroshot(sound)
    run_finetune(sound)
    evaluate_all_finetuned(sound)
    run_interpolation(sound)
    record_expected(load_results(sound.results_path), tmp_path / "expected" / "toy-cpu.json", profile="toy",
                    device="cpu", run_id=sound.run_id)

    shutil.copytree(sound.dir, tmp_path / "planted")
    planted = RunContext(load_profile(profile, OVERRIDES), out_dir=tmp_path / "planted")
    with monkeypatch.context() as m:
        m.setattr("wiseft.steps.interpolate.lerp_settings", _reversed_lerp_settings)
        run_interpolation(planted)
    assert duplicate_keys(planted.results_path) == []  # the broken sweep replaced the sound one's rows

    # Kernels register the tiny model and read the toy's expected values, as the notebooks read notebooks/expected.
    startup = tmp_path / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-tiny-model.py").write_text(
        f"import open_clip\nopen_clip.add_model_config({str(FIXTURES / (tiny_model_name + '.json'))!r})\n")
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("WISEFT_EXPECTED_DIR", str(tmp_path / "expected"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    folder = tmp_path / "nb"
    folder.mkdir()
    # The recorded output: what the CHECK cell prints on the sound run (check_run is all the cell calls).
    recorded = _notebook(profile, sound.dir)
    verdict = check_run(sound) + "\n"
    recorded.cells[2].outputs = [nbformat.v4.new_output("stream", name="stdout", text=verdict)]
    assert "ok    the sweep's ends are the zero-shot (α = 0) and fine-tuned (α = 1) models" in verdict, verdict
    nbformat.write(recorded, folder / "sound.ipynb")
    broken = nbformat.from_dict(recorded)
    broken.cells[1].source = f"ctx = open_run({str(profile)!r}, {OVERRIDES!r}, {str(planted.dir)!r}, None)"
    nbformat.write(broken, folder / "planted.ipynb")

    sound.close()  # the kernels open these run folders themselves: give back this process's locks first
    planted.close()
    for cfg in ("sanitize.cfg", "sanitize_device.cfg"):
        report = _nbval(folder, cfg)
        assert re.search(r"sound::ipynb::Cell 2 PASSED", report), (cfg, report)
        assert re.search(r"planted::ipynb::Cell 2 FAILED", report), (cfg, report)
        assert "FAIL  the sweep's ends are the zero-shot" in report, (cfg, report)
