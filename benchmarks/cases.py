"""The benchmark's six cases. Each takes a :class:`Sizes` and returns one row (a dict) of ``results.json``.

Every row has ``case``, ``name``, ``what`` (model, image size, image count), ``ours_s``, ``naive_s``, ``ratio``
(naive / ours), ``target`` (in words), ``measured`` (the number compared with the target, in words), ``met``
(``True``/``False``, or ``None`` when the case could not run, with ``reason``), ``load`` (1-minute load average
when the case started) and descriptive fields of its own.
"""

from __future__ import annotations

import copy
import dataclasses
import gc
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

import common as C
from wiseft.datasets.base import EvalSet, Protocol
from wiseft.device import autocast, dtype_for, resolve_device
from wiseft.interpolation import clone_state_dict

ROOT = C.HERE.parent


@dataclass
class Sizes:
    """What each case runs on. ``quick()`` and ``gpu()`` derive the other presets from the CPU default."""

    device: str = "cpu"
    precision: str = "fp32"           # evaluation and zero-shot precision (cases 1-3)
    repeats: int = 3
    alphas: int = 21
    sets: int = 6                     # reference set + 5 shifts
    per_set: int = 8
    jpeg_size: tuple[int, int] = (375, 500)
    num_classes: int = 10
    eval_batch: int = 32
    num_workers: int = 0
    lc_model: str = "bench-vit-ti-32"    # ViT-Ti/32: width 192, 12 layers (benchmarks/configs)
    e2e_model: str = "bench-vit-mini-32"  # width 128, 8 layers: decoding outweighs its forward pass
    text_model: str = "ViT-B-32"
    zs_classes: int = 20
    zs_templates: int = 80
    zs_classes_per_batch: int = 10
    zs_naive_classes: int = 2         # the naive per-class loop is timed on these and scaled (it is linear)
    peak_n: int = 4096
    train_model: str = "bench-vit-ti-32"
    train_batch: int = 16
    train_steps: int = 8
    train_warmup: int = 2
    train_precisions: tuple[str, ...] = ("fp32", "amp_bf16")
    mem_model: str = "ViT-B-32"
    mem_images: int = 2
    mem_alphas: tuple[int, int] = (3, 21)
    pipeline: bool = True
    pipeline_timeout_s: int = 900
    label: str = "cpu"
    notes: list[str] = field(default_factory=list)

    @classmethod
    def quick(cls, base: "Sizes | None" = None) -> "Sizes":
        """Tiny sizes (seconds): the same code paths on a 32 px one-layer model."""
        b = base or cls()
        return dataclasses.replace(
            b, repeats=1, alphas=5, per_set=2, eval_batch=8, lc_model="bench-tiny", e2e_model="bench-tiny",
            text_model="bench-tiny", zs_classes=4, zs_templates=8, zs_classes_per_batch=2, zs_naive_classes=2,
            peak_n=256, train_model="bench-tiny", train_batch=8, train_steps=4, train_warmup=1,
            mem_model="bench-tiny", mem_images=2, mem_alphas=(3, 5), num_workers=min(b.num_workers, 1),
            pipeline=False, label=b.label + "-quick")

    @classmethod
    def gpu(cls) -> "Sizes":
        """One CUDA GPU: ViT-B/16 at 224 px in bf16, ImageNet-size zero-shot head; about 5 minutes on an H200."""
        return cls(device="cuda", precision="amp_bf16", repeats=2, per_set=96, eval_batch=256, num_workers=8,
                   lc_model="ViT-B-16", e2e_model="ViT-B-16", text_model="ViT-B-16", zs_classes=1000,
                   zs_classes_per_batch=100, zs_naive_classes=50, peak_n=8192, train_model="ViT-B-16",
                   train_batch=128, train_steps=20, train_warmup=5, mem_model="ViT-B-16", mem_images=256,
                   pipeline=False, label="gpu")


def row(case: int, name: str, what: str, ours_s, naive_s, target: str, measured: str, met, **extra) -> dict:
    ratio = naive_s / ours_s if ours_s and naive_s else None
    return {"case": case, "name": name, "what": what, "ours_s": _r(ours_s), "naive_s": _r(naive_s),
            "ratio": _r(ratio, 2), "target": target, "measured": measured, "met": met, **extra}


def _r(x, digits=3):
    return None if x is None else round(float(x), digits)


def _alphas(n: int) -> list[float]:
    return [round(float(a), 4) for a in np.linspace(0.0, 1.0, n)]


# --------------------------------------------------------------------------------------- cases 1 and 2
def _sweep_case(s: Sizes, case: int, head_only: bool) -> dict:
    dev = resolve_device(s.device)
    model_name = s.lc_model if head_only else s.e2e_model
    cache = C.jpeg_cache(s.sets, s.per_set, s.jpeg_size, s.num_classes)
    model = C.make_classifier(model_name, s.num_classes).to(dev)
    size = C.image_size_of(model)
    eval_sets, counter = C.jpeg_eval_sets(cache, size, s.num_classes)
    n_images = s.sets * s.per_set
    theta0, theta1 = clone_state_dict(model), C.perturbed_state(model, head_only=head_only)
    alphas = _alphas(s.alphas)
    m_ours, m_naive = copy.deepcopy(model), copy.deepcopy(model)
    del model
    decodes = {}
    kw = dict(device=dev, batch_size=s.eval_batch, num_workers=s.num_workers, precision=s.precision)
    workdir = Path(tempfile.mkdtemp(prefix="naive-", dir=C.OUT))

    def ours():
        counter.value = 0
        out = C.ours_sweep(m_ours, theta0, theta1, alphas, eval_sets, **kw)
        decodes["ours"] = counter.value
        return out

    def naive():
        counter.value = 0
        out = C.naive_sweep(m_naive, theta0, theta1, alphas, eval_sets, workdir=workdir, **kw)
        decodes["naive"] = counter.value
        return out

    res = C.compare(ours, naive, s.repeats, dev,
                    warm_ours=lambda: C.ours_sweep(m_ours, theta0, theta1, [0.0, 1.0], eval_sets[:1], **kw),
                    warm_naive=lambda: C.naive_sweep(m_naive, theta0, theta1, alphas[:1], eval_sets[:1],
                                                     workdir=workdir, **kw))
    workdir.rmdir()
    ratio = res["naive_s"] / res["ours_s"]
    what = (f"{model_name} (random weights), {size} px, {n_images} JPEGs {s.jpeg_size[0]}×{s.jpeg_size[1]} "
            f"({s.sets} sets), {len(alphas)} α, {s.precision}")
    extra = dict(model=model_name, image_size=size, images=n_images, sets=s.sets, alphas=len(alphas),
                 jpeg_size=list(s.jpeg_size), jpeg_kb=C.mean_file_kb(cache), batch_size=s.eval_batch,
                 num_workers=s.num_workers, precision=s.precision, device=str(dev), repeats=s.repeats,
                 ours_all=res["ours_all"], naive_all=res["naive_all"],
                 decodes_ours=decodes["ours"], decodes_naive=decodes["naive"],
                 scored_per_s_ours=round(n_images * len(alphas) / res["ours_s"], 1),
                 scored_per_s_naive=round(n_images * len(alphas) / res["naive_s"], 1),
                 max_top1_diff_vs_naive=C.max_diff(res["ours_out"], res["naive_out"]))
    if head_only:
        return row(1, "linear-classifier α sweep", what, res["ours_s"], res["naive_s"], "≥ 10× faster than naive",
                   f"{ratio:.1f}× faster", ratio >= 10, **extra)
    once = decodes["ours"] == n_images
    return row(2, "end-to-end α sweep", what, res["ours_s"], res["naive_s"],
               "≥ 1.5× faster than naive, each image decoded once per sweep",
               f"{ratio:.2f}× faster; {decodes['ours']} decodes for {n_images} images (naive {decodes['naive']})",
               bool(ratio >= 1.5 and once), **extra)


def case1(s: Sizes) -> dict:
    """Linear-classifier sweep: θ0 and θ1 differ in the head only; naive runs the whole encoder per α."""
    return _sweep_case(s, 1, head_only=True)


def case2(s: Sizes) -> dict:
    """End-to-end sweep: every weight differs; ours decodes each image once, naive once per α."""
    return _sweep_case(s, 2, head_only=False)


# ---------------------------------------------------------------------------------------------- case 3
def _text_flops(model, tokens: torch.Tensor, batch: int) -> float:
    """Analytic FLOPs of our text encoding (matmuls: 24·n·L·d² + 4·n·L²·d per layer, plus the projection)."""
    from wiseft.zeroshot import _prompt_lengths

    d = model.transformer.width
    layers = len(model.transformer.resblocks)
    lengths = _prompt_lengths(model, tokens)
    lengths = torch.full((len(tokens),), tokens.shape[1]) if lengths is None else lengths.sort().values
    total = 0.0
    for start in range(0, len(tokens), batch):
        n = len(lengths[start:start + batch])
        L = int(lengths[start:start + batch].max())
        total += layers * (24 * n * L * d * d + 4 * n * L * L * d) + 2 * n * d * model.text_projection.shape[-1]
    return total


def case3(s: Sizes) -> dict:
    """Zero-shot head from the text tower: achieved FLOP/s against a large matmul in the same run."""
    import open_clip
    from torch.utils.flop_counter import FlopCounterMode

    from wiseft.zeroshot import zeroshot_head

    dev = resolve_device(s.device)
    C.register_configs()
    torch.manual_seed(0)
    clip = open_clip.create_model(s.text_model, pretrained=None).to(dev).eval()
    clip.visual = None  # the text tower is all that runs
    tok = open_clip.get_tokenizer(s.text_model)
    names = list(open_clip.IMAGENET_CLASSNAMES)[:s.zs_classes]
    templates = [t("{}") for t in open_clip.OPENAI_IMAGENET_TEMPLATES][:s.zs_templates]
    per_batch = s.zs_classes_per_batch
    peak_dtype = dtype_for(s.precision) or torch.float32
    peaks = C.matmul_peak(s.peak_n, peak_dtype, dev)

    def ours():
        return zeroshot_head(clip, tok, names, templates, device=dev, num_classes_per_batch=per_batch,
                             precision=s.precision)

    k = min(s.zs_naive_classes, len(names))

    def naive():
        with autocast(s.precision, dev):
            return C.naive_zeroshot_weights(clip, tok, names[:k], templates, dev)

    warm = names[:2]
    with FlopCounterMode(display=False) as counter:  # the warm-up call, also checking the analytic count
        zeroshot_head(clip, tok, warm, templates, device=dev, num_classes_per_batch=per_batch, precision=s.precision)
    counted_warm = float(counter.get_total_flops())
    analytic_warm = _text_flops(clip, tok([t.format(c) for c in warm for t in templates]), per_batch * len(templates))
    res = C.compare(ours, naive, s.repeats, dev, warm_ours=lambda: None,
                    warm_naive=lambda: C.naive_zeroshot_weights(clip, tok, names[:1], templates[:8], dev))
    peaks += C.matmul_peak(s.peak_n, peak_dtype, dev)
    analytic = _text_flops(clip, tok([t.format(c) for c in names for t in templates]), per_batch * len(templates))
    peak = float(np.median(peaks))
    achieved = analytic / res["ours_s"] / 1e9
    fraction = achieved / peak
    naive_full = res["naive_s"] * len(names) / k
    head_diff = float((res["ours_out"].weight.detach()[:k] - res["naive_out"].float()).abs().max()
                      / res["naive_out"].float().abs().max())
    unit = "TFLOP/s" if dev.type == "cuda" else "GFLOP/s"
    scale = 1e-3 if dev.type == "cuda" else 1.0
    what = (f"{s.text_model} text tower (random weights), {len(names)} classes × {len(templates)} templates = "
            f"{len(names) * len(templates)} prompts, {s.precision}")
    return row(3, "zero-shot head (text tower)", what, res["ours_s"], naive_full, "≥ 50% of the matmul peak",
               f"{achieved * scale:.1f} {unit} = {fraction:.0%} of {peak * scale:.1f} {unit} "
               f"({s.peak_n}² matmul, {str(peak_dtype).replace('torch.', '')})", fraction >= 0.5,
               model=s.text_model, classes=len(names), templates=len(templates), prompts=len(names) * len(templates),
               precision=s.precision, device=str(dev), repeats=s.repeats, ours_all=res["ours_all"],
               gflop=round(analytic / 1e9, 2),
               flop_check=f"FlopCounterMode {counted_warm / 1e9:.2f} vs analytic {analytic_warm / 1e9:.2f} GFLOP "
                          f"on {len(warm)} classes (the counter also sees the once-per-call check of 2 prompts at "
                          f"full length; achieved FLOP/s count the analytic, useful work only)",
               achieved_gflops=round(achieved, 1), peak_gflops=round(peak, 1),
               peak_samples_gflops=[round(p, 1) for p in peaks], fraction_of_peak=round(fraction, 3),
               naive_classes_timed=k, naive_timed_s=_r(res["naive_s"]),
               naive_note=f"the per-class loop was timed on {k} of {len(names)} classes and scaled ×{len(names) / k:g} "
                          f"(its cost is linear in the classes)",
               head_rel_diff_vs_naive=head_diff)


# ---------------------------------------------------------------------------------------------- case 4
def case4(s: Sizes) -> dict:
    """Fine-tuning step throughput of finetune_e2e against a plain fp32 loop on the same model and data."""
    from wiseft.finetune import finetune_e2e
    from wiseft.profile import E2ECfg

    dev = resolve_device(s.device)
    template = C.make_classifier(s.train_model, s.num_classes)
    size = C.image_size_of(template)
    data = C.tensor_train_set(s.train_batch * s.train_steps, size, s.num_classes)

    def ours(precision: str, steps: int, warmup: int) -> float:
        model = copy.deepcopy(template)
        clock = C.StepClock(model, dev)
        cfg = E2ECfg(epochs=1, max_steps=steps, batch_size=s.train_batch, lr=1e-5, warmup_steps=1,
                     num_workers=0, precision=precision, log_every_steps=10**9, grad_clip=1.0)
        with tempfile.TemporaryDirectory(dir=C.OUT) as out:
            finetune_e2e(model, data, cfg, out, device=dev, seed=0)
        clock.close()
        return clock.seconds_per_step(warmup)

    def plain() -> float:
        model = copy.deepcopy(template)
        clock = C.StepClock(model, dev)
        C.plain_train(model, data, batch_size=s.train_batch, steps=s.train_steps, lr=1e-5, device=dev)
        clock.close()
        return clock.seconds_per_step(s.train_warmup)

    t_ours, t_plain = [], []
    for _ in range(max(1, s.repeats)):
        t_plain.append(plain())
        t_ours.append(ours("fp32", s.train_steps, s.train_warmup))
    ours_s, plain_s = float(np.median(t_ours)), float(np.median(t_plain))
    modes = {"fp32": round(s.train_batch / ours_s, 2)}
    mode_notes = {}
    for precision in s.train_precisions:
        if precision == "fp32":
            continue
        if dev.type == "cpu" and precision == "amp_bf16" and "BF16" not in _cpu_capability() and \
                "AMX" not in _cpu_capability():
            # no bf16 instructions: autocast emulates bf16 matmuls (~50× slower here); one short run
            t = ours(precision, 3, 1)
            mode_notes[precision] = f"this CPU ({_cpu_capability()}) has no bf16 instructions: emulated, 2 steps"
        else:
            t = float(np.median([ours(precision, s.train_steps, s.train_warmup) for _ in range(max(1, s.repeats))]))
        modes[precision] = round(s.train_batch / t, 2)
    ratio = plain_s / ours_s
    what = f"{s.train_model} (random weights), {size} px, batch {s.train_batch}, {s.train_steps} steps ({s.train_warmup} warm-up)"
    return row(4, "fine-tuning step throughput", what, ours_s, plain_s,
               "no slower than a plain fp32 loop (ratio ≥ 0.95: 5% timing noise)",
               f"{s.train_batch / ours_s:.1f} vs {s.train_batch / plain_s:.1f} images/s (fp32)", ratio >= 0.95,
               model=s.train_model, image_size=size, batch=s.train_batch, steps=s.train_steps,
               warmup_steps=s.train_warmup, device=str(dev), repeats=s.repeats,
               seconds_per_step_ours_all=[round(t, 4) for t in t_ours],
               seconds_per_step_plain_all=[round(t, 4) for t in t_plain],
               images_per_s_plain_fp32=round(s.train_batch / plain_s, 2), images_per_s_ours=modes,
               precision_notes=mode_notes)


def _cpu_capability() -> str:
    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except AttributeError:
        return "unknown"


# ---------------------------------------------------------------------------------------------- case 5
def case5(s: Sizes) -> dict:
    """Peak memory of α sweeps in model copies: ours keeps θ0, θ1 and the working model whatever the α count."""
    dev = resolve_device(s.device)
    gc.collect()
    base = C.Census()
    base()
    model = C.make_classifier(s.mem_model, s.num_classes).to(dev)
    size = C.image_size_of(model)
    g = torch.Generator().manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(s.mem_images, 3, size, size, generator=g),
                                          torch.randint(0, s.num_classes, (s.mem_images,), generator=g))
    eval_sets = [EvalSet("memory", data, [f"class{i}" for i in range(s.num_classes)], Protocol(), role="reference")]
    theta0, theta1 = clone_state_dict(model), C.perturbed_state(model, head_only=False)
    mb = C.model_bytes(model)
    kw = dict(device=dev, batch_size=s.eval_batch, num_workers=0, precision=s.precision)
    copies, rss, secs = {}, {}, {}
    workdir = Path(tempfile.mkdtemp(prefix="mem-", dir=C.OUT))
    for method in ("ours", "naive"):
        for n in s.mem_alphas:
            gc.collect()
            census = C.Census()
            hook = model.image_encoder.register_forward_pre_hook(lambda *a: census())
            if method == "ours":
                dt, _ = C.timed(lambda: C.ours_sweep(model, theta0, theta1, _alphas(n), eval_sets, **kw), dev)
            else:
                dt, _ = C.timed(lambda: C.naive_sweep(model, theta0, theta1, _alphas(n), eval_sets, workdir=workdir,
                                                      on_forward=None, **kw), dev)
            hook.remove()
            copies[f"{method}_{n}"] = round((census.peak_tensors - base.peak_tensors) / mb, 2)
            rss[f"{method}_{n}"] = round((census.peak_rss - census.rss_start) / mb, 2)
            secs[f"{method}_{n}"] = round(dt, 3)
    workdir.rmdir()
    lo, hi = s.mem_alphas
    ours_hi, ours_lo = copies[f"ours_{hi}"], copies[f"ours_{lo}"]
    met = bool(ours_hi <= 3.05 and abs(ours_hi - ours_lo) <= 0.05)
    what = f"{s.mem_model} (random weights, {mb / 2**20:.0f} MiB), {size} px, {s.mem_images} images, {lo} vs {hi} α"
    return row(5, "peak memory of an α sweep", what, secs[f"ours_{hi}"], secs[f"naive_{hi}"],
               "≤ 3 model copies resident, independent of the α count",
               f"{ours_lo} copies ({lo} α), {ours_hi} ({hi} α); naive {copies[f'naive_{hi}']}", met,
               model=s.mem_model, model_mib=round(mb / 2**20, 1), images=s.mem_images, device=str(dev),
               copies=copies, rss_growth_copies=rss, seconds=secs,
               method_note="copies = peak bytes of all live tensors (unique storages, sampled at every encoder "
                           "forward) minus those alive before the model was built, over the model's bytes; "
                           "rss_growth_copies = growth of the process RSS during the sweep, same unit; "
                           "timings include the sampling")


# ---------------------------------------------------------------------------------------------- case 6
def case6(s: Sizes) -> dict:
    """The whole ``mini`` pipeline, as a user runs it, timed from outside."""
    target = "≤ 600 s wall (2 CPU cores, pretrained model cached)"
    what = "python -m wiseft run --profile mini"
    if not s.pipeline:
        return row(6, "mini pipeline", what, None, None, target, "skipped", None,
                   reason="skipped in this mode (--quick or --gpu): it takes minutes")
    with tempfile.TemporaryDirectory(prefix="mini-", dir=C.OUT) as out:
        cmd = [sys.executable, "-m", "wiseft", "run", "--profile", "mini", "--out", out]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               "WISEFT_PROGRESS": "0"}
        # untimed: the world drawn and its CLIP in the cache, as the target says (a no-op when they are)
        warm = [sys.executable, str(ROOT / "data_prep" / "build_world.py"), "--workers", "2"]
        prep = subprocess.run(warm, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        if prep.returncode != 0:
            tail = (prep.stderr or prep.stdout).strip().splitlines()[-3:]
            return row(6, "mini pipeline", what, None, None, target, "not available", None,
                       reason=f"preparing the world failed (`data_prep/build_world.py` exited {prep.returncode}): "
                              f"{' | '.join(tail)}", command=" ".join(cmd[1:]))
        try:
            dt, proc = C.timed(lambda: subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                                                      timeout=s.pipeline_timeout_s))
        except subprocess.TimeoutExpired:
            return row(6, "mini pipeline", what, None, None, target, f"> {s.pipeline_timeout_s} s", False,
                       reason=f"did not finish within {s.pipeline_timeout_s} s", command=" ".join(cmd[1:]))
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return row(6, "mini pipeline", what, None, None, target, "not available", None,
                   reason=f"not available: `{' '.join(cmd[1:4])} ...` exited {proc.returncode} after {dt:.0f} s "
                          f"(the pipeline or its notebooks are not in this checkout yet): {' | '.join(tail)}",
                   command=" ".join(cmd[1:]))
    return row(6, "mini pipeline", what, dt, None, target, f"{dt:.0f} s", dt <= 600, command=" ".join(cmd[1:]))


CASES = {1: case1, 2: case2, 3: case3, 4: case4, 5: case5, 6: case6}
