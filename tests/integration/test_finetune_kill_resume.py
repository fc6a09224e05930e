"""A fine-tuning run killed with SIGKILL mid-epoch and resumed ends with bitwise identical weights (and, when it
tracks the baselines' weight EMAs, bitwise identical averages)."""

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
from tests.helpers import finetune_worker as worker

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(worker.__file__)
CFG = '{"checkpoint_every_steps": 2}'


def _worker(out: Path, *extra: str) -> list[str]:
    return [sys.executable, str(WORKER), "--out", str(out), "--cfg", CFG, *extra]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "WISEFT_PROGRESS": "0", "OMP_NUM_THREADS": "1"}


def _uninterrupted(out: Path, ema: bool = False) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """The same run as the worker's, in this process (one thread, as in the worker): weights and EMAs."""
    import json

    from wiseft.finetune import finetune_e2e

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = worker.tiny_model()
        hooks, emas = worker.ema_hooks(model) if ema else ({}, {})
        model = finetune_e2e(model, worker.tiny_train_set(), worker.make_cfg(json.loads(CFG)), out, seed=0,
                             **hooks).model
    finally:
        torch.set_num_threads(threads)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, worker.ema_tensors(emas)


@pytest.mark.slow
@pytest.mark.parametrize("ema", [False, True], ids=["plain", "ema"])
def test_sigkill_mid_epoch_then_resume_gives_identical_weights(tmp_path, ema):
    killed = tmp_path / "killed"
    log = open(tmp_path / "killed.log", "wb")
    flags = ("--ema",) if ema else ()
    # 15 ms per image, 8 images per step: ~0.12 s per step, 18 steps; checkpoints every 2 steps and each epoch.
    proc = subprocess.Popen(_worker(killed, "--slow-ms", "15", *flags), cwd=ROOT, env=_env(), stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        expected, expected_ema = _uninterrupted(tmp_path / "reference", ema)  # while the subprocess starts up
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

    done = subprocess.run(_worker(killed, "--resume", *flags), cwd=ROOT, env=_env(), check=True,
                          capture_output=True, timeout=120, text=True)
    assert '"resumed_from": ' in done.stdout and '"resumed_from": null' not in done.stdout
    got = load_file(str(killed / "final.safetensors"))
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), f"{key} differs after resuming (killed after {delay:.2f} s)"
    if ema:
        got_ema = load_file(str(killed / "final_ema.safetensors"))
        assert expected_ema.keys() == got_ema.keys() and len(got_ema) > 0
        for key in expected_ema:
            assert torch.equal(expected_ema[key], got_ema[key]), f"EMA {key} differs after resuming"
