"""A toy reference task and shift on disk, for integration tests of the pipeline steps.

Three classes told apart by colour (with noise), 32 px PNGs; the "shift" is the same classes with the
colours darkened. A random tiny CLIP cannot do it zero-shot; a few fine-tuning steps can.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("red", "green", "blue")
_BASE = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 60, 220)}


def _draw(path: Path, colour: tuple[int, int, int], rng: np.random.Generator, scale: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.clip(np.array(colour) * scale + rng.normal(0, 25, size=(32, 32, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path)


def build_toy_task(root: Path, per_class: dict[str, int] | None = None, seed: int = 0) -> Path:
    """Write ``root/toy/{train,val,test,shift}/<i>_<class>/*.png`` and a dataset YAML; return the YAML path."""
    per_class = per_class or {"train": 12, "val": 4, "test": 4, "shift": 4}
    rng = np.random.default_rng(seed)
    for split, n in per_class.items():
        scale = 0.55 if split == "shift" else 1.0
        for c, name in enumerate(CLASSES):
            for i in range(n):
                _draw(root / "toy" / split / f"{c}_{name}" / f"{i}.png", _BASE[name], rng, scale)
    (root / "classnames.txt").write_text("\n".join(CLASSES) + "\n")
    (root / "templates.txt").write_text("a photo of {}.\na {} image.\n")
    counts = {k: v * len(CLASSES) for k, v in per_class.items()}
    yaml_path = root / "toy_datasets.yaml"
    yaml_path.write_text(
        "toy:\n  role: reference\n  root: toy\n  classnames: file:classnames.txt\n  templates: file:templates.txt\n"
        f"  splits:\n    train: {{path: train, count: {counts['train']}}}\n"
        f"    val: {{path: val, count: {counts['val']}}}\n    test: {{path: test, count: {counts['test']}}}\n"
        "toy-dark:\n  root: toy\n  classnames: file:classnames.txt\n  templates: file:templates.txt\n"
        f"  splits:\n    test: {{path: shift, count: {counts['shift']}}}\n")
    return yaml_path


def toy_profile(root: Path, model_name: str, **sections: str) -> Path:
    """A profile YAML for the toy task with the tiny random model; ``sections`` append raw YAML blocks."""
    body = f"""name: toy
description: toy task for tests
seed: 0
device: cpu
model: {{name: {model_name}, pretrained: null}}
data:
  configs: [toy_datasets.yaml]
  reference: toy
  shifts: [toy-dark]
eval: {{batch_size: 8, num_workers: 0, chunk_images: 16}}
finetune:
  e2e: {{epochs: 2, batch_size: 12, lr: 3.0e-3, warmup_steps: 1, num_workers: 0, log_every_steps: 1}}
  lc:
    shots: [2]
    fixed: {{lr: 0.1, weight_decay: 0.0, batch_size: 12, epochs: 30}}
  variants:
    - {{name: short, epochs: 1}}
interpolation:
  alphas: [0.0, 0.5, 1.0]
  secondary_alphas: [0.0, 1.0]
  keep: [0.5]
  ose: true
  fisher: true
  fisher_samples: 6
baselines:
  methods: [ose_prob, random_interp]
"""
    for block in sections.values():
        body += block
    path = root / "toy.yaml"
    path.write_text(body)
    return path
