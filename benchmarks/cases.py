"""The benchmark's six cases. Each takes a :class:`Sizes` and returns one row (a dict) of ``results.json``.

Every row has ``case``, ``name``, ``what`` (model, image size, image count), ``ours_s``, ``naive_s``, ``ratio``
(naive / ours), ``target`` (in words), ``measured`` (the number compared with the target, in words), ``met``
(``True``/``False``, or ``None`` when the case could not run, with ``reason``), ``load`` (1-minute load average
when the case started) and descriptive fields of its own.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

import common as C
import reference as R
from wiseft.device import autocast, dtype_for, resolve_device
from wiseft.interpolation import clone_state_dict

ROOT = C.HERE.parent


@dataclass
class Sizes:
    """What each case runs on. ``quick()`` and ``gpu()`` derive the other presets from the CPU default."""

    device: str = "cpu"
    precision: str = "fp32"           # evaluation and zero-shot precision (cases 1-3)
    decode: str = "cpu"               # ours: eval.decode (device: torchvision's decode_jpeg on the device)
    channels_last: bool = False       # ours: eval.channels_last and finetune.e2e.channels_last
    fused: bool | None = None         # ours: finetune.e2e.fused_optimizer (None: on CUDA)
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
    e2e_big_model: str = "ViT-B-32"      # its forward pass outweighs decoding ~10× on a CPU
    e2e_big_sets: int = 1
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
    mem_model: str = "ViT-B-32"          # weights-heavy run: 335 MiB of weights, one small chunk
    mem_images: int = 16
    mem_chunk_model: str = "bench-probe-224"  # chunk-heavy run (a 2-layer 224 px ViT, so that forwards take
    #                                            seconds): the default chunk filled, then one more batch
    mem_chunk_images: int = 2304
    mem_naive_images: int = 512          # the naive loop holds one batch: fewer images show its peak
    mem_alphas: tuple[int, int] = (2, 6)
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
            e2e_big_model="bench-tiny", e2e_big_sets=2,
            text_model="bench-tiny", zs_classes=4, zs_templates=8, zs_classes_per_batch=2, zs_naive_classes=2,
            peak_n=256, train_model="bench-tiny", train_batch=8, train_steps=4, train_warmup=1,
            mem_model="", mem_images=8, mem_chunk_model="bench-tiny", mem_chunk_images=300,
            mem_naive_images=16, mem_alphas=(2, 3), num_workers=min(b.num_workers, 1),
            pipeline=False, label=b.label + "-quick")

    @classmethod
    def gpu(cls) -> "Sizes":
        """One CUDA GPU: ViT-B/16 at 224 px in bf16, ImageNet-size zero-shot head; about 5 minutes on an H200."""
        return cls(device="cuda", precision="amp_bf16", decode="device", channels_last=True, fused=True, repeats=2,
                   per_set=96, eval_batch=256, num_workers=8,
                   lc_model="ViT-B-16", e2e_model="ViT-B-16",
                   e2e_big_model="ViT-L-14", e2e_big_sets=2, text_model="ViT-B-16", zs_classes=1000,
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
def _sweep_setup(s: Sizes, model_name: str, sets: int, head_only: bool):
    dev = resolve_device(s.device)
    cache = C.jpeg_cache(sets, s.per_set, s.jpeg_size, s.num_classes)
    model = C.make_classifier(model_name, s.num_classes).to(dev)
    size = C.image_size_of(model)
    eval_sets, counter = C.jpeg_eval_sets(cache, size, s.num_classes)
    theta0, theta1 = clone_state_dict(model), C.perturbed_state(model, head_only=head_only)
    extra = dict(model=model_name, image_size=size, images=sets * s.per_set, sets=sets, alphas=s.alphas,
                 jpeg_size=list(s.jpeg_size), jpeg_kb=C.mean_file_kb(cache), batch_size=s.eval_batch,
                 num_workers=s.num_workers, precision=s.precision, device=str(dev), repeats=s.repeats)
    what = (f"{model_name} (random weights), {size} px, {sets * s.per_set} JPEGs {s.jpeg_size[0]}×{s.jpeg_size[1]} "
            f"({sets} sets), {s.alphas} α, {s.precision}")
    return dev, model, eval_sets, counter, theta0, theta1, extra, what


def _run_sweeps(s: Sizes, dev, model, eval_sets, counter, theta0, theta1, naive_fn) -> tuple[dict, dict]:
    """Time ours against ``naive_fn`` (interleaved medians), counting decodes of each side's last repeat."""
    alphas = _alphas(s.alphas)
    m_ours, m_naive = copy.deepcopy(model), copy.deepcopy(model)
    decodes = {}
    kw = dict(device=dev, batch_size=s.eval_batch, num_workers=s.num_workers, precision=s.precision)
    workdir = Path(tempfile.mkdtemp(prefix="naive-", dir=C.OUT))

    def counted(side, fn):
        def run():
            counter.value = 0
            out = fn()
            decodes[side] = counter.value
            return out
        return run

    opts = dict(decode=s.decode, channels_last=s.channels_last)

    def ours_fn(alphas, sets):
        with C.counting_device_decodes(counter):
            return C.ours_sweep(m_ours, theta0, theta1, alphas, sets, **kw, **opts)

    ours = counted("ours", lambda: ours_fn(alphas, eval_sets))
    naive = counted("naive", lambda: naive_fn(m_naive, theta0, theta1, alphas, eval_sets, workdir=workdir, **kw))
    res = C.compare(ours, naive, s.repeats, dev,
                    warm_ours=lambda: ours_fn([0.0, 1.0], eval_sets[:1]),
                    warm_naive=lambda: naive_fn(m_naive, theta0, theta1, alphas[:1], eval_sets[:1], workdir=workdir,
                                                **kw))
    shutil.rmtree(workdir, ignore_errors=True)
    return res, decodes


def case1(s: Sizes) -> dict:
    """Linear-classifier sweep against the official LC workflow (features once per set, head and checkpoint per α)."""
    dev, model, eval_sets, counter, theta0, theta1, extra, what = _sweep_setup(s, s.lc_model, s.sets, True)
    res, decodes = _run_sweeps(s, dev, model, eval_sets, counter, theta0, theta1, R.official_lc_sweep)
    ratio = res["naive_s"] / res["ours_s"]
    n = extra["images"] * s.alphas
    return row(1, "linear-classifier α sweep", what, res["ours_s"], res["naive_s"],
               "≥ 2× faster than the official LC workflow", f"{ratio:.1f}× faster", ratio >= 2, **extra,
               naive_reproduces="wise-ft --freeze-encoder --cache-dir: each set's features computed once and cached "
                                "on disk, per α every weight merged, a checkpoint written and read back, the cached "
                                "features loaded again and the head run over them",
               ours_all=res["ours_all"], naive_all=res["naive_all"], decodes_ours=decodes["ours"],
               decodes_naive=decodes["naive"], scored_per_s_ours=round(n / res["ours_s"], 1),
               scored_per_s_naive=round(n / res["naive_s"], 1),
               max_top1_diff_vs_naive=C.max_diff(res["ours_out"], res["naive_out"]))


def _decode_forward_costs(model, eval_sets, s: Sizes, dev) -> tuple[float, float]:
    """Seconds per image of decoding + preprocessing (a DataLoader pass) and of one forward pass, medians."""
    n = sum(len(e.dataset) for e in eval_sets)
    d_all, f_all = [], []
    for _ in range(max(1, s.repeats)):
        batches = []

        def decode():
            for e in eval_sets:
                loader = torch.utils.data.DataLoader(e.dataset, batch_size=s.eval_batch, num_workers=s.num_workers)
                batches.extend(x for x, _ in loader)

        def forward():
            with torch.no_grad(), autocast(s.precision, dev):
                for x in batches:
                    model(x.to(dev))

        d_all.append(C.timed(decode, dev)[0] / n)
        f_all.append(C.timed(forward, dev)[0] / n)
    return float(np.median(d_all)), float(np.median(f_all))


def _per_alpha_costs(model, theta0, theta1, s: Sizes, dev) -> tuple[float, float]:
    """Seconds of one α's weight work: ours writes θ_α into the model (``lerp_into_``); naive merges every
    entry, loads it and round-trips a checkpoint. Medians."""
    from wiseft.interpolation import lerp_into_

    m = copy.deepcopy(model)
    workdir = Path(tempfile.mkdtemp(prefix="per-alpha-", dir=C.OUT))
    ours = [C.timed(lambda: lerp_into_(m, theta0, theta1, 0.5), dev)[0] for _ in range(max(1, s.repeats))]
    naive = [C.timed(lambda: C.merge_roundtrip(m, theta0, theta1, 0.5, workdir, dev), dev)[0]
             for _ in range(max(1, s.repeats))]
    shutil.rmtree(workdir, ignore_errors=True)
    return float(np.median(ours)), float(np.median(naive))


def _peak(s: Sizes, dev) -> float:
    """The device's matmul peak in the preset's precision (bf16 under amp_bf16), GFLOP/s."""
    return C.device_peak(dev, dtype_for(s.precision) or torch.float32, s.peak_n)


def speedup_model(d: float, f: float, n: int) -> float:
    """Decode-once speed-up over a per-α loop: n·(d+f) / (d + n·f) for decode d and forward f per image."""
    return n * (d + f) / (d + n * f)


def _e2e_row(s: Sizes, model_name: str, sets: int, regime: str, floor: float) -> dict:
    dev, model, eval_sets, counter, theta0, theta1, extra, what = _sweep_setup(s, model_name, sets, False)
    d, f = _decode_forward_costs(model.eval(), eval_sets, s, dev)
    c_ours, c_naive = _per_alpha_costs(model, theta0, theta1, s, dev)
    res, decodes = _run_sweeps(s, dev, model, eval_sets, counter, theta0, theta1, C.naive_sweep)
    n, images = s.alphas, extra["images"]
    ratio = res["naive_s"] / res["ours_s"]
    # with the per-α weight work: naive = n·(N·(d+f) + c_naive), ours = N·d + n·(N·f + c_ours)
    full = n * (images * (d + f) + c_naive) / (images * d + n * (images * f + c_ours))
    # d and f fitted to the two sweeps instead, net of the measured per-α weight work
    naive_net, ours_net = res["naive_s"] - n * c_naive, res["ours_s"] - n * c_ours
    d_fit = (naive_net - ours_net) / (images * (n - 1))
    f_fit = (ours_net / images - d_fit) / n
    once = decodes["ours"] == images
    predicted = speedup_model(d, f, n)
    flops, peak = C.forward_flops(model, extra["image_size"], dev, s.precision), _peak(s, dev)
    work = dict(ours=C.throughput(images * n, res["ours_s"], flops, peak, images * d, images * n * f),
                naive=C.throughput(images * n, res["naive_s"], flops, peak, images * n * d, images * n * f))
    return row(2, f"end-to-end α sweep, {regime}", what, res["ours_s"], res["naive_s"],
               f"≥ {floor}× faster than naive, each image decoded once per sweep",
               f"{ratio:.2f}× (formula {predicted:.2f}×, with per-α weight work {full:.2f}×; d {d * 1e3:.1f} ms, "
               f"f {f * 1e3:.1f} ms); decodes {decodes['ours']}/{images}", bool(ratio >= floor and once), **extra,
               regime=regime, per_alpha_s_ours=_r(c_ours, 5), per_alpha_s_naive=_r(c_naive, 5),
               predicted_ratio_with_per_alpha=_r(full, 3),
               naive_reproduces="wise-ft's sweep: per α merge every weight, write and read back a checkpoint, "
                                "evaluate every set through a DataLoader that decodes every image again",
               ours_all=res["ours_all"], naive_all=res["naive_all"], decodes_ours=decodes["ours"],
               decodes_naive=decodes["naive"], decoded_once=once,
               decode_s_per_image=_r(d, 6), forward_s_per_image=_r(f, 6), forward_over_decode=_r(f / d, 3),
               predicted_ratio=_r(predicted, 3), formula="speed-up = n·(d+f)/(d+n·f), n = number of α",
               fitted_decode_s_per_image=_r(d_fit, 6), fitted_forward_s_per_image=_r(f_fit, 6),
               forward_gflop_per_image=round(flops / 1e9, 3), throughput=work,
               max_top1_diff_vs_naive=C.max_diff(res["ours_out"], res["naive_out"]),
               constants=_e2e_constants(s, model, model_name, d, f, flops, c_ours, c_naive))


def _e2e_constants(s: Sizes, model, name: str, d, f, flops, c_ours, c_naive) -> list[dict]:
    params = sum(p.numel() for p in model.parameters())
    where = f"case 2, {name}, {s.device}, {torch.get_num_threads()} thread(s), {s.precision}"
    jpeg = f"{s.jpeg_size[0]}×{s.jpeg_size[1]} JPEG"
    return [
        _const("decode_s_per_image", d, "s/image", f"{where}: one DataLoader pass ({s.num_workers} workers) over the "
               f"{jpeg}s: read, decode, resize, crop, normalise"),
        _const(f"forward_s_per_image.{name}", f, "s/image", f"{where}: forward passes over preprocessed batches of "
               f"{s.eval_batch}"),
        _const(f"forward_gflop_per_image.{name}", flops / 1e9, "GFLOP/image", "FlopCounterMode, one forward pass"),
        _const(f"forward_gflops.{name}", flops / f / 1e9, "GFLOP/s", f"{where}: FLOPs over forward time"),
        _const("lerp_s_per_param", c_ours / params, "s/parameter", f"{where}: lerp_into_ of every weight, one α"),
        _const("checkpoint_roundtrip_s_per_byte", c_naive / C.model_bytes(model), "s/byte",
               f"{where}: merge every weight, load, torch.save and torch.load (weights_only) of the state dict"),
    ]


def _const(name: str, value: float, unit: str, how: str) -> dict:
    """One measured constant of the cost model (docs/performance.md)."""
    return {"name": name, "value": float(f"{value:.4g}"), "unit": unit, "how": how}


def case2(s: Sizes) -> list[dict]:
    """End-to-end sweep at a decode-bound and a forward-bound model size, with the speed-up model fitted."""
    return [_e2e_row(s, s.e2e_model, s.sets, "decode-bound", 1.5),
            _e2e_row(s, s.e2e_big_model, s.e2e_big_sets, "forward-bound", 0.98)]


# ---------------------------------------------------------------------------------------------- case 3
def _text_flops(model, tokens: torch.Tensor, batch: int, full_length: bool = False) -> float:
    """Analytic FLOPs of text encoding (matmuls: 24·n·L·d² + 4·n·L²·d per layer, plus the projection): ours runs
    prompts sorted by length and cut to the longest in each batch; ``full_length`` counts every prompt at the full
    context, as the naive loop runs them."""
    from wiseft.zeroshot import _prompt_lengths

    d = model.transformer.width
    layers = len(model.transformer.resblocks)
    lengths = None if full_length else _prompt_lengths(model, tokens)
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
    naive_flops = _text_flops(clip, tok([t.format(c) for c in names for t in templates]), len(templates), True)
    naive_fraction = naive_flops / naive_full / 1e9 / peak
    prompts = [t.format(c) for c in names for t in templates]
    tok_s = C.timed(lambda: tok(prompts))[0]  # the "data" of this step: tokenising every prompt
    work = dict(ours=C.throughput(len(prompts), res["ours_s"], analytic / len(prompts), peak, tok_s,
                                  res["ours_s"] - tok_s, unit="prompts"),
                naive=C.throughput(len(prompts), naive_full, naive_flops / len(prompts), peak, tok_s,
                                   naive_full - tok_s, unit="prompts"))
    head_diff = float((res["ours_out"].weight.detach()[:k] - res["naive_out"].float()).abs().max()
                      / res["naive_out"].float().abs().max())
    unit = "TFLOP/s" if dev.type == "cuda" else "GFLOP/s"
    scale = 1e-3 if dev.type == "cuda" else 1.0
    what = (f"{s.text_model} text tower (random weights), {len(names)} classes × {len(templates)} templates = "
            f"{len(names) * len(templates)} prompts, {s.precision}")
    return row(3, "zero-shot head (text tower)", what, res["ours_s"], naive_full, "≥ 50% of the matmul peak",
               f"{achieved * scale:.1f} {unit} = {fraction:.0%} of {peak * scale:.1f} {unit} "
               f"({s.peak_n}² matmul, {str(peak_dtype).replace('torch.', '')}); naive {naive_fraction:.0%} of peak "
               f"on {naive_flops / analytic:.1f}× the work", fraction >= 0.5,
               naive_reproduces="wise-ft's get_zeroshot_classifier: one class at a time, every template padded to "
                                "the full 77-token context",
               naive_gflop=round(naive_flops / 1e9, 2), naive_fraction_of_peak=round(naive_fraction, 3),
               work_saved=round(naive_flops / analytic, 2), throughput=work, tokenize_s=_r(tok_s),
               speedup_from_work=round(naive_flops / analytic, 2),
               speedup_from_utilisation=round(fraction / naive_fraction, 2),
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
               head_rel_diff_vs_naive=head_diff,
               constants=[_const(f"matmul_peak_gflops.{str(peak_dtype).replace('torch.', '')}", peak, "GFLOP/s",
                                 f"case 3, {s.device}, {torch.get_num_threads()} thread(s): median of "
                                 f"{s.peak_n}² matmuls"),
                          _const("text_fraction_of_peak", fraction, "fraction", f"case 3, {s.text_model} text tower, "
                                 f"{len(prompts)} prompts: analytic useful FLOPs over time, over the matmul peak"),
                          _const("tokenize_s_per_prompt", tok_s / len(prompts), "s/prompt",
                                 "case 3: open_clip's tokenizer over every prompt")])


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
                     num_workers=0, precision=precision, log_every_steps=10**9, grad_clip=1.0,
                     fused_optimizer=s.fused, channels_last=s.channels_last)
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
    # what would bound a real run: the training transform over JPEGs (this case trains on tensors in memory)
    from wiseft.datasets.images import FileListDataset
    from wiseft.finetune.augment import Preprocess, train_transform

    _, files, labels = C.jpeg_cache(s.sets, s.per_set, s.jpeg_size, s.num_classes)[0]
    jpegs = FileListDataset(files, labels, train_transform("clip", Preprocess(size)))
    load = C.loader_seconds_per_image(jpegs, s.train_batch, s.num_workers)
    flops, peak = C.train_flops(template, size, dev, "fp32"), _peak(s, dev)
    work = dict(ours=C.throughput(s.train_batch, ours_s, flops, peak, load * s.train_batch, ours_s),
                plain=C.throughput(s.train_batch, plain_s, flops, peak, load * s.train_batch, plain_s))
    for precision, rate in modes.items():
        if precision != "fp32":
            work[f"ours_{precision}"] = C.throughput(s.train_batch, s.train_batch / rate, flops, peak,
                                                     load * s.train_batch, s.train_batch / rate)
    what = f"{s.train_model} (random weights), {size} px, batch {s.train_batch}, {s.train_steps} steps ({s.train_warmup} warm-up)"
    return row(4, "fine-tuning step throughput", what, ours_s, plain_s,
               "no slower than a plain fp32 loop (ratio ≥ 0.95: 5% timing noise)",
               f"{s.train_batch / ours_s:.1f} vs {s.train_batch / plain_s:.1f} images/s (fp32)", ratio >= 0.95,
               model=s.train_model, image_size=size, batch=s.train_batch, steps=s.train_steps,
               warmup_steps=s.train_warmup, device=str(dev), repeats=s.repeats,
               seconds_per_step_ours_all=[round(t, 4) for t in t_ours],
               seconds_per_step_plain_all=[round(t, 4) for t in t_plain],
               images_per_s_plain_fp32=round(s.train_batch / plain_s, 2), images_per_s_ours=modes,
               precision_notes=mode_notes, throughput=work, train_gflop_per_image=round(flops / 1e9, 3),
               train_loader_s_per_image=_r(load, 6),
               constants=[_const(f"train_s_per_image.{s.train_model}", ours_s / s.train_batch, "s/image",
                                 f"case 4, {s.device}, {torch.get_num_threads()} thread(s), fp32: finetune_e2e step "
                                 f"time over batch {s.train_batch}"),
                          _const(f"train_gflop_per_image.{s.train_model}", flops / 1e9, "GFLOP/image",
                                 "FlopCounterMode, forward and backward"),
                          _const("train_loader_s_per_image", load, "s/image",
                                 f"case 4: 'clip' training transform over the {s.jpeg_size[0]}×{s.jpeg_size[1]} JPEGs, "
                                 f"{s.num_workers} workers")],
               throughput_note="bound compares a training step with loading its batch of JPEGs through the "
                               "'clip' training transform with num_workers processes (measured here on the "
                               "benchmark's JPEGs); this case itself trains on tensors in memory")


def _cpu_capability() -> str:
    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except AttributeError:
        return "unknown"


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


def case5(s: Sizes) -> dict:
    """Peak RSS of α sweeps in fresh processes (:mod:`memory`)."""
    import memory

    return memory.case5(s)


CASES = {1: case1, 2: case2, 3: case3, 4: case4, 5: case5, 6: case6}
