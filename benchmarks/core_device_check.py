"""Device checks of the core library on a CUDA machine: exactness of the one-pass sweep, dtype/device moves, speed.

Checks (each prints one JSON line and lands in ``$OUT/report.json``):

- the one-pass sweep on CUDA equals a naive per-α loop (e2e: logits bit for bit; LC: within float rounding),
  with θ0/θ1 on the CPU and the model on the GPU; bf16 autocast agreement with fp32;
- ``lerp_into_`` from CPU endpoints into a CUDA model; checkpoint round trip on CUDA; Fisher on CUDA vs CPU;
- a ViT-B/16 (random weights, 1000 classes) sweep over 11 α on 2048 in-memory JPEGs decoded and preprocessed
  by open_clip's eval transform: one pass vs the naive loop (which decodes every image 11 times).

Run from the repository root on a machine with CUDA, torch and open_clip:
    PYTHONUNBUFFERED=1 python benchmarks/core_device_check.py
Environment: ``DEV`` (cuda), ``BIG`` (ViT-B-16), ``N_JPEG`` (2048), ``WORKERS`` (8), and ``WISEFT_EXTRA_SITE``: a
folder prepended to ``sys.path`` for packages the machine lacks (copy ``open_clip``, ``ftfy`` and ``wcwidth``
from a local site-packages into it). ``DEV=cpu BIG=wiseft-test-tiny N_JPEG=40 WORKERS=2`` runs it on a laptop.
"""
import copy
import io
import json
import os
import sys
import time
import traceback

if os.environ.get("WISEFT_EXTRA_SITE"):
    sys.path.insert(0, os.environ["WISEFT_EXTRA_SITE"])
sys.path.insert(0, ".")
os.environ["WISEFT_PROGRESS"] = "0"

import numpy as np  # noqa: E402
import torch  # noqa: E402
import open_clip  # noqa: E402
from PIL import Image  # noqa: E402

from wiseft.checkpoint import load_classifier, save_classifier  # noqa: E402
from wiseft.datasets.base import EvalSet, Protocol  # noqa: E402
from wiseft.ensembles import output_settings  # noqa: E402
from wiseft.evaluation import evaluate_settings, lerp_settings  # noqa: E402
from wiseft.fisher import compute_fisher  # noqa: E402
from wiseft.interpolation import clone_state_dict, interpolate_state_dicts, lerp_into_  # noqa: E402
from wiseft.models import ClassificationHead, ClassifierInfo, ImageClassifier, create_clip  # noqa: E402

OUT = os.environ.get("OUT", "/tmp")
report = {"torch": torch.__version__, "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
open_clip.add_model_config("tests/fixtures/wiseft-test-tiny.json")
DEV = os.environ.get("DEV", "cuda")
BIG = os.environ.get("BIG", "ViT-B-16")
WORKERS = int(os.environ.get("WORKERS", "8"))
N_JPEG = int(os.environ.get("N_JPEG", "2048"))
SYNC = torch.cuda.synchronize if DEV == "cuda" else (lambda: None)


def section(name):
    def wrap(fn):
        t = time.time()
        try:
            report[name] = fn()
        except Exception:  # record and continue: one failing check must not hide the others
            report[name] = {"error": traceback.format_exc()[-3000:]}
        report[name + "_s"] = round(time.time() - t, 2)
        print(name, json.dumps(report[name])[:1500], flush=True)
    return wrap


def make(model_name, num_classes, seed, device):
    torch.manual_seed(seed)
    clip = open_clip.create_model(model_name, pretrained=None)
    dim = clip.visual.output_dim
    head = ClassificationHead(torch.randn(num_classes, dim) * 10)
    info = ClassifierInfo(model_name, None, [f"c{i}" for i in range(num_classes)], "simple",
                          (0.5,) * 3, (0.25,) * 3, (clip.visual.image_size[0],) * 2)
    return ImageClassifier(clip.visual, head, info).to(device).eval()


def perturb(model, head_only, scale=0.05):
    other = copy.deepcopy(model)
    g = torch.Generator(device="cpu").manual_seed(7)
    with torch.no_grad():
        for n, p in other.named_parameters():
            if not head_only or n.startswith("head."):
                p.add_((scale * p.abs().mean() * torch.randn(p.shape, generator=g)).to(p.device))
    return other


def naive(template, theta0, theta1, alphas, dataset, batch_size, device, workers=0):
    out = {}
    for a in alphas:
        m = copy.deepcopy(template)
        m.load_state_dict(interpolate_state_dicts(theta0, theta1, a))
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=workers)
        with torch.no_grad():
            logits = torch.cat([m(x.to(device)).float() for x, _ in loader])
        out[a] = logits
    return out


@section("tiny_exactness")
def _():
    res = {}
    g = torch.Generator().manual_seed(1)
    data = torch.utils.data.TensorDataset(torch.randn(45, 3, 32, 32, generator=g), torch.randint(0, 5, (45,), generator=g))
    eset = EvalSet("toy", data, [str(i) for i in range(5)], Protocol())
    alphas = [0.0, 0.3, 0.5, 1.0]
    for head_only in (False, True):
        model = make("wiseft-test-tiny", 5, 0, DEV)
        theta0 = clone_state_dict(model, "cpu")  # endpoints on the CPU, model on the GPU
        theta1 = clone_state_dict(perturb(model, head_only), "cpu")
        settings = lerp_settings(theta0, theta1, alphas)
        r = evaluate_settings(copy.deepcopy(model), settings, [eset], device=DEV, batch_size=8, chunk_images=16,
                              keep_logits_for=[s.label for s in settings])
        ref = naive(model, {k: v.to(DEV) for k, v in theta0.items()}, {k: v.to(DEV) for k, v in theta1.items()},
                    alphas, data, 8, DEV)
        key = "lc" if head_only else "e2e"
        res[key] = {f"{a:g}": {"logits_equal": bool(torch.equal(r.sets["toy"].logits[f"wiseft α={a:g}"], ref[a].cpu())),
                               "max_abs_diff": float((r.sets["toy"].logits[f"wiseft α={a:g}"] - ref[a].cpu()).abs().max()),
                               "preds_equal": bool(np.array_equal(r.sets["toy"].preds[f"wiseft α={a:g}"],
                                                                  ref[a].argmax(-1).cpu().numpy()))} for a in alphas}
        rb = evaluate_settings(copy.deepcopy(model), settings, [eset], device=DEV, batch_size=8, precision="amp_bf16")
        res[key + "_bf16_agree_with_fp32"] = {s.label: float((rb.sets["toy"].preds[s.label] == r.sets["toy"].preds[s.label]).mean())
                                              for s in settings}
    return res


@section("lerp_cpu_endpoints_into_device_model")
def _():
    model = make("wiseft-test-tiny", 5, 0, DEV)
    theta0, theta1 = clone_state_dict(model, "cpu"), clone_state_dict(perturb(model, False), "cpu")
    lerp_into_(model, theta0, theta1, 0.37)
    exp = interpolate_state_dicts(theta0, theta1, 0.37)
    return {"max_abs_diff_vs_cpu": max(float((model.state_dict()[k].cpu() - v).abs().max()) for k, v in exp.items())}


@section("checkpoint_device_round_trip")
def _():
    model = make("wiseft-test-tiny", 5, 3, DEV)
    save_classifier(model, "/tmp/ck/zs", {"alpha": 0.0})
    back, meta = load_classifier("/tmp/ck/zs", device=DEV)
    x = torch.randn(6, 3, 32, 32, device=DEV)
    with torch.no_grad():
        same = torch.equal(back(x), model(x))
    return {"logits_bit_exact": bool(same), "device": str(next(back.parameters()).device)}


@section("fisher_device_vs_cpu")
def _():
    model = make("wiseft-test-tiny", 5, 0, "cpu")
    g = torch.Generator().manual_seed(1)
    data = torch.utils.data.TensorDataset(torch.randn(8, 3, 32, 32, generator=g), torch.zeros(8, dtype=torch.long))
    f_cpu = compute_fisher(model, data, num_samples=8, seed=0)
    f_gpu = compute_fisher(copy.deepcopy(model).to(DEV), data, num_samples=8, seed=0, device=DEV)
    rel = max(float((f_cpu[k] - f_gpu[k]).abs().max() / (f_cpu[k].abs().max() + 1e-12)) for k in f_cpu)
    return {"max_rel_diff": rel}


class JpegSet(torch.utils.data.Dataset):
    """In-memory JPEGs decoded with PIL and preprocessed by open_clip's eval transform on every read."""

    def __init__(self, n, num_classes, transform):
        rng = np.random.default_rng(0)
        self.items = []
        for i in range(n):
            arr = (rng.random((64, 64, 3)) * 255).astype(np.uint8)
            img = Image.fromarray(arr).resize((256, 256), Image.BILINEAR)
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=90)
            self.items.append((buf.getvalue(), int(rng.integers(num_classes))))
        self.transform = transform

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        data, label = self.items[i]
        return self.transform(Image.open(io.BytesIO(data)).convert("RGB")), label


@section("big_model_sweep_timing")
def _():
    res = {}
    bundle = create_clip(BIG, None, device=DEV)
    alphas = [round(0.1 * i, 1) for i in range(11)]
    data = JpegSet(N_JPEG, 1000, bundle.preprocess_eval)
    eset = EvalSet("jpeg", data, [str(i) for i in range(1000)], Protocol())
    for head_only in (False, True):
        key = "lc" if head_only else "e2e"
        model = make(BIG, 1000, 0, DEV)
        theta0 = clone_state_dict(model)
        theta1 = clone_state_dict(perturb(model, head_only))
        settings = lerp_settings(theta0, theta1, alphas) + output_settings([0.5], ("wiseft α=0", "wiseft α=1"))
        for precision in ("fp32", "amp_bf16"):
            SYNC()
            t = time.time()
            r = evaluate_settings(copy.deepcopy(model), settings, [eset], device=DEV, batch_size=256, num_workers=WORKERS,
                                  chunk_images=1024, precision=precision)
            SYNC()
            res[f"{key}_{precision}_onepass_s"] = round(time.time() - t, 2)
            if precision == "fp32":
                r32 = r
        SYNC()
        t = time.time()
        ref = naive(model, theta0, theta1, alphas, data, 256, DEV, workers=WORKERS)
        SYNC()
        res[f"{key}_fp32_naive_s"] = round(time.time() - t, 2)
        res[f"{key}_preds_equal_naive"] = {f"{a:g}": float((r32.sets["jpeg"].preds[f"wiseft α={a:g}"]
                                                            == ref[a].argmax(-1).cpu().numpy()).mean()) for a in alphas}
        res[f"{key}_distinct_preds_alpha0"] = int(len(np.unique(r32.sets["jpeg"].preds["wiseft α=0"])))
    if DEV == "cuda":
        res["gpu_mem_peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return res


with open(os.path.join(OUT, "report.json"), "w") as fh:
    json.dump(report, fh, indent=1)
print("DONE")
