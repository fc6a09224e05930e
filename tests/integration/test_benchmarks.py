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
        assert r.get("quick") is not True or r["met"] is None  # --quick judges nothing it cannot
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
    all_rows = json.loads(out.read_text())
    rows = _check_rows(all_rows, [1, 2, 2, 3, 4, 5, 6])
    for case in (1, 2, 3, 4, 5):  # timed on both sides, no verdict
        assert rows[case]["ours_s"] > 0 and rows[case]["naive_s"] > 0 and rows[case]["ratio"] > 0
        assert rows[case]["met"] is None and rows[case]["reason"].startswith("n/a (quick)")
    e2e = [r for r in all_rows if r["case"] == 2]
    assert [r["regime"] for r in e2e] == ["decode-bound", "forward-bound"]
    for r in [rows[1], *e2e]:
        assert r["max_top1_diff_vs_naive"] == 0  # the same numbers as the naive side
    assert rows[1]["decodes_naive"] == rows[1]["images"]  # the official LC workflow computes features once too
    for r in e2e:
        assert r["decodes_ours"] == r["images"] and r["decoded_once"]  # each image decoded once per sweep
        assert r["decodes_naive"] == r["images"] * r["alphas"]
        assert r["decode_s_per_image"] > 0 and r["forward_s_per_image"] > 0 and r["predicted_ratio"] > 1
        assert {"ours", "naive"} <= set(r["throughput"])
    assert rows[3]["gflop"] > 0 and 0 < rows[3]["fraction_of_peak"] and rows[3]["head_rel_diff_vs_naive"] < 1e-4
    assert rows[3]["work_saved"] > 1 and 0 < rows[3]["naive_fraction_of_peak"]
    assert set(rows[4]["images_per_s_ours"]) == {"fp32", "amp_bf16"}
    runs = rows[5]["runs"]
    assert set(runs) == {"chunk_ours_2", "chunk_ours_3", "chunk_naive_3"}  # one fresh process each
    for r in runs.values():
        assert r["weights_bytes"] > 0 and r["buffers_bytes"] >= 0 and r["peak_growth_bytes"] > 0
    assert rows[6]["met"] is None and "skipped" in rows[6]["reason"]
    assert "case | what" in proc.stdout and "n/a (quick)" in proc.stdout and "| bound" in proc.stdout


@pytest.mark.slow
def test_gpu_script_smoke_runs_on_the_cpu(tmp_path):
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu.sh"), "--cpu-smoke"], cwd=ROOT,
                          env=_env(tmp_path), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    all_rows = json.loads((tmp_path / "gpu-smoke-results.json").read_text())
    rows = _check_rows(all_rows, [1, 2, 2, 3, 4])
    assert all(r["preset"] == "gpu-quick" for r in rows.values())
    assert rows[1]["precision"] == "amp_bf16" and rows[1]["num_workers"] == 1  # the GPU preset's paths, shrunk
    for r in all_rows:
        if r["case"] == 2:  # decode_jpeg on the (CPU stand-in) device: each image still decoded once
            assert r["decodes_ours"] == r["images"]
        if r["case"] in (2, 3, 4):  # images/s, FLOP/s against the matmul peak, and the bound of each side
            for side in r["throughput"].values():
                assert side["bound"] in ("data loading", "compute") and side["achieved_gflops"] > 0
    assert "| case | what |" in proc.stdout  # the Markdown table for the README
