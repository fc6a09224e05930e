"""`torchrun -m wiseft interpolate` shards every evaluation set over the processes and reduces the predictions:
the sweep's numbers equal a single process's, and only rank 0 writes rows and checkpoints."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from wiseft.results import load_results
from tests.helpers.toy_task import build_toy_task, toy_profile

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("steps_worker.py")


def _cli(args, nproc=None, timeout=300):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "WISEFT_PROGRESS": "0"}
    if nproc:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               str(WORKER), *args]
    else:
        cmd = [sys.executable, str(WORKER), *args]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out


@pytest.mark.distributed
@pytest.mark.slow
def test_torchrun_sweep_matches_one_process(tmp_path, tiny_model_name):
    build_toy_task(tmp_path, per_class={"train": 8, "val": 3, "test": 5, "shift": 5})
    profile = str(toy_profile(tmp_path, tiny_model_name))
    base = ["--profile", profile, "--set", "finetune.e2e.enabled=false", "--set", "finetune.lc.shots=[]",
            "--set", "interpolation.fisher=false", "--set", "baselines.methods=[]"]
    single = base + ["--out", str(tmp_path / "single")]
    _cli(["zeroshot", *single])
    _cli(["finetune", "--mode", "lc", *single])
    # the distributed run interpolates between the very same endpoints
    (tmp_path / "multi").mkdir()
    os.symlink(tmp_path / "single" / "checkpoints", tmp_path / "multi" / "checkpoints")
    _cli(["interpolate", *single])
    _cli(["interpolate", *base, "--out", str(tmp_path / "multi")], nproc=2)
    one, two = load_results(tmp_path / "single" / "results.jsonl"), load_results(tmp_path / "multi" / "results.jsonl")
    one = one[one.method == "wiseft"].set_index(["alpha", "dataset", "metric"])["value"].sort_index()
    two = two[two.method == "wiseft"].set_index(["alpha", "dataset", "metric"])["value"].sort_index()
    assert len(two) == len(one) > 0  # rank 0 alone wrote the rows: no duplicates
    assert (two.values == one.values).all()
