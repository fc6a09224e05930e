"""The learning-rate schedule of the paper's code: linear warm-up, then a half cosine to zero.

The reference implementation (``wise-ft/src/models/utils.py``, ``cosine_lr``) sets the rate of every parameter
group before each optimizer step ``s`` (counted from 0 over the whole run):

* warm-up, ``s < W``: ``lr = base · (s + 1) / W``;
* afterwards: ``lr = 0.5 · (1 + cos(π · e / es)) · base`` with ``e = s − W`` and ``es = S − W``, where ``S`` is
  the total number of optimizer steps.

The schedule is a pure function of the step, so resuming needs nothing but the step counter.
"""

from __future__ import annotations

import math

import torch

__all__ = ["warmup_cosine_lr", "WarmupCosine"]


def warmup_cosine_lr(step: int, base_lr: float, warmup_steps: int, total_steps: int) -> float:
    """The learning rate at optimizer step ``step`` (0-based), exactly as the paper's code computes it.

    Args:
        step: the optimizer step about to be taken, counted from 0.
        base_lr: the peak learning rate.
        warmup_steps: length of the linear warm-up (0 for none).
        total_steps: optimizer steps of the whole run.

    Returns:
        The learning rate for that step.
    """
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    e = step - warmup_steps
    es = total_steps - warmup_steps
    if es <= 0:  # a run no longer than its warm-up: the paper's code would divide by zero; hold the peak
        return base_lr
    return 0.5 * (1.0 + math.cos(math.pi * e / es)) * base_lr


class WarmupCosine:
    """Sets the learning rate of every parameter group of an optimizer, step by step.

    Args:
        optimizer: the optimizer whose groups are updated.
        base_lr: peak learning rate (one value for every group, as in the paper).
        warmup_steps: length of the linear warm-up.
        total_steps: optimizer steps of the whole run.

    Example:
        >>> sched = WarmupCosine(opt, base_lr=3e-5, warmup_steps=500, total_steps=25_000)
        >>> for step in range(25_000):
        ...     sched.apply(step)
        ...     opt.step()
    """

    def __init__(self, optimizer: torch.optim.Optimizer, base_lr: float, warmup_steps: int, total_steps: int):
        self.optimizer = optimizer
        self.base_lr = float(base_lr)
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps)
        self.last_step = -1

    def lr_at(self, step: int) -> float:
        """The learning rate of step ``step`` without changing the optimizer."""
        return warmup_cosine_lr(step, self.base_lr, self.warmup_steps, self.total_steps)

    def apply(self, step: int) -> float:
        """Set the rate of step ``step`` on every group and return it."""
        lr = self.lr_at(step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.last_step = step
        return lr

    def state_dict(self) -> dict:
        """A JSON-able description, stored in training checkpoints."""
        return {"base_lr": self.base_lr, "warmup_steps": self.warmup_steps, "total_steps": self.total_steps,
                "last_step": self.last_step}

    def load_state_dict(self, state: dict) -> None:
        """Restore the step counter (the shape of the schedule comes from the configuration)."""
        self.last_step = int(state.get("last_step", -1))
