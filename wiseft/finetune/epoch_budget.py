"""The linear classifier's epoch budget T (paper App. D.3): double the epochs until accuracy saturates.

The random search draws each trial's epochs from U{1 … T}. The paper finds T by training with a fixed setting
(AdamW, learning rate 1e-3, weight decay 0.01) for 1, 2, 4, … epochs until held-out accuracy stops improving. Here a
doubling that gains less than ``tolerance`` (absolute held-out accuracy) counts as saturation, and T is the smaller
of the two budgets: it already reaches the plateau (only once the fit has moved off its starting accuracy; before,
a flat stretch means that training has not started yet). Profile keys: ``finetune.lc.max_epochs`` (``null`` runs this
search; a number fixes T), ``finetune.lc.epoch_search_limit`` and ``finetune.lc.epoch_search_tolerance``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

import torch

from ..errors import WiseftError
from .linear import LCHparams, linear_accuracy, train_linear

log = logging.getLogger(__name__)

__all__ = ["EpochBudget", "double_until_saturated", "find_epoch_budget", "DOUBLING_HPARAMS"]

#: The fixed fit of the doubling search (App. D.3: AdamW, lr 1e-3, weight decay 0.01); the paper gives no batch size,
#: the middle of the search's U{64, 128, 256} is wiseft's choice.
DOUBLING_HPARAMS = LCHparams(lr=1e-3, weight_decay=0.01, batch_size=128)


@dataclass(frozen=True)
class EpochBudget:
    """The outcome of the doubling search.

    Attributes:
        epochs: T, the upper end of the trials' U{1 … T}.
        saturated: whether accuracy saturated before ``limit`` (``False``: T is the limit).
        history: ``(epochs, held-out accuracy)`` of every fit, in the order they ran (0 epochs: the start).
    """

    epochs: int
    saturated: bool
    history: list[tuple[int, float]] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"epochs": self.epochs, "saturated": self.saturated,
                "history": [[e, acc] for e, acc in self.history]}


def double_until_saturated(score: Callable[[int], float], *, start: int = 1, limit: int = 256,
                           tolerance: float = 1e-3) -> EpochBudget:
    """Double the epochs from ``start`` while ``score(2e) − score(e) ≥ tolerance``; T is the last ``e``.

    A doubling counts as saturation only once ``score(e)`` has moved at least ``tolerance`` away from ``score(0)``
    (the starting head): on little data a first epoch of a few steps changes nothing, and 1 → 2 epochs is flat.

    Args:
        score: held-out accuracy (a fraction) of a fit with that many epochs (0: the starting head).
        start: the first budget.
        limit: the largest budget tried; reaching it without saturation returns it (and logs a warning).
        tolerance: the smallest gain of a doubling that is not saturation.

    Raises:
        WiseftError: ``start`` or ``limit`` below 1, ``start`` above ``limit``, or a negative tolerance.
    """
    if start < 1 or limit < start or tolerance < 0:
        raise WiseftError(f"epoch doubling search: need 1 <= start <= limit and tolerance >= 0; got start={start}, "
                          f"limit={limit}, tolerance={tolerance} (finetune.lc.epoch_search_limit / _tolerance)")
    initial = float(score(0))
    epochs, acc = start, float(score(start))
    history = [(0, initial), (epochs, acc)]
    while epochs * 2 <= limit:
        doubled = float(score(epochs * 2))
        history.append((epochs * 2, doubled))
        # a flat stretch before the fit has moved off its starting accuracy (a few steps on little data) is not
        # saturation: keep doubling until training has changed something
        if doubled - acc < tolerance and abs(acc - initial) >= tolerance:
            return EpochBudget(epochs, True, history)
        epochs, acc = epochs * 2, doubled
    log.warning("LC epoch budget: held-out accuracy still rose by >= %g at %d epochs (the limit, "
                "finetune.lc.epoch_search_limit); using T = %d", tolerance, epochs, epochs)
    return EpochBudget(epochs, False, history)


def find_epoch_budget(fit_x: torch.Tensor, fit_y: torch.Tensor, held_x: torch.Tensor, held_y: torch.Tensor, *,
                      limit: int = 256, tolerance: float = 1e-3, seed: int = 0, **fit_kw) -> EpochBudget:
    """T for the linear-classifier search on these features: :func:`double_until_saturated` over fits with
    :data:`DOUBLING_HPARAMS`, scored on the held-out split.

    Args:
        fit_x, fit_y: training features and labels.
        held_x, held_y: held-out features and labels of the training distribution (never a test set).
        limit, tolerance: see :func:`double_until_saturated`.
        seed: seeds every fit (the same for every budget, so budgets differ only in length).
        **fit_kw: passed to :func:`~wiseft.finetune.linear.train_linear` (``init``, ``num_classes``, ``normalize``,
            ``device``).
    """
    def score(epochs: int) -> float:
        head = train_linear(fit_x, fit_y, LCHparams(**{**DOUBLING_HPARAMS.as_dict(), "epochs": epochs}), seed=seed,
                            **fit_kw)
        return linear_accuracy(head, held_x, held_y)

    budget = double_until_saturated(score, limit=limit, tolerance=tolerance)
    log.info("LC epoch budget T = %d (held-out accuracy by epochs: %s)", budget.epochs,
             ", ".join(f"{e}: {acc:.4f}" for e, acc in budget.history))
    return budget
