"""The official wise-ft linear-classifier workflow, as case 1's naive side.

wise-ft with ``--freeze-encoder --cache-dir`` (``src/wise_ft.py``, ``src/models/eval.py``,
``src/datasets/common.py``: ``get_features`` / ``FeatureDataset``) evaluates an α sweep so:

- the first time a set is evaluated, its images run through the image encoder once and the features and labels
  are saved to the cache folder (``torch.save``);
- per α: every state-dict entry is merged (``_merge``: the encoder's too, although only the head differs), the
  merged classifier is loaded, written as a checkpoint and (here) read back, as ``wise_ft.py`` saves it and a
  user evaluating it later loads it;
- per α and set: the cached features are loaded from disk again (``FeatureDataset`` reads them on construction)
  and the head alone runs over a DataLoader of features.

wise-ft pickles the whole classifier; the safe equivalent is the state dict through ``torch.save`` and
``torch.load(weights_only=True)``, of the same size. The checkpoint is deleted once read to spare the disk.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from common import merge_roundtrip
from wiseft.datasets.base import EvalSet
from wiseft.device import autocast, resolve_device
from wiseft.models import ImageClassifier


def _cached_features(model: ImageClassifier, eval_set: EvalSet, cache: Path, *, dev, batch_size: int,
                     num_workers: int, precision: str) -> dict[str, torch.Tensor]:
    """wise-ft's ``get_features``: compute and save on a miss, then (always) load the cached tensors."""
    path = cache / f"{eval_set.name}.pt"
    if not path.is_file():
        loader = torch.utils.data.DataLoader(eval_set.dataset, batch_size=batch_size, shuffle=False,
                                             num_workers=num_workers, pin_memory=dev.type == "cuda")
        feats, labels = [], []
        with torch.no_grad():
            for x, y in loader:
                with autocast(precision, dev):
                    feats.append(model.image_encoder(x.to(dev, non_blocking=True)).float().cpu())
                labels.append(torch.as_tensor(y))
        cache.mkdir(parents=True, exist_ok=True)
        torch.save({"features": torch.cat(feats), "labels": torch.cat(labels)}, path)
    return torch.load(path, map_location="cpu", weights_only=True)


def official_lc_sweep(model: ImageClassifier, theta0, theta1, alphas: Sequence[float], eval_sets: Sequence[EvalSet],
                      *, workdir: Path, device, batch_size: int, num_workers: int, precision: str = "fp32"
                      ) -> dict[tuple[float, str], float]:
    """The official LC α sweep (features once per set, head per α, one checkpoint per α); top-1 per (α, set).

    The feature cache starts empty, so each call computes every set's features once, as a sweep does the first
    time it meets a set.
    """
    dev = resolve_device(device)
    model = model.to(dev)
    cache = workdir / "features"
    shutil.rmtree(cache, ignore_errors=True)
    workdir.mkdir(parents=True, exist_ok=True)
    out = {}
    for a in alphas:
        merge_roundtrip(model, theta0, theta1, a, workdir, dev)
        for eval_set in eval_sets:
            data = _cached_features(model, eval_set, cache, dev=dev, batch_size=batch_size, num_workers=num_workers,
                                    precision=precision)
            loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(data["features"], data["labels"]),
                                                 batch_size=batch_size, shuffle=False)
            preds, labels = [], []
            with torch.no_grad():
                for f, y in loader:
                    with autocast(precision, dev):
                        logits = model.head(f.to(dev, non_blocking=True)).float()
                    preds.append(eval_set.protocol.project_logits(logits).argmax(dim=-1).cpu().numpy())
                    labels.append(y.numpy())
            out[(float(a), eval_set.name)] = eval_set.protocol.metrics(np.concatenate(preds),
                                                                       np.concatenate(labels))["top1"]
    shutil.rmtree(cache, ignore_errors=True)
    return out
