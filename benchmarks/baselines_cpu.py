"""How long the baselines step takes on a task shaped like the ``mini`` world, on the CPU.

Draws a synthetic task with the mini world's sizes (10 classes, 6000 training images, 1000 held-out, a 1000-image
reference test set and six 1000-image shifts, 32 px PNGs) and a CLIP with the mini model's architecture (random
weights, so no world is needed), runs zero-shot, E2E and LC fine-tuning and the WiSE-FT sweep, then times
``run_baselines`` per family and ``run_analyses`` with the settings recommended for ``mini``. Prints one JSON line
per phase.

Run from the repository root:  ``python benchmarks/baselines_cpu.py``.
Environment: ``THREADS`` (2), ``E2E_EPOCHS`` (4, the main run), ``BASELINE_EPOCHS`` (1).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, ".")
os.environ.setdefault("WISEFT_PROGRESS", "0")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

MODEL = {"embed_dim": 64,
         "vision_cfg": {"timm_model_name": "test_convnext2", "timm_model_pretrained": False, "timm_pool": "avg",
                        "timm_proj": "linear", "image_size": 32},
         "text_cfg": {"context_length": 24, "vocab_size": 49408, "width": 64, "heads": 4, "layers": 2}}
CLASSES = [f"digit{i}" for i in range(10)]
SHIFTS = [f"bench-shift{i}" for i in range(6)]


def draw(root: Path) -> None:
    rng = np.random.default_rng(0)
    base = rng.integers(30, 225, size=(10, 3))
    splits = {"train": 600, "val": 100, "test": 100, **{s: 100 for s in SHIFTS}}
    for split, n in splits.items():
        scale = 1.0 if split in ("train", "val", "test") else 0.5 + 0.08 * SHIFTS.index(split)
        for c in range(10):
            folder = root / "bench" / split / f"{c}_{CLASSES[c]}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                pixels = np.clip(base[c] * scale + rng.normal(0, 40, size=(32, 32, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    (root / "classnames.txt").write_text("\n".join(CLASSES) + "\n")
    (root / "templates.txt").write_text("a photo of {}.\n")
    common = "  root: bench\n  classnames: file:classnames.txt\n  templates: file:templates.txt\n"
    body = ("bench:\n  role: reference\n" + common +
            "  splits:\n    train: {path: train, count: 6000}\n    val: {path: val, count: 1000}\n"
            "    test: {path: test, count: 1000}\n")
    for s in SHIFTS:
        body += f"{s}:\n" + common + f"  splits:\n    test: {{path: {s}, count: 1000}}\n"
    (root / "bench_datasets.yaml").write_text(body)


PROFILE = """name: bench
seed: 0
device: cpu
model: {{name: bench-mini-clip, pretrained: null}}
data:
  configs: [bench_datasets.yaml]
  reference: bench
  shifts: [{shifts}]
eval: {{batch_size: 256, num_workers: 0, chunk_images: 4096}}
finetune:
  e2e: {{epochs: {epochs}, batch_size: 128, lr: 3.0e-4, weight_decay: 0.1, warmup_steps: 50, num_workers: 0,
        log_every_steps: 50}}
  lc: {{search_trials: 4, max_epochs: 20, shots: []}}
interpolation: {{alpha_step: 0.05, keep: [0.5], ose: true, fisher: false}}
baselines:
  methods: [l2sp, ema, ema_biased, lpft, lc_l2sp, distill, ose_prob, random_interp]
  e2e_overrides: {{epochs: {baseline_epochs}, warmup_steps: 10}}
  l2sp_lambdas: [0.01, 0.1, 1.0]
  ema_decays: [0.9, 0.98]
  ema_biased_decays: [0.9, 0.97, 0.99]
  lc_l2sp_lambdas: [1.0e-4, 1.0e-2, 1.0]
  distill_alphas: [0.25, 0.5, 0.75]
  analyses: true
"""


def main() -> None:
    import open_clip

    from wiseft.profile import load_profile
    from wiseft.run import RunContext
    from wiseft.steps import (choose_alpha, run_analyses, run_baselines, run_finetune, run_interpolation,
                              run_zeroshot)

    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    root = Path(tempfile.mkdtemp(prefix="wiseft-bench-"))
    (root / "bench-mini-clip.json").write_text(json.dumps(MODEL))
    open_clip.add_model_config(root / "bench-mini-clip.json")
    t0 = time.perf_counter()
    draw(root)
    (root / "bench.yaml").write_text(PROFILE.format(shifts=", ".join(SHIFTS),
                                                     epochs=os.environ.get("E2E_EPOCHS", "4"),
                                                     baseline_epochs=os.environ.get("BASELINE_EPOCHS", "1")))
    ctx = RunContext(load_profile(root / "bench.yaml"), out_dir=root / "run")

    def phase(name, fn, *args, **kwargs):
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        print(json.dumps({"phase": name, "seconds": round(time.perf_counter() - start, 1)}), flush=True)
        return out

    print(json.dumps({"phase": "draw", "seconds": round(time.perf_counter() - t0, 1)}), flush=True)
    phase("zeroshot", run_zeroshot, ctx)
    phase("finetune (e2e + lc)", run_finetune, ctx, variants=False, kshot=False)
    phase("interpolate", run_interpolation, ctx)
    phase("baselines (train all, one evaluation pass)", run_baselines, ctx)
    phase("analyses", run_analyses, ctx)
    phase("rerun (all up to date)", run_baselines, ctx)
    print(choose_alpha(ctx).to_string())
    rows = run_baselines(ctx)
    rows = rows[rows["alpha"].isna() | rows["alpha"].isin([0.0, 0.5, 1.0])]
    label = rows["mode"] + " " + rows["extra"].map(lambda e: e["setting"])
    print(rows.pivot_table(index=label, columns="dataset", values="value", aggfunc="last").round(3).to_string())


if __name__ == "__main__":
    main()
