"""A tiny fine-tuning run for subprocess tests (SIGKILL + resume, torchrun vs one process).

Run from the repository root with ``PYTHONPATH=<root>``::

    python tests/helpers/finetune_worker.py --out DIR [--resume] [--slow-ms 5] [--cfg '{"epochs": 3}'] [--ema]

It trains a small conv net on 48 seeded random images (PIL, with the ``clip`` augmentation) and rank 0 writes
the final weights to ``DIR/final.safetensors``. Under torchrun every process runs it. With ``--ema`` it also
tracks the weight EMAs of the baselines (:func:`ema_hooks`) and writes their averages to ``DIR/final_ema.safetensors``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

from wiseft.finetune import distributed as D
from wiseft.finetune.augment import Preprocess, train_transform
from wiseft.finetune.e2e import finetune_e2e
from wiseft.profile import E2ECfg

NUM_CLASSES = 4


class TinyImages(torch.utils.data.Dataset):
    """``n`` seeded random RGB images of 12×12 pixels; ``slow_ms`` makes every load sleep (to kill mid-run)."""

    def __init__(self, n: int = 48, transform=None, slow_ms: float = 0.0, seed: int = 123):
        rng = np.random.default_rng(seed)
        self.pixels = rng.integers(0, 256, size=(n, 12, 12, 3), dtype=np.uint8)
        self.targets = (np.arange(n) % NUM_CLASSES).tolist()
        # A class-dependent tint makes the task learnable, so losses move.
        for i, y in enumerate(self.targets):
            self.pixels[i, :, :, y % 3] = np.clip(self.pixels[i, :, :, y % 3].astype(int) + 60 * (y + 1), 0, 255)
        self.transform, self.slow_ms = transform, slow_ms

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        if self.slow_ms:
            time.sleep(self.slow_ms / 1000)
        image = Image.fromarray(self.pixels[i])
        return (self.transform(image) if self.transform else image), self.targets[i]


def tiny_model(dropout: float = 0.1, seed: int = 7) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 6, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten(),
        torch.nn.Dropout(dropout), torch.nn.Linear(24, NUM_CLASSES))


def tiny_train_set(slow_ms: float = 0.0, image_size: int = 8) -> TinyImages:
    pre = Preprocess(image_size, (0.5,) * 3, (0.25,) * 3)
    return TinyImages(transform=train_transform("clip", pre), slow_ms=slow_ms)


class CrashingImages(TinyImages):
    """The tiny training set that fails on its ``fail_at``-th load, like a run that dies in the middle of an epoch."""

    def __init__(self, fail_at: int, image_size: int = 8):
        super().__init__(transform=tiny_train_set(image_size=image_size).transform)
        self.loads, self.fail_at = 0, fail_at

    def __getitem__(self, i: int):
        self.loads += 1
        if self.loads == self.fail_at:
            raise RuntimeError("simulated crash")
        return super().__getitem__(i)


TINY_CLIP = {"embed_dim": 32,
             "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "patch_size": 8, "head_width": 16},
             "text_cfg": {"context_length": 16, "vocab_size": 1000, "width": 32, "heads": 2, "layers": 1}}


class TinyClipClassifier(torch.nn.Module):
    """An open_clip ViT image tower (width 32, 32 px) with a normalising linear head, like ImageClassifier."""

    def __init__(self, num_classes: int = NUM_CLASSES, dropout: float = 0.0, seed: int = 0):
        import tempfile

        import open_clip

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "wiseft-test-tiny-clip.json"
            path.write_text(json.dumps(TINY_CLIP))
            open_clip.add_model_config(path)
        torch.manual_seed(seed)
        visual = open_clip.create_model("wiseft-test-tiny-clip", pretrained=None).visual
        super().__init__()
        self.image_encoder = visual
        self.dropout = torch.nn.Dropout(dropout)
        self.head = torch.nn.Linear(TINY_CLIP["embed_dim"], num_classes)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.image_encoder.set_grad_checkpointing(enable)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = torch.nn.functional.normalize(self.image_encoder(images), dim=-1)
        return self.head(self.dropout(features))


def ema_hooks(model: torch.nn.Module) -> tuple[dict, dict]:
    """``finetune_e2e`` keyword arguments that track debiased and zero-shot-biased EMAs, and the EMAs."""
    from wiseft.baselines import WeightEMA

    emas = {"ema": WeightEMA([0.5, 0.9], mode="debiased"),
            "ema_biased": WeightEMA([0.8], mode="biased", init_state=model.state_dict())}

    def on_step(m: torch.nn.Module, step: int) -> None:
        for ema in emas.values():
            ema.update(m)

    return {"on_step": on_step, "callback_state": emas, "tag": {"ema": [0.5, 0.9], "ema_biased": [0.8]}}, emas


def ema_tensors(emas: dict) -> dict[str, torch.Tensor]:
    """Every average of ``emas`` as one flat dict ``<mode>.<decay>.<name>``."""
    return {f"{name}.{decay}.{k}": v.contiguous() for name, ema in emas.items() for decay in ema.decays
            for k, v in ema.state_dict_for(decay).items()}


def make_cfg(overrides: dict | None = None) -> E2ECfg:
    """The worker's settings: 3 epochs of 6 global batches of 8."""
    return E2ECfg(**{"epochs": 3, "batch_size": 8, "lr": 1e-2, "warmup_steps": 3, "num_workers": 0,
                     "log_every_steps": 1, **(overrides or {})})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--slow-ms", type=float, default=0.0)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cfg", default="{}", help="E2ECfg fields as JSON")
    parser.add_argument("--ema", action="store_true", help="track the baselines' weight EMAs too")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(1)
    info = D.init_distributed("cpu")
    cfg = make_cfg(json.loads(args.cfg))
    model = tiny_model(args.dropout)
    hooks, emas = ema_hooks(model) if args.ema else ({}, {})
    result = finetune_e2e(model, tiny_train_set(args.slow_ms), cfg, args.out, device=info.device,
                          seed=args.seed, resume=args.resume, **hooks)
    if info.is_main:
        tensors = {k: v.detach().clone().contiguous() for k, v in result.model.state_dict().items()}
        if emas:
            save_file(ema_tensors(emas), str(Path(args.out) / "final_ema.safetensors"))
        save_file(tensors, str(Path(args.out) / "final.safetensors"))
        print(json.dumps({"global_step": result.global_step,
                          "resumed_from": str(result.resumed_from) if result.resumed_from else None}))
    D.cleanup()


if __name__ == "__main__":
    main()
