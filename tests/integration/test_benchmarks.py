"""The benchmark cannot rot: ``benchmarks/run.py --quick`` and ``benchmarks/gpu.sh --cpu-smoke`` run every case
on tiny sizes and write rows with the documented schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = {"case": int, "name": str, "what": str, "target": str, "measured": str}
NUMBERS = ("ours_s", "naive_s", "ratio")


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "WISEFT_PROGRESS": "0", "PYTHON": sys.executable, "OUT": str(tmp_path),
            "OMP_NUM_THREADS": "1"}


def _check_rows(rows: list[dict], cases: list[int]) -> dict[int, dict]:
    assert isinstance(rows, list) and [r["case"] for r in rows] == cases
    for r in rows:
        for key, kind in REQUIRED.items():
            assert isinstance(r[key], kind), (r["case"], key, r.get(key))
        for key in NUMBERS:
            assert r[key] is None or (isinstance(r[key], (int, float)) and r[key] >= 0), (r["case"], key, r[key])
        assert r["met"] in (True, False, None), r
        if r["met"] is None:
            assert r.get("reason"), r
        assert r["name"] != "error", r.get("reason")
        assert "load" in r and "env" in r
    return {r["case"]: r for r in rows}


@pytest.mark.slow
def test_quick_benchmark_runs_every_case_and_writes_the_schema(tmp_path):
    out = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--json", str(out)],
                          cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = _check_rows(json.loads(out.read_text()), [1, 2, 3, 4, 5, 6])
    for case in (1, 2, 3, 4, 5):  # timed on both sides
        assert rows[case]["ours_s"] > 0 and rows[case]["naive_s"] > 0 and rows[case]["ratio"] > 0
    assert rows[1]["max_top1_diff_vs_naive"] == 0 and rows[2]["max_top1_diff_vs_naive"] == 0  # same numbers
    assert rows[2]["decodes_ours"] == rows[2]["images"]  # each image decoded once per sweep
    assert rows[2]["decodes_naive"] == rows[2]["images"] * rows[2]["alphas"]
    assert rows[3]["gflop"] > 0 and 0 < rows[3]["fraction_of_peak"] and rows[3]["head_rel_diff_vs_naive"] < 1e-4
    assert set(rows[4]["images_per_s_ours"]) == {"fp32", "amp_bf16"}
    copies = rows[5]["copies"]
    assert copies["ours_3"] == pytest.approx(copies["ours_5"], abs=0.05)  # independent of the number of α
    assert rows[6]["met"] is None and "skipped" in rows[6]["reason"]
    assert "case | what" in proc.stdout and "ours_s" in proc.stdout


@pytest.mark.slow
def test_gpu_script_smoke_runs_on_the_cpu(tmp_path):
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu.sh"), "--cpu-smoke"], cwd=ROOT,
                          env=_env(tmp_path), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = _check_rows(json.loads((tmp_path / "gpu-smoke-results.json").read_text()), [1, 2, 3, 4])
    assert all(r["preset"] == "gpu-quick" for r in rows.values())
    assert rows[1]["precision"] == "amp_bf16" and rows[1]["num_workers"] == 1  # the GPU preset's paths, shrunk
    assert "| case | what |" in proc.stdout  # the Markdown table for the README
