"""Case 5: peak memory of an α sweep, as the kernel counts it, in a fresh process per method and α count.

Each measurement runs ``python benchmarks/memory.py probe ...`` in a new process, which

1. imports everything and builds the dataset object (lazy: images are drawn when read), then reads its RSS;
2. builds the working model, θ_0 and θ_1 (three copies), returns freed memory to the OS (``malloc_trim``) and
   reads the RSS again: the growth is the **weights**;
3. resets the kernel's peak-RSS counter (``/proc/self/clear_refs``), runs the sweep, and reads the peak
   (``VmHWM``): its growth over step 2 is the **buffers** (the decoded chunk, activations, the naive side's merged
   weights and checkpoint copy).

Ours uses the profile's default evaluation settings (``EvalCfg``: batch size, ``chunk_images``, ``memory_gb``)
on images decoded through open_clip's evaluation transform, so chunks hold ``uint8`` images.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _status_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {key}")


def _trim() -> None:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:  # not glibc: freed memory may stay counted as weights (an overestimate)
        pass


class LazyImages:
    """``n`` RGB images of ``size`` (height, width), drawn from the index when read, through ``transform``."""

    def __init__(self, n: int, size: tuple[int, int], transform, num_classes: int) -> None:
        self.n, self.size, self.transform, self.num_classes = n, size, transform, num_classes

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        import numpy as np
        from PIL import Image

        rng = np.random.default_rng(i)
        img = Image.fromarray(rng.integers(0, 256, (*self.size, 3), dtype=np.uint8))
        return self.transform(img), int(i % self.num_classes)


def probe(args: argparse.Namespace) -> dict:
    sys.path[:0] = [str(HERE), str(HERE.parent)]
    import torch

    import common as C
    from wiseft.datasets.base import EvalSet, Protocol
    from wiseft.evaluation import evaluate_settings, lerp_settings
    from wiseft.interpolation import clone_state_dict
    from wiseft.models import eval_transform
    from wiseft.profile import EvalCfg

    cfg = EvalCfg()
    C.register_configs()
    classes = [f"class{i}" for i in range(args.classes)]
    import open_clip

    size = open_clip.get_model_config(args.model)["vision_cfg"]["image_size"]
    data = LazyImages(args.images, (size + size // 7, size + size // 2), eval_transform(size, C.OPENAI_MEAN,
                                                                                      C.OPENAI_STD), args.classes)
    eval_set = EvalSet("memory", data, classes, Protocol(), role="reference")
    alphas = [i / max(1, args.alphas - 1) for i in range(args.alphas)]
    _trim()
    rss0 = _status_kib("VmRSS") * 1024
    model = C.make_classifier(args.model, args.classes)
    theta0, theta1 = clone_state_dict(model), C.perturbed_state(model, head_only=False)
    _trim()
    rss_setup = _status_kib("VmRSS") * 1024
    Path("/proc/self/clear_refs").write_text("5")  # the peak counter now starts from here
    with torch.no_grad():
        if args.method == "ours":
            res = evaluate_settings(model, lerp_settings(theta0, theta1, alphas), [eval_set], batch_size=cfg.batch_size,
                                    num_workers=0, chunk_images=cfg.chunk_images, memory_gb=cfg.memory_gb)
            n = res.sets["memory"].n
        else:
            with tempfile.TemporaryDirectory() as work:
                out = C.naive_sweep(model, theta0, theta1, alphas, [eval_set], workdir=Path(work), device="cpu",
                                    batch_size=cfg.batch_size, num_workers=0)
            n = args.images if out else 0
    peak = _status_kib("VmHWM") * 1024
    return {"method": args.method, "model": args.model, "alphas": args.alphas, "images": n,
            "model_bytes": C.model_bytes(model), "rss_base": rss0, "weights_bytes": rss_setup - rss0,
            "buffers_bytes": peak - rss_setup, "peak_growth_bytes": peak - rss0, "batch_size": cfg.batch_size,
            "chunk_images": cfg.chunk_images, "memory_gb": cfg.memory_gb, "image_size": size}


def measure(method: str, model: str, alphas: int, images: int, classes: int = 10, timeout: int = 900) -> dict:
    """Run one probe in a fresh interpreter and return its JSON line (seconds included)."""
    import time

    cmd = [sys.executable, str(Path(__file__).resolve()), "probe", "--method", method, "--model", model,
           "--alphas", str(alphas), "--images", str(images), "--classes", str(classes)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "WISEFT_PROGRESS": "0"})
    if proc.returncode != 0:
        raise RuntimeError(f"memory probe {' '.join(cmd[2:])} exited {proc.returncode}: {proc.stderr[-800:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="one peak-memory probe (used by case 5 of benchmarks/run.py)")
    sub = p.add_subparsers(dest="cmd", required=True)
    q = sub.add_parser("probe")
    q.add_argument("--method", choices=("ours", "naive"), required=True)
    q.add_argument("--model", required=True)
    q.add_argument("--alphas", type=int, required=True)
    q.add_argument("--images", type=int, required=True)
    q.add_argument("--classes", type=int, default=10)
    args = p.parse_args(argv)
    print(json.dumps(probe(args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())


def case5(s) -> dict:
    """Peak RSS of ours and the naive loop at two α counts, for a weights-heavy and a chunk-heavy run."""
    from cases import row

    lo, hi = s.mem_alphas
    runs = {}
    configs = [("weights", s.mem_model, s.mem_images, s.mem_images),
               ("chunk", s.mem_chunk_model, s.mem_chunk_images, s.mem_naive_images)]
    configs = [c for c in configs if c[1]]  # --quick drops the weights-heavy run (processes take seconds to start)
    for label, model, images, naive_images in configs:
        runs[f"{label}_ours_{lo}"] = measure("ours", model, lo, images)
        runs[f"{label}_ours_{hi}"] = measure("ours", model, hi, images)
        runs[f"{label}_naive_{hi}"] = measure("naive", model, hi, naive_images)
    mib = 2**20
    ok, parts, bounds = True, [], {}
    for label, *_ in configs:
        a, b, nv = runs[f"{label}_ours_{lo}"], runs[f"{label}_ours_{hi}"], runs[f"{label}_naive_{hi}"]
        bound = 3 * a["model_bytes"] + a["memory_gb"] * 2**30
        # independent of α: both runs under the same α-free bound, and within 10% of it of each other (glibc's
        # allocator moves a process's peak by tens of MiB between identical runs: 468, 555, 500 MiB of buffers for
        # 1, 4, 12 α on 512 images, measured 2026-12-03)
        flat = abs(b["peak_growth_bytes"] - a["peak_growth_bytes"]) <= 0.1 * bound
        ok = ok and flat and max(a["peak_growth_bytes"], b["peak_growth_bytes"]) <= bound
        bounds[label] = round(bound / mib, 1)
        parts.append(f"{a['model']} ({a['images']} img): weights +{b['weights_bytes'] / mib:.0f} MiB "
                     f"({b['weights_bytes'] / b['model_bytes']:.2f} copies), "
                     f"buffers {a['buffers_bytes'] / mib:.0f}/{b['buffers_bytes'] / mib:.0f} MiB ({lo}/{hi} α); "
                     f"peak +{max(a['peak_growth_bytes'], b['peak_growth_bytes']) / mib:.0f} ≤ {bound / mib:.0f} MiB; "
                     f"naive buffers {nv['buffers_bytes'] / mib:.0f} MiB")
    for r in runs.values():
        r["weights_copies"] = round(r["weights_bytes"] / r["model_bytes"], 2)
        r["buffers_mib"] = round(r["buffers_bytes"] / mib, 1)
        r["peak_growth_mib"] = round(r["peak_growth_bytes"] / mib, 1)
    first = configs[0][0]
    ref = runs[f"{first}_ours_{hi}"]
    what = (f"a fresh process per run; {', '.join(f'{m} ({n} images)' for _, m, n, _ in configs)}; profile "
            f"defaults: batch {ref['batch_size']}, chunk_images {ref['chunk_images']}, memory_gb {ref['memory_gb']}; "
            f"{lo} vs {hi} α")
    secs = {k: r["seconds"] for k, r in runs.items()}
    naive = runs[f"{first}_naive_{hi}"]
    constants = [{"name": "eval_resident_model_copies", "value": ref["weights_copies"], "unit": "model copies",
                  "how": f"case 5: RSS growth from building the working model, θ0 and θ1 ({ref['model']})"},
                 {"name": "naive_extra_model_copies", "value": round(naive["buffers_bytes"] / naive["model_bytes"], 2),
                  "unit": "model copies", "how": f"case 5: peak RSS of wise-ft's loop over setup ({ref['model']})"}]
    return row(5, "peak memory of an α sweep (RSS)", what, ref["seconds"], runs[f"{first}_naive_{hi}"]["seconds"],
               "peak RSS growth ≤ 3 model copies + eval.memory_gb, independent of the α count", "; ".join(parts),
               ok, runs=runs, seconds=secs, constants=constants, bound_mib=bounds,
               naive_reproduces="wise-ft's sweep (merged state dict alive through evaluation, checkpoint written "
                                "and read back); it holds one batch, so it runs on fewer images in the chunk run",
               method_note="weights = RSS growth from building the model, θ0 and θ1 (after malloc_trim); buffers = "
                           "peak RSS (VmHWM, reset before the sweep) over that; timings include process start")
