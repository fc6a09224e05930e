"""Fisher-weighted merging (Matena & Raffel), as offered by the wise-ft repository's ``--fisher`` option.

The diagonal Fisher of a classifier is estimated as the mean over examples of the squared gradient of
log p(ŷ | x), with ŷ sampled from the model's own predictive distribution (not the true label), one example
at a time as in wise-ft's ``fisher.py``. Merging then weights each parameter by its Fisher:

    θ = Σ_i c_i·F_i·θ_i / Σ_i c_i·F_i,   F_i ← max(F_i, floor)

with coefficients (1−α, α) for two models. Parameters without a Fisher (buffers) get F = 1, i.e. plain
interpolation; integer buffers are copied. Fisher tensors are saved as safetensors, never pickled.

The examples are a seeded, class-balanced sample (:func:`fisher_sample_indices`): on a class-sorted folder (ImageNet)
the first examples in storage order would all come from class 0. The official code's floor is 1e-8
(``FISHER_FLOOR``); which split the examples come from is the caller's choice (``docs/protocols.md``).

Example:
    >>> f0 = compute_fisher(zeroshot, train_set, num_samples=256)                   # doctest: +SKIP
    >>> settings = fisher_settings(theta0, theta1, f0, f1, alphas=[0.25, 0.5, 0.75]) # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from functools import partial
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .device import autocast, resolve_device
from .errors import IncompatibleStateError, WiseftError
from .evaluation import WeightSetting
from .interpolation import check_compatible, check_finite
from .io import atomic_path
from .models import ImageClassifier
from .progress import progress

log = logging.getLogger(__name__)

__all__ = ["FISHER_FLOOR", "fisher_sample_indices", "compute_fisher", "fisher_merge", "fisher_merge_into_",
           "fisher_settings", "save_fisher", "load_fisher"]

StateDict = Mapping[str, torch.Tensor]

#: The official wise-ft floor on Fisher entries (its `--fisher_floor` default); profile `interpolation.fisher_floor`.
FISHER_FLOOR = 1e-8


def fisher_sample_indices(labels: Sequence[int] | np.ndarray, num_samples: int | None, seed: int = 0) -> np.ndarray:
    """A seeded, class-balanced sample of example indices, sorted.

    The examples are taken one class at a time: round ``r`` adds the ``r``-th example (in a seeded shuffle) of every
    class that still has one, the classes in a seeded order, until ``num_samples`` are taken. So every class gets
    ``num_samples // C`` or one more example (fewer only when it has fewer); with fewer samples than classes a
    seeded subset of the classes gets one each.

    Args:
        labels: the label of every example of the dataset.
        num_samples: how many to take; ``None`` (or at least the dataset's size) takes every example.
        seed: seeds the shuffles.
    """
    labels = np.asarray(labels)
    if num_samples is None or num_samples >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    classes = rng.permutation(np.unique(labels))
    queues = [rng.permutation(np.flatnonzero(labels == c)) for c in classes]
    taken: list[int] = []
    depth = 0
    while len(taken) < num_samples:
        taken += [int(q[depth]) for q in queues if depth < len(q)][: num_samples - len(taken)]
        depth += 1
    return np.sort(np.asarray(taken, dtype=np.int64))


def _dataset_labels(dataset: torch.utils.data.Dataset) -> np.ndarray | None:
    labels = getattr(dataset, "labels", None)
    return None if labels is None else np.asarray(labels)


def compute_fisher(model: ImageClassifier, dataset: torch.utils.data.Dataset, *, num_samples: int | None = 256,
                   indices: Sequence[int] | None = None, device: str | torch.device = "cpu", precision: str = "fp32",
                   seed: int = 0, batch_size: int = 32, num_workers: int = 0) -> dict[str, torch.Tensor]:
    """Diagonal Fisher of ``model`` on a class-balanced sample of ``num_samples`` examples of ``dataset``.

    Args:
        model: the classifier (its parameters that require grad get a Fisher).
        dataset: ``__getitem__(i) -> (image, label)``; labels are ignored (ŷ is sampled from the model). A dataset
            with a ``labels`` array is sampled class-balanced (:func:`fisher_sample_indices`), any other uniformly
            at random (seeded).
        num_samples: examples used (each costs one forward and one backward pass); ``None``: every example.
        indices: the examples to use instead of a sample (in this order).
        device: where to compute.
        precision: autocast mode of the forward passes.
        seed: seed of the label sampling.
        batch_size: images loaded at a time (gradients are still per example).
        num_workers: DataLoader workers.

    Returns:
        ``{parameter name: mean squared gradient}`` (float32, on the CPU), keyed like the state dict.
    """
    dev = resolve_device(device)
    model = model.to(dev).eval()  # eval: no dropout noise, and BatchNorm statistics are not updated
    params = {name: p for name, p in model.named_parameters() if p.requires_grad}
    if not params:
        raise WiseftError("compute_fisher: the model has no parameter that requires grad")
    sums = {name: torch.zeros_like(p, dtype=torch.float32) for name, p in params.items()}
    generator = torch.Generator().manual_seed(int(seed))
    if indices is None:
        labels = _dataset_labels(dataset)
        if labels is None:
            n = len(dataset) if num_samples is None else min(num_samples, len(dataset))
            indices = np.sort(np.random.default_rng(seed).permutation(len(dataset))[:n])
        else:
            indices = fisher_sample_indices(labels, num_samples, seed)
            log.info("Fisher on %d examples covering %d of %d classes", len(indices),
                     len(np.unique(labels[indices])), len(np.unique(labels)))
    subset = torch.utils.data.Subset(dataset, [int(i) for i in indices])
    loader = torch.utils.data.DataLoader(subset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    seen = 0
    for images, _ in progress(loader, desc="Fisher", total=len(loader)):
        for x in images.to(dev):
            with autocast(precision, dev):
                logits = model(x.unsqueeze(0)).float()
            probs = torch.softmax(logits.detach(), dim=-1).cpu()
            target = torch.multinomial(probs, 1, generator=generator).view(-1).to(dev)
            loss = F.cross_entropy(logits, target)  # −log p(ŷ|x)
            grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
            for (name, _), g in zip(params.items(), grads):
                if g is not None:
                    sums[name] += g.detach().float() ** 2
            seen += 1
    if seen == 0:
        raise WiseftError("compute_fisher: the dataset is empty")
    return {name: (s / seen).cpu() for name, s in sums.items()}


def _fisher_or_ones(fisher: StateDict, key: str, like: torch.Tensor, floor: float) -> torch.Tensor:
    f = fisher.get(key)
    if f is None:
        return torch.ones_like(like, dtype=torch.float32)
    return torch.clamp(f.to(like.device, torch.float32), min=floor)


def _merge_key(key: str, tensors: Sequence[torch.Tensor], fishers: Sequence[StateDict],
               coefficients: Sequence[float], floor: float) -> torch.Tensor:
    if not tensors[0].is_floating_point():
        return tensors[0].clone()
    present = [key in f for f in fishers]
    if any(present) and not all(present):
        raise IncompatibleStateError(f"key {key!r} has a Fisher for some models but not others; compute every "
                                     f"Fisher on the same architecture")
    num = torch.zeros_like(tensors[0], dtype=torch.float32)
    den = torch.zeros_like(tensors[0], dtype=torch.float32)
    for t, f, c in zip(tensors, fishers, coefficients):
        weight = c * _fisher_or_ones(f, key, t, floor)
        num += weight * t.float()
        den += weight
    return (num / den).to(tensors[0].dtype)


def fisher_merge(state_dicts: Sequence[StateDict], fishers: Sequence[StateDict], coefficients: Sequence[float],
                 floor: float = FISHER_FLOOR) -> dict[str, torch.Tensor]:
    """Fisher-weighted average of state dicts (a new state dict).

    Raises:
        IncompatibleStateError: incompatible state dicts, or a Fisher present for only some models.
        WiseftError: mismatched list lengths, or coefficients that do not sum to a positive number.
    """
    _check_args(state_dicts, fishers, coefficients, floor)
    return {key: _merge_key(key, [sd[key] for sd in state_dicts], fishers, coefficients, floor)
            for key in state_dicts[0]}


@torch.no_grad()
def fisher_merge_into_(model: torch.nn.Module, state_dicts: Sequence[StateDict], fishers: Sequence[StateDict],
                       coefficients: Sequence[float], floor: float = FISHER_FLOOR) -> torch.nn.Module:
    """Write the Fisher-weighted merge into ``model`` in place, one tensor at a time."""
    _check_args(state_dicts, fishers, coefficients, floor, check=False)
    for key, target in model.state_dict(keep_vars=True).items():
        tensors = [sd[key].to(target.device) for sd in state_dicts]
        target.data.copy_(_merge_key(key, tensors, fishers, coefficients, floor))
    return model


def _check_args(state_dicts, fishers, coefficients, floor, check: bool = True) -> None:
    if not (len(state_dicts) == len(fishers) == len(coefficients)) or not state_dicts:
        raise WiseftError(f"fisher merge needs as many Fishers and coefficients as state dicts; got "
                          f"{len(state_dicts)}, {len(fishers)}, {len(coefficients)}")
    if sum(coefficients) <= 0 or any(c < 0 for c in coefficients):
        raise WiseftError(f"fisher merge coefficients must be ≥ 0 with a positive sum; got {list(coefficients)}")
    if floor <= 0:
        raise WiseftError(f"fisher floor must be positive (it prevents division by zero); got {floor}")
    if check:
        for sd in state_dicts[1:]:
            check_compatible(state_dicts[0], sd)
        for i, fisher in enumerate(fishers):
            check_finite(fisher, f"Fisher of model {i}")  # clamp() keeps NaN: it would spread to the weights


def fisher_settings(theta0: StateDict, theta1: StateDict, fisher0: StateDict, fisher1: StateDict,
                    alphas: Sequence[float], floor: float = FISHER_FLOOR, mode: str | None = None
                    ) -> list[WeightSetting]:
    """Evaluation settings for Fisher-weighted merges with coefficients (1−α, α), labelled ``"fisher α=<a>"``."""
    check_compatible(theta0, theta1)
    check_finite(fisher0, "Fisher of θ0")
    check_finite(fisher1, "Fisher of θ1")
    return [WeightSetting(label=f"fisher α={float(a):g}", method="fisher", alpha=float(a), mode=mode,
                          extra={"fisher_floor": floor},
                          apply=partial(_apply_fisher, theta0, theta1, fisher0, fisher1, float(a), floor))
            for a in alphas]


def _apply_fisher(theta0, theta1, fisher0, fisher1, alpha, floor, model) -> None:
    fisher_merge_into_(model, [theta0, theta1], [fisher0, fisher1], [1.0 - alpha, alpha], floor)


def save_fisher(fisher: StateDict, path: str | os.PathLike, meta: Mapping[str, str] | None = None) -> Path:
    """Save a Fisher as safetensors (atomically); ``meta`` values are stored as strings in the header."""
    from safetensors.torch import save_file

    path = Path(path)
    with atomic_path(path) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in fisher.items()}, str(tmp),
                  metadata={"kind": "wiseft-fisher", **{str(k): str(v) for k, v in (meta or {}).items()}})
    return path


def load_fisher(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a Fisher saved by :func:`save_fisher` (pickles are refused)."""
    from .checkpoint import read_state_dict

    return read_state_dict(path)
