"""Two writers on one run folder (issue 19, item 1): every command takes the run folder's lock, a second
writer is refused in one line that names the holder, and temporaries belong to the process that made them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from wiseft.locks import LOCK_ENV, RunFolderBusy, is_stale, private_name, run_folder_lock

ROOT = Path(__file__).resolve().parents[2]
_HOLD = ("import sys, time\nfrom wiseft.locks import run_folder_lock\n"
         "with run_folder_lock(sys.argv[1], 'wiseft finetune'):\n"
         "    print('locked', flush=True)\n    time.sleep(120)\n")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != LOCK_ENV}
    return {**env, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **extra}


@pytest.fixture
def holder(tmp_path):
    """``hold(folder)`` starts another process that holds the folder's lock; returns its pid."""
    procs = []

    def hold(folder: Path) -> int:
        proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(folder)], stdout=subprocess.PIPE, text=True,
                                env=_env())
        procs.append(proc)
        assert proc.stdout.readline().strip() == "locked"
        return proc.pid

    yield hold
    for proc in procs:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("command", [["zeroshot"], ["finetune", "--mode", "lc"], ["interpolate"],
                                     ["evaluate", "zeroshot"], ["baselines"], ["run"]])
def test_a_second_writer_is_refused_naming_the_holder(toy_cli, holder, one_line_error, command):
    run, common = toy_cli
    pid = holder(run.root / "run")
    code, _, err = run(*command, *common)
    line = one_line_error(code, err, f"pid {pid}", "wiseft finetune", "--out", str((run.root / "run").resolve()))
    assert "in use" in line
    assert not (run.root / "run" / "results.jsonl").exists() and not (run.root / "run" / "checkpoints").exists()


def test_a_notebook_opening_a_busy_run_is_refused(toy_cli, holder):
    from wiseft.notebook import open_run

    run, common = toy_cli
    pid = holder(run.root / "run")
    with pytest.raises(RunFolderBusy, match=f"pid {pid}"):
        open_run(common[1], [], str(run.root / "run"), "cpu")


def test_the_lock_is_free_again_once_its_holder_is_gone(toy_cli):
    from wiseft.notebook import open_run

    run, common = toy_cli
    ctx = open_run(common[1], [], str(run.root / "run"), "cpu")
    probe = [sys.executable, "-c", "import sys; from wiseft.locks import acquire; acquire(sys.argv[1])",
             str(run.root / "run")]
    refused = subprocess.run(probe, env=_env(), capture_output=True, text=True)
    assert refused.returncode != 0 and "RunFolderBusy" in refused.stderr
    ctx.close()
    assert subprocess.run(probe, env=_env(), capture_output=True, text=True).returncode == 0


def test_processes_started_under_the_lock_share_it(tmp_path):
    """The kernels of `wiseft run` inherit its permission (for its folder and the suite members below it)."""
    probe = "import sys; from wiseft.locks import acquire; acquire(sys.argv[1]); print('ok')"
    with run_folder_lock(tmp_path / "run"):
        env = {**_env(), LOCK_ENV: os.environ[LOCK_ENV]}
        for folder in (tmp_path / "run", tmp_path / "run" / "member"):
            out = subprocess.run([sys.executable, "-c", probe, str(folder)], env=env, capture_output=True, text=True)
            assert out.stdout.strip() == "ok", out.stderr
        forged = {**env, LOCK_ENV: f"{(tmp_path / 'run').resolve()}\nnot-the-token"}
        out = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "run")], env=forged, capture_output=True,
                             text=True)
        assert out.returncode != 0 and "RunFolderBusy" in out.stderr
    assert LOCK_ENV not in os.environ


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_saving_training_state_keeps_another_live_process_temporary(tmp_path):
    """`save_train_state` used to delete every `.tmp-*` folder, including a concurrent writer's live one."""
    from wiseft.finetune.state import TrainProgress, capture_rng, save_train_state

    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / f".tmp-step_000000007-pid{other.pid}-0123abcd"
        dead = tmp_path / f".tmp-step_000000003-pid{_dead_pid()}-89abcdef"
        for folder in (live, dead):
            folder.mkdir()
            (folder / "model.safetensors").write_bytes(b"partial")
        assert not is_stale(live.name) and is_stale(dead.name)
        model = torch.nn.Linear(3, 2)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        save_train_state(tmp_path, model=model, optimizer=opt, progress=TrainProgress(global_step=5),
                         rng_states=[capture_rng()], trainer={})
        assert live.is_dir() and (live / "model.safetensors").read_bytes() == b"partial"
        assert not dead.exists()
    finally:
        other.kill()
        other.wait()


def test_private_names_differ_and_name_their_owner():
    a, b = private_name(".tmp-x"), private_name(".tmp-x")
    assert a != b and f"pid{os.getpid()}" in a
    assert not is_stale(a)  # this process is alive


@pytest.fixture
def ipython():
    """A fresh IPython shell (cells run as in a kernel); yields ``run(source) -> ExecutionResult``."""
    from IPython.core.interactiveshell import InteractiveShell

    sh = InteractiveShell.instance()
    yield lambda source: sh.run_cell(source, store_history=True)
    sh.set_custom_exc((), None)
    InteractiveShell.clear_instance()


def test_a_notebook_holds_the_lock_while_a_cell_runs_and_never_while_idle(toy_cli, holder, ipython, capsys):
    run, common = toy_cli
    folder = run.root / "run"
    probe = ("import subprocess, sys\n"
             f"held = subprocess.run([sys.executable, '-c', 'import sys; from wiseft.locks import acquire; "
             f"acquire(sys.argv[1])', {str(folder)!r}], capture_output=True, env={_env()!r}).returncode != 0\n")
    assert ipython(f"from wiseft.notebook import open_run\nctx = open_run({common[1]!r}, [], {str(folder)!r}, 'cpu')"
                   ).success
    assert ipython(probe).success and ipython("held").result is True  # locked while the probing cell ran
    probe_idle = subprocess.run([sys.executable, "-c", "import sys; from wiseft.locks import acquire; "
                                 "acquire(sys.argv[1])", str(folder)], env=_env(), capture_output=True)
    assert probe_idle.returncode == 0  # an idle notebook blocks nobody (`wiseft run`, the next notebook)
    capsys.readouterr()

    pid = holder(folder)  # e.g. `wiseft run` started in a terminal
    result = ipython("ran = True")
    assert not result.success and isinstance(result.error_in_exec, RunFolderBusy)
    assert f"pid {pid}" in capsys.readouterr().out
    from IPython.core.interactiveshell import InteractiveShell

    assert "ran" not in InteractiveShell.instance().user_ns  # the refused cell did not run
