"""Helpers of the benchmark: timing, the JPEG cache, random-weight models, and the naive reference loops.

The naive loops are written as the wise-ft repository runs them (``src/wise_ft.py``, ``src/models/eval.py``,
``src/models/zeroshot.py``), so that "ours vs naive" compares two honest implementations on the same model,
data and machine, in the same process.
"""

from __future__ import annotations

import contextlib
import copy
import json
import multiprocessing as mp
import os
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from wiseft.datasets.base import EvalSet, Protocol
from wiseft.datasets.images import FileListDataset
from wiseft.device import autocast, resolve_device
from wiseft.io import atomic_write_json
from wiseft.models import ClassificationHead, ClassifierInfo, ImageClassifier, eval_transform

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


# --------------------------------------------------------------------------------------------- timing
def load_avg() -> float:
    """The 1-minute load average (what else ran on the machine while we timed)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return float("nan")


def synchronize(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], Any], device: torch.device | str = "cpu") -> tuple[float, Any]:
    """Wall seconds of ``fn()`` (device work included) and its result."""
    synchronize(device)
    t0 = time.perf_counter()
    out = fn()
    synchronize(device)
    return time.perf_counter() - t0, out


def compare(ours: Callable[[], Any], naive: Callable[[], Any], repeats: int, device: torch.device | str,
            warm_ours: Callable[[], Any] | None = None, warm_naive: Callable[[], Any] | None = None) -> dict:
    """Warm both up, then time them alternately ``repeats`` times (so load drift hits both); medians.

    Returns:
        ``{"ours_s", "naive_s", "ours_all", "naive_all", "ours_out", "naive_out"}`` (outputs of the last repeat).
    """
    (warm_ours or ours)()
    (warm_naive or naive)()
    t_ours, t_naive, out_ours, out_naive = [], [], None, None
    for _ in range(max(1, repeats)):
        dt, out_ours = timed(ours, device)
        t_ours.append(dt)
        dt, out_naive = timed(naive, device)
        t_naive.append(dt)
    return {"ours_s": statistics.median(t_ours), "naive_s": statistics.median(t_naive),
            "ours_all": [round(t, 4) for t in t_ours], "naive_all": [round(t, 4) for t in t_naive],
            "ours_out": out_ours, "naive_out": out_naive}


def matmul_peak(n: int, dtype: torch.dtype, device: torch.device | str, repeats: int = 5) -> list[float]:
    """Achieved GFLOP/s of ``n×n @ n×n`` in ``dtype`` (each of ``repeats`` products after one warm-up)."""
    g = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(n, n, generator=g).to(device=device, dtype=dtype)
    b = torch.randn(n, n, generator=g).to(device=device, dtype=dtype)
    with torch.inference_mode():
        a @ b
        rates = []
        for _ in range(repeats):
            dt, _ = timed(lambda: a @ b, device)
            rates.append(2 * n**3 / dt / 1e9)
    return rates


_PEAKS: dict = {}


def device_peak(device, dtype: torch.dtype, n: int) -> float:
    """Median GFLOP/s of an ``n×n`` matmul in ``dtype`` on ``device``, measured once per process."""
    key = (str(device), dtype, n)
    if key not in _PEAKS:
        _PEAKS[key] = statistics.median(matmul_peak(n, dtype, device))
    return _PEAKS[key]


def forward_flops(model: torch.nn.Module, image_size: int, device, precision: str = "fp32") -> float:
    """FLOPs of one image's forward pass, as torch's FlopCounterMode counts them (matmuls and convolutions).

    Counted with autograd on: under ``no_grad`` ``nn.MultiheadAttention`` takes a fused fast path whose
    projections the counter does not see (a third of a ViT-B/32's FLOPs)."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros(2, 3, image_size, image_size, device=device)
    with torch.enable_grad(), FlopCounterMode(display=False) as counter, autocast(precision, device):
        model(x)
    return counter.get_total_flops() / 2


def train_flops(model: torch.nn.Module, image_size: int, device, precision: str = "fp32") -> float:
    """FLOPs of one image's training step (forward and backward), as FlopCounterMode counts them."""
    from torch.utils.flop_counter import FlopCounterMode

    model = copy.deepcopy(model).to(device).train()
    x = torch.zeros(2, 3, image_size, image_size, device=device)
    with FlopCounterMode(display=False) as counter:
        with autocast(precision, device):
            out = model(x)
        out.float().sum().backward()
    return counter.get_total_flops() / 2


def loader_seconds_per_image(dataset, batch_size: int, num_workers: int) -> float:
    """Wall seconds per image of one DataLoader pass (decoding and transforms, ``num_workers`` processes)."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=num_workers)
    dt, n = timed(lambda: sum(len(x) for x, _ in loader))
    return dt / n


def throughput(items: int, seconds: float, flops_per_item: float, peak_gflops: float, load_s: float,
               compute_s: float, unit: str = "images") -> dict:
    """Items/s, achieved FLOP/s and fraction of the matmul peak of one side, and which of data loading (or
    tokenising) and compute takes longer (the bound)."""
    achieved = items * flops_per_item / seconds / 1e9
    def sig(x: float) -> float:  # four significant digits: tiny --quick numbers stay above zero
        return float(f"{x:.4g}")

    return {f"{unit}_per_s": sig(items / seconds), "achieved_gflops": sig(achieved),
            "fraction_of_peak": sig(achieved / peak_gflops), "peak_gflops": sig(peak_gflops),
            "load_s": sig(load_s), "compute_s": sig(compute_s),
            "bound": "data loading" if load_s > compute_s else "compute"}


# ----------------------------------------------------------------------------------------------- data
def jpeg_cache(sets: int, per_set: int, size: tuple[int, int] = (375, 500), num_classes: int = 10,
               seed: int = 0) -> list[tuple[str, list[str], list[int]]]:
    """JPEG files of ``size`` (height, width) in ``benchmarks/out/jpeg/``, made once with a fixed seed.

    Content is smooth random colour fields plus grain, saved at quality 90, so files weigh about what a
    photograph of that size does (~100 KB). Returns ``(set name, files, labels)`` for the reference set and the
    shifts.
    """
    h, w = size
    root = OUT / "jpeg" / f"seed{seed}-{h}x{w}-{sets}x{per_set}-c{num_classes}"
    names = ["reference"] + [f"shift{i}" for i in range(1, sets)]
    marker = root / "labels.json"
    if not marker.is_file():
        rng = np.random.default_rng(seed)
        labels = {}
        for name in names:
            (root / name).mkdir(parents=True, exist_ok=True)
            labels[name] = [int(x) for x in rng.integers(0, num_classes, per_set)]
            for i in range(per_set):
                base = (rng.random((h // 12, w // 12, 3)) * 255).astype(np.uint8)
                img = np.asarray(Image.fromarray(base).resize((w, h), Image.BICUBIC), dtype=np.float32)
                img = np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
                Image.fromarray(img).save(root / name / f"{i:05d}.jpg", format="JPEG", quality=90)
        atomic_write_json(marker, labels)  # written last: its presence means the cache is complete
    labels = json.loads(marker.read_text())
    return [(name, [str(root / name / f"{i:05d}.jpg") for i in range(per_set)], labels[name]) for name in names]


@contextlib.contextmanager
def counting_device_decodes(counter):
    """Count images decoded by :func:`wiseft.evalcache.decode_on_device` (``eval.decode=device``) in ``counter``."""
    import wiseft.evalcache as E

    real = E.decode_on_device

    def counted(data, size, dev):
        counter.value += len(data)
        return real(data, size, dev)

    E.decode_on_device = counted
    try:
        yield
    finally:
        E.decode_on_device = real


class CountingFiles(FileListDataset):
    """A :class:`FileListDataset` that counts decodes in a counter shared with DataLoader workers."""

    def __init__(self, files, labels, transform, counter):
        super().__init__(files, labels, transform)
        self.counter = counter

    def __getitem__(self, index: int):
        with self.counter.get_lock():
            self.counter.value += 1
        return super().__getitem__(index)


def jpeg_eval_sets(cache: list[tuple[str, list[str], list[int]]], image_size: int, num_classes: int
                   ) -> tuple[list[EvalSet], Any]:
    """Evaluation sets over the cached JPEGs with open_clip's eval transform, and their shared decode counter."""
    counter = mp.Value("q", 0)
    transform = eval_transform(image_size, OPENAI_MEAN, OPENAI_STD)
    classes = [f"class{i}" for i in range(num_classes)]
    sets = [EvalSet(name, CountingFiles(files, labels, transform, counter), classes, Protocol(),
                    role="reference" if name == "reference" else "shift") for name, files, labels in cache]
    return sets, counter


def mean_file_kb(cache) -> float:
    files = [f for _, fs, _ in cache for f in fs]
    return round(sum(os.path.getsize(f) for f in files) / len(files) / 1024, 1)


# --------------------------------------------------------------------------------------------- models
def register_configs() -> None:
    """Make the benchmark's small model configs (``benchmarks/configs/*.json``) known to open_clip."""
    import open_clip

    for path in sorted((HERE / "configs").glob("*.json")):
        if path.stem not in open_clip.list_models():
            open_clip.add_model_config(path)


def make_classifier(model_name: str, num_classes: int, seed: int = 0) -> ImageClassifier:
    """A random-weight open_clip image tower with a random head (float32, CPU, eval mode); text tower dropped."""
    import open_clip

    register_configs()
    torch.manual_seed(seed)
    clip = open_clip.create_model(model_name, pretrained=None)
    size = clip.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    head = ClassificationHead(torch.randn(num_classes, clip.visual.output_dim) * 10)
    info = ClassifierInfo(model_name, None, [f"class{i}" for i in range(num_classes)], None, OPENAI_MEAN,
                          OPENAI_STD, (size, size))
    return ImageClassifier(clip.visual, head, info).float().eval()


def image_size_of(model: ImageClassifier) -> int:
    return int(model.info.image_size[0])


def perturbed_state(model: torch.nn.Module, head_only: bool, scale: float = 0.05, seed: int = 7
                    ) -> dict[str, torch.Tensor]:
    """A stand-in θ_1: θ_0 plus noise (on the head only for a linear classifier, everywhere for E2E)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, v in model.state_dict().items():
        v = v.detach().clone()
        if v.is_floating_point() and (not head_only or k.startswith("head.")):
            v += (scale * v.abs().mean() * torch.randn(v.shape, generator=g)).to(v.device, v.dtype)
        out[k] = v
    return out


def model_bytes(model: torch.nn.Module) -> int:
    return sum(v.numel() * v.element_size() for v in model.state_dict().values())


# ------------------------------------------------------------------------------------ naive reference
def merge_roundtrip(model: torch.nn.Module, theta0, theta1, a: float, workdir: Path, dev) -> dict:
    """wise-ft's per-α work before evaluating: ``_merge`` every entry, load it, write the checkpoint and read it
    back (``torch.save`` / ``torch.load(weights_only=True)`` of the state dict, as large as wise-ft's pickle; the
    file is deleted once read). Returns the merged state dict."""
    theta = {k: (1 - a) * v + a * theta1[k] if v.is_floating_point() else v for k, v in theta0.items()}
    model.load_state_dict(theta)
    path = workdir / f"wise_ft_alpha={a:.3f}.pt"
    torch.save(model.state_dict(), path)
    model.load_state_dict(torch.load(path, map_location=dev, weights_only=True))
    path.unlink()
    model.eval()
    return theta


def naive_sweep(model: ImageClassifier, theta0, theta1, alphas: Sequence[float], eval_sets: Sequence[EvalSet], *,
                workdir: Path, device, batch_size: int, num_workers: int, precision: str = "fp32",
                on_forward: Callable[[], None] | None = None) -> dict[tuple[float, str], float]:
    """The wise-ft repository's α sweep: per α, merge every tensor, write a checkpoint, read it back, and
    evaluate every set through a DataLoader that decodes every image again. Returns top-1 per ``(α, set)``.

    wise-ft pickles the whole classifier; the safe equivalent here is the state dict through ``torch.save`` and
    ``torch.load(weights_only=True)``. The file is deleted once read to spare the disk (wise-ft keeps one per α).
    """
    dev = resolve_device(device)
    model = model.to(dev)
    workdir.mkdir(parents=True, exist_ok=True)
    out = {}
    for a in alphas:
        theta = merge_roundtrip(model, theta0, theta1, a, workdir, dev)  # alive through evaluation, as in wise-ft
        for eval_set in eval_sets:
            loader = torch.utils.data.DataLoader(eval_set.dataset, batch_size=batch_size, shuffle=False,
                                                 num_workers=num_workers, pin_memory=dev.type == "cuda")
            preds, labels = [], []
            with torch.no_grad():
                for x, y in loader:
                    if on_forward is not None:
                        on_forward()
                    with autocast(precision, dev):
                        logits = model(x.to(dev, non_blocking=True)).float()
                    preds.append(eval_set.protocol.project_logits(logits).argmax(dim=-1).cpu().numpy())
                    labels.append(np.asarray(y))
            out[(float(a), eval_set.name)] = eval_set.protocol.metrics(np.concatenate(preds),
                                                                       np.concatenate(labels))["top1"]
    return out


def ours_sweep(model: ImageClassifier, theta0, theta1, alphas: Sequence[float], eval_sets: Sequence[EvalSet], *,
               device, batch_size: int, num_workers: int, precision: str = "fp32", decode: str = "cpu",
               channels_last: bool = False) -> dict[tuple[float, str], float]:
    """wiseft's engine: :func:`wiseft.evaluation.evaluate_settings` over :func:`lerp_settings`, with the
    profile's default chunk bounds (``EvalCfg``)."""
    from wiseft.evaluation import evaluate_settings, lerp_settings
    from wiseft.profile import EvalCfg

    cfg = EvalCfg()
    settings = lerp_settings(theta0, theta1, alphas)
    res = evaluate_settings(model, settings, eval_sets, device=device, batch_size=batch_size,
                            num_workers=num_workers, precision=precision, chunk_images=cfg.chunk_images,
                            memory_gb=cfg.memory_gb, decode=decode, channels_last=channels_last)
    return {(float(s.alpha), name): res.value(s.label, name) for s in settings for name in res.sets}


def max_diff(a: dict, b: dict) -> float:
    return round(max(abs(a[k] - b[k]) for k in a), 4)


@torch.no_grad()
def naive_zeroshot_weights(model, tokenizer, classnames: Sequence[str], templates: Sequence[str],
                           device) -> torch.Tensor:
    """wise-ft's ``get_zeroshot_classifier``: one class at a time, every template at full context length."""
    rows = []
    for c in classnames:
        texts = tokenizer([t.format(c) for t in templates]).to(device)
        emb = model.encode_text(texts)
        emb = emb / emb.norm(dim=-1, keepdim=True)
        emb = emb.mean(dim=0)
        rows.append(emb / emb.norm())
    return torch.stack(rows) * model.logit_scale.exp()


# ----------------------------------------------------------------------------------------- training
class StepClock:
    """Timestamps every forward call of a model (one per training step): steady-state step time."""

    def __init__(self, model: torch.nn.Module, device):
        self.times: list[float] = []
        self.device = device
        self.handle = model.register_forward_pre_hook(self._hook)

    def _hook(self, *args) -> None:
        synchronize(self.device)
        self.times.append(time.perf_counter())

    def seconds_per_step(self, warmup: int) -> float:
        """Mean time between forward starts, skipping the first ``warmup`` steps."""
        t = self.times[warmup:]
        if len(t) < 2:
            raise RuntimeError(f"only {len(self.times)} steps were timed; need more than warm-up {warmup} + 1")
        return (t[-1] - t[0]) / (len(t) - 1)

    def close(self) -> None:
        self.handle.remove()


def plain_train(model: torch.nn.Module, dataset, *, batch_size: int, steps: int, lr: float, device,
                seed: int = 0) -> None:
    """A plain fp32 PyTorch fine-tuning loop: AdamW, cross-entropy, gradient clipping at norm 1."""
    dev = resolve_device(device)
    model.to(dev).train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.1)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True,
                                         generator=torch.Generator().manual_seed(seed),
                                         pin_memory=dev.type == "cuda")
    done = 0
    while done < steps:
        for x, y in loader:
            loss = F.cross_entropy(model(x.to(dev, non_blocking=True)), y.to(dev, non_blocking=True))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            done += 1
            if done == steps:
                break


def tensor_train_set(n: int, image_size: int, num_classes: int, seed: int = 0):
    """``n`` preprocessed images in memory (training speed is measured without decoding)."""
    g = torch.Generator().manual_seed(seed)
    return torch.utils.data.TensorDataset(torch.randn(n, 3, image_size, image_size, generator=g),
                                          torch.randint(0, num_classes, (n,), generator=g))


def fresh_copy(model: torch.nn.Module) -> torch.nn.Module:
    return copy.deepcopy(model)
