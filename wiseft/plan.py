"""``wiseft plan``: what a profile's run will cost, per pipeline step, before it costs anything.

The work of each step is counted as images × passes × GFLOPs per image: the images come from the dataset
registry's counts, the passes from the profile (epochs, α grid, variants, baselines), the GFLOPs from the model's
open_clip config (width, layers, patch and image size: :func:`model_gflops`; never typed by hand). Time divides
the work by the hardware's throughput, or by the data loaders' when decoding is slower; disk and peak memory
follow from the same counts. Every throughput constant lives in ``wiseft/data/cost_constants.json`` with its
unit and its source, "measured: benchmarks/…" or "assumed: why"; the plan says which ones it used.

Example:
    >>> plan = make_plan(load_profile("imagenet-vitb16"), gpus=8, gpu_type="a100")   # doctest: +SKIP
    >>> print(format_plan(plan))                                                    # doctest: +SKIP
"""

from __future__ import annotations

import functools
import json
import logging
import math
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from .errors import ProfileError
from .profile import Profile

__all__ = ["StepCost", "Plan", "load_constants", "model_gflops", "make_plan", "format_plan", "parse_hours",
           "stated_hardware"]


@functools.lru_cache(maxsize=1)
def load_constants() -> dict[str, Any]:
    """The packaged cost constants (``wiseft/data/cost_constants.json``)."""
    text = resources.files("wiseft").joinpath("data/cost_constants.json").read_text(encoding="utf-8")
    return json.loads(text)


def _c(key: str, *path: str) -> float:
    node = load_constants()[key]
    for p in path:
        node = node[p]
    return float(node["value"])


# -------------------------------------------------------------------------------------------- model FLOPs
def _transformer_gflops(tokens: int, width: int, layers: int, mlp_ratio: float = 4.0) -> float:
    """Forward GFLOPs of ``layers`` pre-norm transformer blocks over ``tokens`` tokens (2 FLOPs a multiply-add):
    QKV and output projections 8·T·d², MLP 4·r·T·d², attention scores and mixing 4·T²·d."""
    per_layer = 8 * tokens * width ** 2 + 4 * mlp_ratio * tokens * width ** 2 + 4 * tokens ** 2 * width
    return layers * per_layer / 1e9


@functools.lru_cache(maxsize=32)
def model_gflops(model_name: str) -> dict[str, float]:
    """Forward GFLOPs of one image and one prompt, and the parameter count, from the model's open_clip config.

    A ViT image tower is counted analytically (patch embedding plus its blocks); any other tower (a timm or
    ResNet tower) is counted by running it once at random init under ``torch.utils.flop_counter``.

    Returns:
        ``image`` (GFLOPs per image), ``text`` (GFLOPs per prompt), ``tokens`` (image tokens, 0 when not a ViT),
        ``width`` and ``layers`` of the image tower, ``params`` (millions, image tower).
    """
    import open_clip

    from .models import ensure_model_config

    ensure_model_config(model_name)
    cfg = open_clip.get_model_config(model_name)
    vision, text = cfg["vision_cfg"], cfg["text_cfg"]
    t_width, t_layers = int(text.get("width", 512)), int(text.get("layers", 12))
    text_gflops = _transformer_gflops(int(text.get("context_length", 77)), t_width, t_layers,
                                      float(text.get("mlp_ratio", 4.0)))
    size = vision.get("image_size", 224)
    size = size[0] if isinstance(size, (list, tuple)) else int(size)
    if "patch_size" in vision and isinstance(vision.get("layers"), int) and "timm_model_name" not in vision:
        patch, width, layers = int(vision["patch_size"]), int(vision["width"]), int(vision["layers"])
        tokens = (size // patch) ** 2 + 1
        ratio = float(vision.get("mlp_ratio", 4.0))
        image = _transformer_gflops(tokens, width, layers, ratio) + 2 * (tokens - 1) * 3 * patch ** 2 * width / 1e9
        params = layers * (4 + 2 * ratio) * width ** 2 + 3 * patch ** 2 * width
        return {"image": image, "text": text_gflops, "tokens": tokens, "width": width, "layers": layers,
                "params": params / 1e6, "image_size": size}
    return _counted(model_name, size, text_gflops)


def _counted(model_name: str, size: int, text_gflops: float) -> dict[str, float]:
    import open_clip
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from .models import no_random_init_warning

    previous = logging.root.manager.disable
    logging.disable(logging.INFO)  # open_clip narrates model creation at INFO on the root logger
    try:
        with no_random_init_warning():
            model = open_clip.create_model(model_name, pretrained=None, device="cpu").eval()
    finally:
        logging.disable(previous)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.visual(torch.zeros(1, 3, size, size))
    params = sum(p.numel() for p in model.visual.parameters())
    return {"image": counter.get_total_flops() / 1e9, "text": text_gflops, "tokens": 0, "width": 0, "layers": 0,
            "params": params / 1e6, "image_size": size}


# ------------------------------------------------------------------------------------------------ counts
def _split_count(name: str, split: str | None) -> int:
    from .datasets import get_dataset_cfg

    cfg = get_dataset_cfg(name)
    if split is None or split not in cfg["splits"]:
        return 0
    return int(cfg["splits"][split].get("count") or 0)


def _is_small(name: str) -> bool:
    """Whether the dataset's images are tiny (CIFAR-style arrays, the offline world's 32 px PNGs)."""
    from .datasets import get_dataset_cfg

    cfg = get_dataset_cfg(name)
    loaders = {s.get("loader", "imagefolder") for s in cfg["splits"].values()}
    return bool(loaders & {"cifar_python", "npy_pair", "npy_dict"}) or cfg.get("root") == "world"


def _classes_and_templates(name: str, profile: Profile) -> tuple[int, int]:
    from .datasets import default_templates, get_classnames
    from .errors import DatasetError, WiseftError
    from .templates import get_templates

    try:
        classes = len(get_classnames(name, profile.data.root))
    except (DatasetError, OSError):
        classes = int(_c("unknown_classes"))
    try:
        templates = len(get_templates(profile.templates or default_templates(name)))
    except (WiseftError, OSError):  # a template file that is not on this machine: count one template
        templates = 1
    return classes, templates


# ------------------------------------------------------------------------------------------------- plan
@dataclass
class StepCost:
    step: str
    images: int          # image passes through the image tower (forward-equivalents counted in ``passes``)
    passes: float        # forward-equivalents per image (3 for a training step: forward + backward)
    gflops: float        # total GFLOPs of the step
    decoded: int         # images decoded from disk
    seconds: float
    disk_gb: float
    peak_gib: float
    note: str = ""


@dataclass
class Plan:
    profile: str
    model: str
    hardware: str
    gflops_per_image: float
    steps: list[StepCost] = field(default_factory=list)
    constants: dict[str, str] = field(default_factory=dict)   # name -> source, of the constants used

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.steps)


def _member_costs(p: Profile, device: str, gpus: int, g: dict[str, float]) -> list[StepCost]:
    """Step costs of one profile (a suite member, or an ordinary profile)."""
    from .datasets import get_dataset_cfg

    ref = get_dataset_cfg(p.data.reference)
    n_train = _split_count(p.data.reference, ref.get("train_split"))
    held = _split_count(p.data.reference, ref.get("heldout_split")) or int(n_train * p.finetune.lc.heldout_fraction)
    n_eval = held + sum(_split_count(d, get_dataset_cfg(d).get("eval_split")) for d in p.datasets)
    if p.eval.max_images is not None:
        n_eval = min(n_eval, p.eval.max_images * (len(p.datasets) + 1))
    small = _is_small(p.data.reference)
    cpu = device == "cpu"

    def throughput(precision: str) -> float:  # GFLOP/s achieved by all devices at a precision
        kind = "fp32" if precision == "fp32" else "bf16"
        frac = _c("achieved_fraction", "cpu" if cpu else "fp32" if kind == "fp32" else "train")
        return _c("devices", device, "peak_tflops", kind, ) * 1e3 * gpus * frac

    train_rate = throughput(p.finetune.e2e.precision)
    eval_rate = throughput(p.eval.precision) * (1 if cpu or p.eval.precision == "fp32"
                                                 else _c("achieved_fraction", "eval") / _c("achieved_fraction", "train"))
    overhead = _c("cpu_seconds_per_image_pass") if cpu else 0.0
    workers = _c("cpu_cores") if cpu else gpus * max(1, p.eval.num_workers)
    rate = _c("small_images_per_s_per_core" if small else "decode_images_per_s_per_core") * workers
    train_pass = 1 + _c("backward_factor") + (_c("checkpointing_extra") if p.finetune.e2e.grad_checkpointing else 0)
    bytes_img = _c("bytes_per_small_image" if small else "bytes_per_jpeg")
    params = g["params"] * 1e6
    ckpt_gb = params * 4 / 1e9
    # activations per image: every layer's (Korthikanti et al.), or with checkpointing each layer's input and one
    # layer's worth; twice as many bytes in fp32 as in 16-bit autocast
    per_layer = g["tokens"] * g["width"] * _c("activation_bytes_per_token_width")
    layer_inputs = g["tokens"] * g["width"] * 4 * g["layers"]
    act = (per_layer + layer_inputs if p.finetune.e2e.grad_checkpointing else per_layer * g["layers"]) \
        * (2 if p.finetune.e2e.precision == "fp32" else 1)
    eval_act = per_layer * (2 if p.eval.precision == "fp32" else 1)
    micro = p.finetune.e2e.micro_batch_size or max(1, p.finetune.e2e.batch_size // gpus)
    train_gib = (params * _c("optimizer_bytes_per_param") + micro * act) / 2 ** 30
    eval_gib = (3 * params * 4 + p.eval.batch_size * eval_act) / 2 ** 30

    def cost(step: str, images: int, passes: float, decoded: int, training: bool, disk_gb: float, peak_gib: float,
             note: str, extra_gflops: float = 0.0) -> StepCost:
        gf = images * passes * g["image"] + extra_gflops
        compute = gf / (train_rate if training else eval_rate) + overhead * images * passes
        return StepCost(step, images, passes, gf, decoded, max(compute, decoded / rate), disk_gb, peak_gib, note)

    steps = []
    all_images = sum(_split_count(d, s) for d in p.datasets for s in get_dataset_cfg(d)["splits"])
    steps.append(StepCost("data", 0, 0, 0.0, 64 * len(p.datasets), all_images / _c("list_files_per_s")
                          + _c("notebook_seconds"), all_images * bytes_img / 1e9, 0.0,
                          f"counts {all_images:,} images, decodes a sample"))
    prompts = sum(math.prod(_classes_and_templates(d, p)) for d in p.datasets)
    steps.append(cost("zeroshot", n_eval, 1, n_eval, False, ckpt_gb, eval_gib,
                      f"{prompts:,} prompts through the text tower", prompts * g["text"]))
    e2e = p.finetune.e2e
    runs = [e2e.epochs] + [v.get("epochs", e2e.epochs) for v in p.finetune.variants] if e2e.enabled else []
    train_images = sum(min(n_train * ep, (e2e.max_steps or 10 ** 12) * e2e.batch_size) for ep in runs)
    lc = n_train if p.finetune.lc.enabled else 0
    evals = n_eval * (len(runs) + (1 if lc else 0))
    ft_gf = train_images * train_pass * g["image"] + (lc + evals) * g["image"]
    steps.append(StepCost("finetune", train_images + lc + evals, ft_gf / max(train_images + lc + evals, 1) / g["image"],
                          ft_gf, train_images + lc + evals,
                          max(train_images * train_pass * g["image"] / train_rate
                              + (lc + evals) * g["image"] / eval_rate, (train_images + lc + evals) / rate)
                          + overhead * (train_images * train_pass + lc + evals),
                          ckpt_gb * (len(runs) + 1) + params * 16 / 1e9, max(train_gib, eval_gib),
                          f"E2E {len(runs)} run(s) × {train_images // max(len(runs), 1):,} images × {train_pass:g} passes"
                          f"; LC features of {lc:,} training images"))
    alphas = len(p.interpolation.alpha_grid())
    secondary = len(p.interpolation.secondary_alphas or p.interpolation.alpha_grid())
    sweeps = (alphas if e2e.enabled else 0) + (1 if lc else 0) + secondary * (len(runs) - 1 if runs else 0)
    fisher = int(2 * p.interpolation.fisher_samples * train_pass) if p.interpolation.fisher else 0
    # the one-pass engine decodes each image once per sweep and scores every α of it
    decoded = n_eval * ((1 if e2e.enabled else 0) + (1 if lc else 0) + max(len(runs) - 1, 0)) + fisher
    steps.append(cost("interpolate", n_eval * sweeps + fisher, 1, decoded, False,
                      ckpt_gb * len(p.interpolation.keep) * 2, eval_gib,
                      f"{alphas} α × {n_eval:,} images (E2E), one feature pass (LC)"))
    b = p.baselines
    e2e_runs = len(b.l2sp_lambdas) * ("l2sp" in b.methods) + sum(m in b.methods for m in ("ema", "ema_biased", "lpft"))
    if e2e_runs:
        epochs = b.e2e_overrides.get("epochs", e2e.epochs)
        b_train = e2e_runs * n_train * epochs
        b_eval = n_eval * (e2e_runs + len(b.ema_decays) + len(b.ema_biased_decays))
        steps.append(cost("baselines", b_train + b_eval, (b_train * train_pass + b_eval) / (b_train + b_eval),
                          b_train + b_eval, True, ckpt_gb * e2e_runs, train_gib, f"{e2e_runs} E2E baseline run(s)"))
    elif b.methods or b.analyses:
        steps.append(cost("baselines", n_eval * 2, 1, n_eval * 2, False, 0.0, eval_gib, "output-space and LC baselines"))
    return steps


def make_plan(profile: Profile, gpus: int = 1, gpu_type: str | None = None) -> Plan:
    """Cost every pipeline step of ``profile`` on ``gpus`` devices of ``gpu_type`` (``a100``, ``h100``, ``v100``,
    ``cpu``; default: ``cpu`` for a CPU profile, else ``a100``).

    Raises:
        ProfileError: for an unknown device type or a device count below one.
    """
    devices = load_constants()["devices"]
    device = (gpu_type or ("cpu" if profile.device == "cpu" else "a100")).lower()
    if device not in devices:
        raise ProfileError(f"--gpu-type {gpu_type!r}: unknown; known: {', '.join(devices)} "
                           f"(add one to wiseft/data/cost_constants.json)")
    if gpus < 1:
        raise ProfileError(f"--gpus {gpus}: expected at least 1")
    if device == "cpu":
        gpus = 1
    g = model_gflops(profile.model.name)
    members = profile.suite_members() or [profile]
    per_step: dict[str, StepCost] = {}
    for member in members:
        for s in _member_costs(member, device, gpus, g):
            if s.step in per_step:
                t = per_step[s.step]
                t.images, t.gflops, t.decoded = t.images + s.images, t.gflops + s.gflops, t.decoded + s.decoded
                t.seconds, t.disk_gb, t.peak_gib = t.seconds + s.seconds, t.disk_gb + s.disk_gb, max(t.peak_gib, s.peak_gib)
                t.note = f"{len(members)} suite members"
            else:
                per_step[s.step] = s
    from .pipeline.steps import select_steps

    figures = [s for s in select_steps("run", profile_steps=profile.steps, figures=profile.figures.include) if s.is_figure]
    figures += select_steps("suite", figures=profile.figures.include) if profile.suite else []
    n_fig = len(figures) * (len(members) if profile.suite else 1)
    per_step["figures"] = StepCost("figures", 0, 0, 0.0, 0, n_fig * _c("figure_seconds"), 0.001 * n_fig, 0.5,
                                   f"{n_fig} figure and table notebooks")
    hardware = "CPU, {:g} cores".format(_c("cpu_cores")) if device == "cpu" else f"{gpus}× {device.upper()}"
    used = ["backward_factor", "decode_images_per_s_per_core", "figure_seconds", "notebook_seconds",
            "activation_bytes_per_token_width", "optimizer_bytes_per_param", "bytes_per_jpeg"]
    kinds = sorted({"fp32" if x == "fp32" else "bf16" for x in (profile.finetune.e2e.precision, profile.eval.precision)})
    constants = {f"devices.{device}.peak_tflops.{k}": load_constants()["devices"][device]["peak_tflops"][k]["source"]
                 for k in kinds}
    fractions = ("cpu",) if device == "cpu" else [*(["train", "eval"] if "bf16" in kinds else []),
                                                  *(["fp32"] if "fp32" in kinds else [])]
    for key in fractions:
        constants[f"achieved_fraction.{key}"] = load_constants()["achieved_fraction"][key]["source"]
    used += ["cpu_seconds_per_image_pass"] if device == "cpu" else []
    constants.update({k: load_constants()[k]["source"] for k in used})
    return Plan(profile.name, profile.model.name, hardware, g["image"], list(per_step.values()), constants)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def format_plan(plan: Plan) -> str:
    """The plan as a Markdown table, the total, and which constants were measured or assumed."""
    lines = [f"Plan for {plan.profile}: {plan.model} ({plan.gflops_per_image:.3g} GFLOPs per image, forward) "
             f"on {plan.hardware}", "",
             "| step | images × passes × GFLOPs | work (PFLOP) | decoded images | time | disk (GB) | peak memory (GiB) | what |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
    for s in plan.steps:
        work = f"{s.images:,} × {s.passes:.2g} × {plan.gflops_per_image:.3g}" if s.images else "—"
        lines.append(f"| {s.step} | {work} | {s.gflops / 1e6:.3g} | {s.decoded:,} | {_duration(s.seconds)} | "
                     f"{s.disk_gb:.3g} | {s.peak_gib:.3g} | {s.note} |")
    lines += ["", f"Total: {_duration(plan.seconds)}.", "", "Constants (wiseft/data/cost_constants.json):"]
    for name, source in plan.constants.items():
        kind = "measured" if source.startswith("measured") else "assumed"
        lines.append(f"- {name}: {kind} ({source.split(':', 1)[1].strip()})")
    return "\n".join(lines)


def parse_hours(text: str) -> float | None:
    """The total of the durations in free text, in hours: ``"≈10 h fine-tuning + ≈2 h evaluation"`` is 12,
    ``"2–3 days"`` 60 (a range gives its middle), ``"≈9 min (≈10 min cold)"`` 0.15 (parentheses are asides),
    ``"≈1½ days on one A100, ≈6 h on 8"`` 36 (what follows a comma is an alternative). ``None`` when there is none."""
    import re

    # asides in parentheses and alternatives after a comma ("≈1 day on one A100, ≈4 h on 8") are not added up
    text = re.sub(r"\([^)]*\)", "", text).split(",")[0].replace("½", ".5")
    found = re.findall(r"(\d+(?:\.\d+)?)(?:\s*[–-]\s*(\d+(?:\.\d+)?))?\s*(min|h|day|days)\b", text)
    if not found:
        return None
    unit = {"min": 1 / 60, "h": 1.0, "day": 24.0, "days": 24.0}
    return sum(((float(a) + float(b)) / 2 if b else float(a)) * unit[u] for a, b, u in found)


def stated_hardware(profile: Profile) -> tuple[int, str]:
    """``(devices, type)`` a profile's ``expected_runtime`` refers to (``"on 8 GPUs"``, ``"on one A100"``), else its
    ``hardware`` (``"8× A100"``, ``"1 GPU"``, ``"CPU, 2 cores"``); GPUs of no stated type count as A100s."""
    import re

    text = f"{profile.expected_runtime} {profile.hardware}"
    if profile.device == "cpu" or profile.hardware.lower().startswith("cpu"):
        return 1, "cpu"
    words = {"one": 1, "two": 2, "four": 4, "eight": 8}
    m = re.search(r"\bon (\d+|one|two|four|eight)\b", profile.expected_runtime) or re.search(r"(\d+)\s*×", text)
    gpus = (words.get(m.group(1)) or int(m.group(1))) if m else 1
    kind = next((k for k in ("h100", "v100", "a100") if k in text.lower()), "a100")
    return gpus, kind
