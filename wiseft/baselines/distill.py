"""Distillation from the zero-shot model while training the linear classifier (paper Fig. 13, "distillation").

The loss is (1 − α)·CE(f(x), y) + α·CE(f(x), f_zero-shot(x)): the usual cross-entropy on the labels plus a
cross-entropy against the zero-shot model's softmax as soft targets. The paper uses it to ask whether WiSE-FT's
gain comes from "keeping the zero-shot model's predictions" during training rather than mixing afterwards; α is
swept (profile key ``baselines.distill_alphas``).

Temperature. The paper states no temperature, and its zero-shot logits already carry CLIP's learned
temperature (the head is multiplied by ``logit_scale.exp()`` ≈ 100), so the default T = 1 is the paper's formula
exactly. For T ≠ 1 we follow Hinton et al. (2015): both the student's and the teacher's logits are divided by T
inside the soft term, and that term is multiplied by T² so its gradient keeps the same scale as T changes. The
label term never uses T.

The output-space ensembles of probabilities and the random per-example interpolation of Figs. 10 and 13 live in
:mod:`wiseft.ensembles`, not here.

Example:
    >>> loss_fn = DistillationLoss(zeroshot_head, alpha=0.5)         # doctest: +SKIP
    >>> loss = loss_fn(head(features), labels, features)              # doctest: +SKIP
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from ..errors import WiseftError

__all__ = ["soft_cross_entropy", "distillation_loss", "DistillationLoss"]


def _check(alpha: float, temperature: float) -> None:
    if not 0.0 <= alpha <= 1.0:
        raise WiseftError(f"distillation: alpha {alpha!r} outside [0, 1] (0: labels only, 1: zero-shot targets only)")
    if not (math.isfinite(temperature) and temperature > 0.0):
        raise WiseftError(f"distillation: temperature {temperature!r} must be finite and > 0 (1: the paper's loss)")


def soft_cross_entropy(logits: torch.Tensor, target_logits: torch.Tensor, *, temperature: float = 1.0) -> torch.Tensor:
    """Batch mean of −Σ_k q_k log p_k with q = softmax(target/T) and p = softmax(logits/T), times T².

    The targets are detached: the teacher (zero-shot model) is never trained by this loss.
    """
    _check(0.0, temperature)
    if logits.shape != target_logits.shape:
        raise WiseftError(f"soft_cross_entropy: logits {tuple(logits.shape)} vs targets {tuple(target_logits.shape)}")
    q = F.softmax(target_logits.detach().float() / temperature, dim=-1)
    log_p = F.log_softmax(logits.float() / temperature, dim=-1)
    return -(q * log_p).sum(dim=-1).mean() * temperature**2


def distillation_loss(logits: torch.Tensor, labels: torch.Tensor, teacher_logits: torch.Tensor, *,
                      alpha: float, temperature: float = 1.0) -> torch.Tensor:
    """(1 − α)·CE(logits, labels) + α·T²·CE(softmax(logits/T), softmax(teacher_logits/T)).

    Args:
        logits: the student's (linear classifier's) logits [B, C].
        labels: true classes [B].
        teacher_logits: the zero-shot model's logits on the same inputs [B, C].
        alpha: weight of the zero-shot soft targets, in [0, 1].
        temperature: softmax temperature of the soft term (see the module docstring).

    Returns:
        A scalar tensor. At α = 0 it equals ``F.cross_entropy(logits, labels)``; at α = 1 it equals
        :func:`soft_cross_entropy`.
    """
    _check(alpha, temperature)
    # Skip a term whose weight is 0 so that α = 0 / α = 1 are exactly the plain losses (no 0·inf from a
    # degenerate teacher, no wasted softmax).
    hard = F.cross_entropy(logits.float(), labels) if alpha < 1.0 else None
    soft = soft_cross_entropy(logits, teacher_logits, temperature=temperature) if alpha > 0.0 else None
    if soft is None:
        return hard
    if hard is None:
        return soft
    return (1.0 - alpha) * hard + alpha * soft


class DistillationLoss:
    """A loss callable ``loss(logits, labels, inputs)`` that runs the zero-shot teacher on ``inputs`` itself.

    For the LC the inputs are cached image features and the teacher is the zero-shot head (a matrix product),
    so distillation costs nothing extra; it also works end to end with the zero-shot classifier as teacher.

    Args:
        teacher: maps the inputs to zero-shot logits (an ``nn.Module`` in eval mode, or any callable); called
            under ``torch.no_grad()`` and never modified. It must be a *copy* of the zero-shot head, not the
            warm-started head being trained, or the targets would drift with the student.
        alpha: weight of the soft targets (profile key ``baselines.distill_alphas``).
        temperature: see the module docstring; 1 is the paper's loss.
    """

    def __init__(self, teacher: Callable[[torch.Tensor], torch.Tensor], *, alpha: float, temperature: float = 1.0):
        _check(alpha, temperature)
        self.teacher, self.alpha, self.temperature = teacher, float(alpha), float(temperature)

    def __call__(self, logits: torch.Tensor, labels: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        if self.alpha > 0.0:
            with torch.no_grad():
                teacher_logits = self.teacher(inputs)
        else:
            teacher_logits = logits  # unused at α = 0
        return distillation_loss(logits, labels, teacher_logits, alpha=self.alpha, temperature=self.temperature)
