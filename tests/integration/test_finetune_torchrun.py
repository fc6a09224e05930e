"""torchrun with two gloo processes gives the weights of one process with the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.helpers import finetune_worker as worker

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(worker.__file__)


@pytest.mark.distributed
@pytest.mark.slow
def test_two_processes_match_one_process_with_the_same_global_batch(tmp_path):
    # Two ranks × micro batch 2 × 2 accumulation steps = global batch 8; checkpointing on, so the pickle-free
    # gathering of every rank's random state runs too.
    cfg = {"micro_batch_size": 2, "checkpoint_every_steps": 4}
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WISEFT_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(WORKER),
           "--out", str(tmp_path / "ddp"), "--dropout", "0", "--cfg", json.dumps(cfg)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    # Meanwhile, the same global batches in this process, without accumulation.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        from wiseft.finetune import finetune_e2e

        single = finetune_e2e(worker.tiny_model(0.0), worker.tiny_train_set(), worker.make_cfg({"micro_batch_size": 8}),
                              tmp_path / "single", seed=0)
    finally:
        torch.set_num_threads(threads)
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out[-4000:]

    ddp = load_file(str(tmp_path / "ddp" / "final.safetensors"))
    expected = single.model.state_dict()
    assert ddp.keys() == expected.keys()
    for key in ddp:
        torch.testing.assert_close(ddp[key], expected[key], rtol=1e-5, atol=1e-6)
    moved = max(float((ddp[k] - worker.tiny_model(0.0).state_dict()[k]).abs().max()) for k in ddp)
    assert moved > 1e-3  # the comparison is not between two untrained models

    trainer = json.loads(next((tmp_path / "ddp" / "state").glob("step-*/trainer.json")).read_text())
    assert trainer["world_size"] == 2 and trainer["micro_batch"] == 2
    rng = json.loads(next((tmp_path / "ddp" / "state").glob("step-*/rng.json")).read_text())
    assert len(rng["ranks"]) == 2  # every rank's random state, written by rank 0
    assert not list((tmp_path / "ddp").glob("*.tmp*"))
