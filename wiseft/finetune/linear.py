"""A linear classifier on frozen features (paper App. C.3.3, D.3): mini-batch AdamW with a cosine schedule.

The head has the layout of the zero-shot head (``weight [C, D]``, ``bias [C]``) and, like it, L2-normalises the
features first, so it can start from the zero-shot head (temperature folded into the weights) or at random, and
drops back into an ``ImageClassifier`` unchanged. Regularisers: decoupled weight decay (AdamW), an L1 penalty
``l1 · Σ|W|`` on the weights, and label smoothing. The baselines add their own terms through ``extra_loss``
(L2-SP toward the zero-shot head) and ``loss_fn`` (distillation from the zero-shot head's soft targets).
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ..device import resolve_device
from ..errors import NumericsError
from .sampler import derive_seed
from .schedule import warmup_cosine_lr

log = logging.getLogger(__name__)

__all__ = ["LCHparams", "LinearHead", "train_linear", "linear_accuracy"]

_INIT_STREAM, _ORDER_STREAM = 0x1417, 0x0DE2


@dataclass(frozen=True)
class LCHparams:
    """Hyperparameters of one linear-classifier fit."""

    lr: float = 1e-3
    weight_decay: float = 0.0
    l1: float = 0.0
    label_smoothing: float = 0.0
    batch_size: int = 256
    epochs: int = 10

    def as_dict(self) -> dict:
        return asdict(self)


class LinearHead(torch.nn.Module):
    """``logits = W · normalize(f) + b`` (or without the normalisation)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, normalize: bool = True):
        super().__init__()
        self.weight = torch.nn.Parameter(weight.detach().clone().float())
        self.bias = torch.nn.Parameter(bias.detach().clone().float())
        self.normalize = normalize

    @classmethod
    def random(cls, num_features: int, num_classes: int, seed: int, normalize: bool = True) -> "LinearHead":
        """``nn.Linear``'s default initialisation, drawn from a generator seeded by ``seed``."""
        gen = torch.Generator().manual_seed(derive_seed(_INIT_STREAM, seed))
        bound = 1.0 / math.sqrt(num_features)
        weight = (torch.rand(num_classes, num_features, generator=gen) * 2 - 1) * bound
        bias = (torch.rand(num_classes, generator=gen) * 2 - 1) * bound
        return cls(weight, bias, normalize)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if self.normalize:
            features = F.normalize(features, dim=-1)
        return F.linear(features, self.weight, self.bias)


def train_linear(features: torch.Tensor, labels: torch.Tensor, hp: LCHparams, *,
                 init: tuple[torch.Tensor, torch.Tensor] | None = None, num_classes: int | None = None,
                 normalize: bool = True, seed: int = 0, device: str | torch.device = "cpu",
                 extra_loss: Callable[[torch.nn.Module], torch.Tensor] | None = None,
                 loss_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None
                 ) -> LinearHead:
    """Fit a linear head on ``features`` with AdamW and a cosine schedule (no warm-up).

    Args:
        features: ``[N, D]`` float features.
        labels: ``[N]`` int labels.
        hp: the hyperparameters.
        init: ``(weight [C, D], bias [C])`` to start from (the zero-shot head); ``None`` for a random start.
        num_classes: needed for a random start.
        normalize: L2-normalise features first (as the zero-shot head does).
        seed: seeds the random start and the order of the mini-batches.
        device: where to train.
        extra_loss: ``extra_loss(head) -> scalar`` added to every batch's loss (e.g.
            :func:`wiseft.baselines.lc_l2sp_penalty` with ``weight_name="weight"``).
        loss_fn: ``loss_fn(logits, labels, features) -> scalar`` in place of the cross-entropy (e.g.
            :class:`wiseft.baselines.DistillationLoss` with the zero-shot head as teacher); ``hp.label_smoothing``
            is then ignored. ``features`` are the raw batch rows, as the head receives them.

    Returns:
        The trained head (on ``device``).

    Raises:
        NumericsError: if the loss becomes NaN or inf.
    """
    dev = resolve_device(device)
    if init is not None:
        head = LinearHead(init[0], init[1], normalize)
    else:
        if num_classes is None:
            raise ValueError("train_linear needs num_classes for a random start")
        head = LinearHead.random(features.shape[1], num_classes, seed, normalize)
    head.to(dev)
    x, y = features.to(dev, torch.float32), labels.to(dev)
    n = x.shape[0]
    steps_per_epoch = math.ceil(n / hp.batch_size)
    total = steps_per_epoch * hp.epochs
    opt = torch.optim.AdamW(head.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
    step = 0
    for epoch in range(hp.epochs):
        gen = torch.Generator().manual_seed(derive_seed(_ORDER_STREAM, seed, epoch))
        order = torch.randperm(n, generator=gen).to(dev)
        for b in range(steps_per_epoch):
            idx = order[b * hp.batch_size:(b + 1) * hp.batch_size]
            for group in opt.param_groups:
                group["lr"] = warmup_cosine_lr(step, hp.lr, 0, total)
            if loss_fn is None:
                loss = F.cross_entropy(head(x[idx]), y[idx], label_smoothing=hp.label_smoothing)
            else:
                loss = loss_fn(head(x[idx]), y[idx], x[idx])
            if hp.l1:
                loss = loss + hp.l1 * head.weight.abs().sum()
            if extra_loss is not None:
                loss = loss + extra_loss(head)
            if not torch.isfinite(loss):
                raise NumericsError(f"linear-classifier loss is {loss.item()} at step {step} (epoch {epoch + 1}) "
                                    f"with {hp}; lower the learning rate")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
    return head


@torch.no_grad()
def linear_accuracy(head: torch.nn.Module, features: torch.Tensor, labels: torch.Tensor,
                    batch_size: int = 8192) -> float:
    """Top-1 accuracy of ``head`` on ``features`` (a fraction; 0.0 for an empty set)."""
    if labels.numel() == 0:
        return 0.0
    dev = next(head.parameters()).device
    correct = 0
    for start in range(0, labels.shape[0], batch_size):
        logits = head(features[start:start + batch_size].to(dev, torch.float32))
        correct += int((logits.argmax(dim=-1) == labels[start:start + batch_size].to(dev)).sum())
    return correct / labels.shape[0]
