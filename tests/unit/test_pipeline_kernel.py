"""The pipeline with real papermill kernels: execution, failure naming the cell, SIGKILL mid-step, the CLI.

Notebooks are tiny and generated in temporary folders; each kernel start costs a few seconds, so the tests
share kernels sparingly.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat
import pytest

from wiseft.errors import PipelineError
from wiseft.pipeline import get_step, run_pipeline
from wiseft.profile import profile_from_dict

REPO = Path(__file__).resolve().parents[2]
PARAMS = "profile = 'mini'\noverrides = []\nrun_dir = '.'\ndevice = None"


def notebook(folder: Path, step: str, *cells: str) -> Path:
    path = folder / get_step(step).notebook
    path.parent.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {step}"),
                nbformat.v4.new_code_cell(PARAMS, metadata={"tags": ["parameters"]})]
    nb.cells += [nbformat.v4.new_code_cell(textwrap.dedent(c).strip()) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def _copy_executor(source, dest, parameters, *, kernel_name, cwd, step):
    """Stands in for papermill where a kernel adds nothing to what a test checks."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(Path(source).read_bytes())
    return dest


def tiny_profile(steps):
    return profile_from_dict({"name": "tiny", "model": {"name": "m"}, "data": {"reference": "r"}, "steps": steps},
                             check_references=False)


def test_real_kernel_runs_skips_and_names_the_failing_cell(tmp_path):
    nbdir, run = tmp_path / "notebooks", tmp_path / "run"
    notebook(nbdir, "data", """
        import pathlib, sys, wiseft
        pathlib.Path(run_dir, "data.json").write_text(repr((profile, overrides, device)))
        print(sys.executable)
    """)
    notebook(nbdir, "zeroshot", "import pathlib\npathlib.Path(run_dir, 'zs.txt').write_text('ok')")
    out = run_pipeline(tiny_profile(["data", "zeroshot"]), profile_ref="mini", overrides=["seed=2"], out_dir=run,
                       notebooks_dir=nbdir, device="cpu")
    assert [o.status for o in out] == ["ran", "ran"]
    assert (run / "data.json").read_text() == repr(("mini", ["seed=2"], "cpu"))
    executed = nbformat.read(run / "notebooks" / "01_data.ipynb", as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)
    printed = "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.outputs)
    assert Path(printed.strip().splitlines()[-1]).resolve() == Path(sys.executable).resolve()
    assert not list((run / "notebooks").glob(".*"))  # no temporary copies left

    # Unchanged: both skipped, no kernel started.
    out = run_pipeline(tiny_profile(["data", "zeroshot"]), profile_ref="mini", overrides=["seed=2"], out_dir=run,
                       notebooks_dir=nbdir, device="cpu")
    assert [o.status for o in out] == ["skipped", "skipped"]

    # The second notebook now fails in its third cell.
    notebook(nbdir, "zeroshot", "x = 1", "raise ValueError('the head has 3 classes, the data 4')")
    with pytest.raises(PipelineError) as info:
        run_pipeline(tiny_profile(["data", "zeroshot"]), out_dir=run, notebooks_dir=nbdir)
    err = info.value
    assert "02_zeroshot.ipynb" in str(err) and "cell 4" in str(err) and "raise ValueError" in str(err)
    assert err.ename == "ValueError" and "3 classes" in err.evalue and err.cell == 4
    assert err.failed_notebook == run / "notebooks" / "02_zeroshot.failed.ipynb" and err.failed_notebook.is_file()
    assert not (run / "notebooks" / "02_zeroshot.ipynb").exists()  # the old complete copy is not left as current
    assert not (run / "steps" / "zeroshot.json").exists()
    assert (run / "steps" / "data.json").is_file() and (run / "data.json").is_file()  # earlier step kept


def test_sigkill_mid_step_leaves_nothing_that_looks_complete(tmp_path):
    nbdir, run = tmp_path / "notebooks", tmp_path / "run"
    gate = tmp_path / "hold"
    gate.write_text("1")
    notebook(nbdir, "data", "print('data done')")
    notebook(nbdir, "zeroshot", f"""
        import pathlib, time
        pathlib.Path(run_dir, "started").write_text("1")
        while pathlib.Path({str(gate)!r}).exists() and time.time() < {time.time() + 120}:
            time.sleep(0.2)
    """, "import pathlib\npathlib.Path(run_dir, 'zs.txt').write_text('complete')")
    script = textwrap.dedent(f"""
        from wiseft.pipeline import run_pipeline
        from wiseft.profile import profile_from_dict
        p = profile_from_dict({{"name": "tiny", "model": {{"name": "m"}}, "data": {{"reference": "r"}},
                               "steps": ["data", "zeroshot"]}}, check_references=False)
        run_pipeline(p, out_dir={str(run)!r}, notebooks_dir={str(nbdir)!r})
    """)
    # The first step is done beforehand without a kernel (markers do not depend on the executor): the subprocess
    # then starts a single kernel, for the step it is killed in.
    run_pipeline(tiny_profile(["data", "zeroshot"]), out_dir=run, notebooks_dir=nbdir, only=["data"],
                 executor=_copy_executor)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 90
        while not (run / "started").exists():
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.time() < deadline, "the step never started"
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)  # the runner, mid-step
        proc.wait(timeout=30)
    finally:
        try:  # the kernel the killed runner started (same session); it would exit on its own soon after
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.stderr.close()
    assert (run / "steps" / "data.json").is_file()
    assert not (run / "steps" / "zeroshot.json").exists()
    assert not (run / "notebooks" / "02_zeroshot.ipynb").exists()
    assert not (run / "notebooks" / "02_zeroshot.failed.ipynb").exists()
    assert (run / "notebooks" / ".02_zeroshot.running.ipynb").exists()  # hidden, never mistaken for a result

    # The rerun skips the finished step and reruns the killed one (the kernel's part was shown above).
    out = run_pipeline(tiny_profile(["data", "zeroshot"]), out_dir=run, notebooks_dir=nbdir, executor=_copy_executor)
    assert [(o.step, o.status) for o in out] == [("data", "skipped"), ("zeroshot", "ran")]
    assert (run / "notebooks" / "02_zeroshot.ipynb").is_file()
    assert not (run / "notebooks" / ".02_zeroshot.running.ipynb").exists()
    assert json.loads((run / "steps" / "zeroshot.json").read_text())["step"] == "zeroshot"


def test_cli_exits_nonzero_naming_notebook_and_cell(tmp_path, monkeypatch, capsys):
    from wiseft import registries
    from wiseft.cli import main

    # Name checks belong to the datasets/world modules, which this test does not need.
    monkeypatch.setattr(registries, "check_dataset", lambda name: None)
    monkeypatch.setattr(registries, "check_model", lambda name, pretrained: None)
    nbdir = tmp_path / "notebooks"
    notebook(nbdir, "data", "import math", "math.sqrt(-1)")
    yaml_path = tmp_path / "tiny.yaml"
    yaml_path.write_text("name: tiny\nmodel: {name: m}\ndata: {reference: r}\nsteps: [data]\n")
    code = main(["-q", "run", "--profile", str(yaml_path), "--out", str(tmp_path / "run"), "--notebooks", str(nbdir)])
    err = capsys.readouterr().err
    assert code == 1
    assert "01_data.ipynb failed in cell 4 (`math.sqrt(-1)`): ValueError: math domain error" in err
    assert (tmp_path / "run" / "report.md").is_file()
