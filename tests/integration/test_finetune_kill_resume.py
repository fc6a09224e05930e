"""A fine-tuning run killed with SIGKILL mid-epoch and resumed ends with bitwise identical weights."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from wiseft.finetune.state import list_states

ROOT = Path(__file__).resolve().parents[2]
WORKER = ROOT / "tests" / "integration" / "finetune_worker.py"
CFG = '{"checkpoint_every_steps": 2}'


def _worker(out: Path, *extra: str) -> list[str]:
    return [sys.executable, str(WORKER), "--out", str(out), "--cfg", CFG, *extra]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "WISEFT_PROGRESS": "0", "OMP_NUM_THREADS": "1"}


def _uninterrupted(out: Path) -> dict[str, torch.Tensor]:
    """The same run as the worker's, in this process (one thread, as in the worker)."""
    import importlib.util
    import json

    from wiseft.finetune import finetune_e2e

    spec = importlib.util.spec_from_file_location("finetune_worker", WORKER)
    worker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(worker)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = finetune_e2e(worker.tiny_model(), worker.tiny_train_set(), worker.make_cfg(json.loads(CFG)), out,
                             seed=0).model
    finally:
        torch.set_num_threads(threads)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_gives_identical_weights(tmp_path):
    killed = tmp_path / "killed"
    log = open(tmp_path / "killed.log", "wb")
    # 15 ms per image, 8 images per step: ~0.12 s per step, 18 steps; checkpoints every 2 steps and each epoch.
    proc = subprocess.Popen(_worker(killed, "--slow-ms", "15"), cwd=ROOT, env=_env(), stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        expected = _uninterrupted(tmp_path / "reference")  # while the subprocess starts up
        deadline = time.monotonic() + 90
        while not list_states(killed / "state"):
            assert proc.poll() is None, (tmp_path / "killed.log").read_text()
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.02)
        delay = random.Random().uniform(0.0, 0.8)  # anywhere in the next few steps, checkpoint writes included
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "final.safetensors").exists(), "the run finished before the kill; slow it down"
    states = list_states(killed / "state")
    assert states, "no complete checkpoint survived"
    last_step = int(states[-1].name.split("-")[1])
    assert 0 < last_step < 18

    done = subprocess.run(_worker(killed, "--resume"), cwd=ROOT, env=_env(), check=True, capture_output=True,
                          timeout=120, text=True)
    assert '"resumed_from": ' in done.stdout and '"resumed_from": null' not in done.stdout
    got = load_file(str(killed / "final.safetensors"))
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), f"{key} differs after resuming (killed after {delay:.2f} s)"
