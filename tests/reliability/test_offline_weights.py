"""A GPU node without internet: ``wiseft zeroshot --profile cifar10-vitb32`` with nothing cached fails at once, in
one line and without a traceback; the data is checked before the weights.

The command runs in a subprocess with every proxy pointing at a closed port (the network is unreachable) and
empty wiseft and Hugging Face caches. The time limit is checked on the child's CPU time (under 5 s: what the
command costs on an idle machine) and, loosely, on the wall clock, which a shared test machine inflates;
before this was fixed the command spent about a minute in hub retries and ended in a traceback.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from wiseft.datasets.fixtures import build_fake_dataset

REPO = Path(__file__).resolve().parents[2]


def _run_offline(tmp_path: Path, data_root: Path) -> tuple[subprocess.CompletedProcess, float, float]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_PROXY", "no_proxy", "HF_HUB_OFFLINE")}
    env.update({var: "http://127.0.0.1:9" for var in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy")})
    env.update(WISEFT_CACHE=str(tmp_path / "cache"), HF_HOME=str(tmp_path / "hf"), WISEFT_PROGRESS="0",
               PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "wiseft", "zeroshot", "--profile", "cifar10-vitb32",
                           "--out", str(tmp_path / "run"), "--set", f"data.root={data_root}"],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return proc, wall, cpu


def _one_clear_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_missing_weights_offline_fail_fast_in_one_line(tmp_path):
    data = tmp_path / "data"
    for name in ("cifar10", "cifar10.1", "cifar10.2"):
        build_fake_dataset(name, data)
    proc, wall, cpu = _run_offline(tmp_path, data)
    line = _one_clear_line(proc)
    print(f"offline weights failure: wall {wall:.1f} s, cpu {cpu:.1f} s: {line}")
    assert cpu < 5 and wall < 30
    for needle in ("'ViT-B-32'", "'openai'", str(tmp_path / "cache" / "weights"), "cannot be reached",
                   "wiseft models download ViT-B-32 openai", "HF_HUB_OFFLINE=1", "model.pretrained="):
        assert needle in line, needle
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_missing_data_is_reported_before_the_weights(tmp_path):
    proc, wall, cpu = _run_offline(tmp_path, tmp_path / "no-data")
    line = _one_clear_line(proc)
    print(f"offline data failure: wall {wall:.1f} s, cpu {cpu:.1f} s: {line}")
    assert cpu < 5 and wall < 30
    assert "not on disk" in line and "cifar10/test" in line and "wiseft data download cifar10" in line
    assert "weights" not in line
