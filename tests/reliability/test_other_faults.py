"""The rest of issue 19 (item 7): file modes follow the umask, `data verify` counts what it decoded, an
interrupted run never leaves the previous run's report looking current, and Ctrl-C ends a notebook step
without a kernel traceback. (`evaluate` with NaN weights or a bogus --method: test_sidecar_schema.py.)"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from tests.helpers.stub_notebooks import write_step_notebooks
from wiseft.io import atomic_write_text

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o007, 0o660), (0o077, 0o600)])
def test_atomically_written_files_follow_the_umask(tmp_path, make_classifier, umask, mode):
    from wiseft.checkpoint import save_classifier

    old = os.umask(umask)
    try:
        text = atomic_write_text(tmp_path / "profile.yaml", "a: 1\n")
        weights, sidecar = save_classifier(make_classifier(), tmp_path / "clf", {"alpha": None})
    finally:
        os.umask(old)
    for path in (text, weights, sidecar):
        assert stat.S_IMODE(path.stat().st_mode) == mode, path


def test_data_verify_counts_only_the_images_it_decoded(tmp_path, clean_registry, capsys):
    from tests.helpers.toy_task import build_toy_task
    from wiseft.cli import main
    from wiseft.datasets import add_dataset_config

    add_dataset_config(build_toy_task(tmp_path))
    images = sorted((tmp_path / "toy" / "test").rglob("*.png"))
    for path in images[:5]:
        path.write_bytes(path.read_bytes()[:40])  # truncated PNGs
    assert main(["data", "verify", "toy", "--root", str(tmp_path), "--split", "test"]) == 1
    out = capsys.readouterr().out
    assert f"toy/test: {len(images)} images (expected {len(images)}), {len(images) - 5} decoded" in out, out
    assert "5 unreadable file(s)" in out and all(str(p) in out for p in images[:5])


class _Executor:
    """Stands in for papermill; ``interrupt_at`` raises KeyboardInterrupt there, as Ctrl-C would."""

    def __init__(self, interrupt_at: str | None = None):
        self.interrupt_at, self.reports = interrupt_at, {}

    def __call__(self, source, dest, parameters, *, kernel_name, cwd, step):
        self.reports[step] = (Path(parameters["run_dir"]) / "report.md").read_text()
        if step == self.interrupt_at:
            raise KeyboardInterrupt
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(Path(source).read_bytes())
        return dest


def _profile():
    from wiseft.profile import profile_from_dict

    return profile_from_dict({"name": "tiny", "model": {"name": "m"}, "data": {"reference": "r"},
                              "steps": ["data", "zeroshot", "finetune"]}, check_references=False)


def test_an_interrupted_run_never_leaves_the_previous_report_looking_current(tmp_path):
    from wiseft.pipeline import run_pipeline

    run, nbdir = tmp_path / "run", tmp_path / "notebooks"
    write_step_notebooks(nbdir, ["data", "zeroshot", "finetune"])
    run_pipeline(_profile(), out_dir=run, notebooks_dir=nbdir, executor=_Executor())
    finished = (run / "report.md").read_text()
    assert "has not finished" not in finished and "stopped" not in finished

    # While a run is under way (or after it was killed mid-step), the report says so.
    interrupted = _Executor(interrupt_at="zeroshot")
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(_profile(), out_dir=run, notebooks_dir=nbdir, executor=interrupted, force=True)
    assert "has not finished" in interrupted.reports["data"]
    after = (run / "report.md").read_text()
    assert after != finished and "interrupted (Ctrl-C)" in after and "rerun to continue" in after


_DRIVER = """
import sys
from pathlib import Path
from wiseft.pipeline.execute import execute_notebook
try:
    execute_notebook(Path(sys.argv[1]), Path(sys.argv[2]), {}, kernel_name="python3", step="slow")
except KeyboardInterrupt:
    print("wiseft run: interrupted", file=sys.stderr)
    sys.exit(130)
"""


def test_ctrl_c_during_a_notebook_step_shows_no_kernel_traceback(tmp_path):
    """Ctrl-C reaches the whole foreground process group; the kernel is shut down mid-cell."""
    started = tmp_path / "cell-started"
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                   "language_info": {"name": "python"}}
    nb.cells = [nbformat.v4.new_code_cell(f"import pathlib, time\npathlib.Path({str(started)!r}).touch()\n"
                                          "time.sleep(120)")]
    nbformat.write(nb, tmp_path / "slow.ipynb")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WISEFT_PROGRESS": "0"}
    proc = subprocess.Popen([sys.executable, "-c", _DRIVER, str(tmp_path / "slow.ipynb"),
                             str(tmp_path / "out" / "slow.ipynb")],
                            stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: (os.setpgrp(), signal.signal(signal.SIGINT, signal.SIG_DFL)))
    try:
        deadline = time.monotonic() + 120
        while not started.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert started.exists(), proc.stderr.read() if proc.poll() is not None else "the cell never started"
        time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "ZMQError" not in err, err
    assert (tmp_path / "out" / "slow.failed.ipynb").is_file()
