"""wiseft against the wise-ft reference approach and against the machine, side by side in one run.

    python benchmarks/run.py                 # every case on the CPU: ≈15 min for cases 1-5 on 2 shared cores,
                                             # plus the mini pipeline (≤ 10 min)
    python benchmarks/run.py --quick         # tiny sizes, about a minute, no verdicts (what the tests run)
    python benchmarks/run.py --cases 1,3     # some cases
    python benchmarks/run.py --gpu           # cases 1-4 on CUDA, ViT-B/16 at 224 px in bf16 (benchmarks/gpu.sh)

Each case runs the naive approach (written as the wise-ft repository does it) and ours on the same model, data
and machine in this one process, after a warm-up, and keeps the median of ``--repeats`` timings taken
alternately. Models have random open_clip weights (timing does not depend on them). The table is printed, then
each side's items/s, achieved FLOP/s against a matmul peak and its bound (data loading or compute), then the
measured constants of the cost model (docs/performance.md); the rows are written atomically to
``benchmarks/results.json`` (``--json`` elsewhere). ``--quick`` cannot judge speed or memory: its verdicts read
"n/a (quick)".
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import platform
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))  # this checkout's wiseft, not an installed one
os.environ.setdefault("WISEFT_PROGRESS", "0")

import torch  # noqa: E402

import cases as K  # noqa: E402
import common as C  # noqa: E402
from wiseft.io import atomic_write_json  # noqa: E402

COLUMNS = [("case", 4), ("what", 64), ("ours_s", 8), ("naive_s", 8), ("ratio", 7), ("measured", 44),
           ("target", 34), ("met", 11)]
QUICK_NA = "n/a (quick)"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes that finish in seconds")
    p.add_argument("--gpu", action="store_true", help="the CUDA preset: ViT-B/16, 224 px, bf16, cases 1-4")
    p.add_argument("--cases", default=None, help="comma-separated case numbers (default: all; --gpu: 1,2,3,4)")
    p.add_argument("--device", default=None, help="override the preset's device (cpu, cuda)")
    p.add_argument("--precision", default=None, help="override the evaluation precision (fp32, amp_bf16)")
    p.add_argument("--repeats", type=int, default=None, help="timed repeats per case (median)")
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers for evaluation (both sides)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--json", default=str(HERE / "results.json"), help="where to write the rows")
    p.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    return p.parse_args(argv)


def sizes_from(args: argparse.Namespace) -> K.Sizes:
    sizes = K.Sizes.gpu() if args.gpu else K.Sizes()
    if args.quick:
        sizes = K.Sizes.quick(sizes)
    overrides = {"device": args.device, "precision": args.precision, "repeats": args.repeats,
                 "num_workers": args.workers}
    return dataclasses.replace(sizes, **{k: v for k, v in overrides.items() if v is not None})


def environment(sizes: K.Sizes) -> dict:
    env = {"torch": torch.__version__, "python": platform.python_version(), "threads": torch.get_num_threads(),
           "cpu_count": os.cpu_count(), "cpu_capability": K._cpu_capability(), "device": sizes.device,
           "preset": sizes.label, "load": C.load_avg(), "time": time.strftime("%Y-%m-%d %H:%M:%S")}
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
    try:
        import open_clip

        env["open_clip"] = open_clip.__version__
    except ImportError:
        env["open_clip"] = None
    return env


def fmt(value, width: int) -> str:
    if value is None:
        text = "—"
    elif isinstance(value, bool):
        text = "yes" if value else "NO"
    elif isinstance(value, float):
        text = f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    else:
        text = str(value)
    return text if len(text) <= width else text[:width - 1] + "…"


def table(rows: list[dict]) -> str:
    head = " | ".join(name.ljust(w) for name, w in COLUMNS)
    lines = [head, "-+-".join("-" * w for _, w in COLUMNS)]
    for r in rows:
        cells = dict(r)
        if cells.get("met") is None and cells.get("reason"):
            cells["met"] = QUICK_NA if cells.get("quick") else "n/a"
        lines.append(" | ".join(fmt(cells.get(name), w).ljust(w) for name, w in COLUMNS))
    return "\n".join(lines)


def throughput_table(rows: list[dict], gpu: bool) -> str:
    """Images (or prompts) per second, achieved FLOP/s against the matmul peak, and the bound, per side."""
    unit, scale = ("TFLOP/s", 1e-3) if gpu else ("GFLOP/s", 1.0)
    lines = [f"case | side                        | items/s  | {unit:<8} | of peak | load s   | compute s | bound",
             "-----+-----------------------------+----------+----------+---------+----------+-----------+-------------"]
    for r in rows:
        for side, t in (r.get("throughput") or {}).items():
            rate = next(v for k, v in t.items() if k.endswith("_per_s"))
            side = f"{side} ({r['regime']})" if r.get("regime") else side
            lines.append(f"{r['case']:<4} | {side:<27} | {fmt(rate, 8):<8} | {fmt(t['achieved_gflops'] * scale, 8):<8} | "
                         f"{t['fraction_of_peak']:>6.0%}  | {fmt(t['load_s'], 8):<8} | {fmt(t['compute_s'], 9):<9} | "
                         f"{t['bound']}")
    return "\n".join(lines)


def markdown(rows: list[dict]) -> str:
    """The table as Markdown (for the README's performance section)."""
    out = ["| case | what | ours (s) | naive (s) | ratio | measured | target | met |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        met = (QUICK_NA if r.get("quick") else "n/a") if r.get("met") is None else ("yes" if r["met"] else "**no**")
        out.append(f"| {r['case']} {r.get('name', '')} | {r['what']} | {fmt(r['ours_s'], 12)} | "
                   f"{fmt(r['naive_s'], 12)} | {fmt(r['ratio'], 8)} | {r['measured']} | {r['target']} | {met} |")
    return "\n".join(out)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.threads or args.quick:  # --quick checks the code paths, not speed: one thread is kinder to shared cores
        torch.set_num_threads(args.threads or 1)
    sizes = sizes_from(args)
    default_cases = "1,2,3,4" if args.gpu else ",".join(str(c) for c in K.CASES)
    chosen = [int(c) for c in (args.cases or default_cases).split(",") if c.strip()]
    unknown = [c for c in chosen if c not in K.CASES]
    if unknown:
        raise SystemExit(f"unknown case(s) {unknown}; choose from {sorted(K.CASES)}")
    C.OUT.mkdir(parents=True, exist_ok=True)
    env = environment(sizes)
    print("environment:", ", ".join(f"{k}={v}" for k, v in env.items()), flush=True)
    if env["load"] > 0.5 * (os.cpu_count() or 1) and not args.quick:
        print(f"warning: the machine is busy (load {env['load']} on {os.cpu_count()} cores). Timings will be noisy, "
              f"and {torch.get_num_threads()} intra-op threads competing with other processes for the cores can make "
              f"small operations ten times slower; rerun on a quiet machine (or compare with --threads 1).",
              flush=True)
    rows, failed = [], False
    for case in chosen:
        load, t0 = C.load_avg(), time.perf_counter()
        print(f"case {case} …", end=" ", flush=True)
        try:
            out = K.CASES[case](sizes)
        except Exception as e:  # noqa: BLE001 - one broken case must not hide the others' numbers
            failed = True
            traceback.print_exc()
            out = K.row(case, "error", "", None, None, "", f"error: {type(e).__name__}: {e}", False,
                        reason=traceback.format_exc(limit=3)[-1500:])
        wall = round(time.perf_counter() - t0, 1)
        for r in out if isinstance(out, list) else [out]:
            if args.quick and r["met"] is not None:
                # tiny sizes on one thread say nothing about speed or memory: no verdict
                r.update(met=None, quick=True, reason=f"{QUICK_NA}: tiny sizes cannot judge '{r['target']}'")
            r.update(load=load, load_after=C.load_avg(), case_wall_s=wall, preset=sizes.label, env=env)
            rows.append(r)
            print(f"{wall} s, load {load} → {r['load_after']}: {r['measured']}", flush=True)
    print()
    print(table(rows))
    print()
    print(throughput_table(rows, sizes.device.startswith("cuda")))
    constants = [c for r in rows for c in r.get("constants", [])]
    if constants:
        print("\nmeasured constants of the cost model (docs/performance.md):")
        for c in constants:
            print(f"  {c['name']:<42} {c['value']:<11.4g} {c['unit']:<13} {c['how']}")
    if args.markdown:
        print()
        print(markdown(rows))
    atomic_write_json(args.json, rows)
    print(f"\nwrote {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
