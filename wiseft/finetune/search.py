"""The paper's random hyperparameter search for the linear classifier (App. D.3).

For each regulariser in ``{none, wd, l1, ls}`` it samples ``search_trials`` configurations:

* batch size ~ U{64, 128, 256}; learning rate = 10^−U[0, 6]; epochs ~ U{1 … T}, T = ``max_epochs`` or, when that
  is ``null``, found by doubling the epochs until held-out accuracy saturates (:mod:`.epoch_budget`);
* ``wd``: weight decay = 10^−U[0, 4]; ``l1``: L1 = 10^−U[4, 8]; ``ls``: label smoothing ~ U[0, 0.25]
  (the other regularisers stay off; ``none`` uses none of them).

Each trial is fitted on the training split and scored on a held-out split carved out of the reference
*training* set (never a test set); the best trial's hyperparameters are then refitted on all the training data.
``fixed`` hyperparameters in the profile skip the search.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from ..device import resolve_device
from ..errors import WiseftError
from ..progress import progress
from .config import LCCfg
from .epoch_budget import EpochBudget, find_epoch_budget
from .linear import LCHparams, LinearHead, linear_accuracy, train_linear
from .sampler import derive_seed

log = logging.getLogger(__name__)

__all__ = ["REGULARIZERS", "Trial", "LCResult", "sample_trials", "fixed_hparams", "heldout_split", "search_linear"]

REGULARIZERS = ("none", "wd", "l1", "ls")
_SEARCH_STREAM, _SPLIT_STREAM = 0x5EA2, 0x5917


@dataclass
class Trial:
    """One sampled configuration and its held-out accuracy (``None`` until fitted)."""

    regularizer: str
    hparams: LCHparams
    heldout_acc: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"regularizer": self.regularizer, **self.hparams.as_dict(), "heldout_acc": self.heldout_acc}


@dataclass
class LCResult:
    """The chosen linear classifier.

    Attributes:
        head: the head refitted on all training data with the chosen hyperparameters.
        hparams: the chosen hyperparameters.
        regularizer: the regulariser of the chosen trial (``None`` for fixed hyperparameters).
        heldout_acc: the chosen trial's held-out accuracy (``None`` for fixed hyperparameters).
        trials: every trial, as dicts, in the order they ran.
        epoch_budget: the doubling search that chose T (``None`` when ``max_epochs`` fixed it).
    """

    head: LinearHead
    hparams: LCHparams
    regularizer: str | None
    heldout_acc: float | None
    trials: list[dict[str, Any]] = field(default_factory=list)
    epoch_budget: EpochBudget | None = None


def sample_trials(cfg: LCCfg, seed: int, max_epochs: int | None = None) -> list[Trial]:
    """``cfg.search_trials`` random configurations per regulariser in ``cfg.regularizers`` (seeded); epochs are
    drawn from U{1 … ``max_epochs``} (default ``cfg.max_epochs``)."""
    max_epochs = cfg.max_epochs if max_epochs is None else max_epochs
    if max_epochs is None:
        raise WiseftError("sample_trials: finetune.lc.max_epochs is null; pass the T found by the doubling search")
    rng = np.random.default_rng(derive_seed(_SEARCH_STREAM, seed))
    trials = []
    for reg in cfg.regularizers:
        if reg not in REGULARIZERS:
            raise WiseftError(f"unknown regulariser {reg!r} (finetune.lc.regularizers); use {', '.join(REGULARIZERS)}")
        for _ in range(cfg.search_trials):
            hp = LCHparams(
                lr=float(10 ** -rng.uniform(*cfg.lr_exponent)),
                batch_size=int(rng.choice(cfg.batch_sizes)),
                epochs=int(rng.integers(1, max_epochs + 1)),
            )
            # Every trial draws all three strengths (and keeps its own), so each consumes the same random numbers.
            wd = float(10 ** -rng.uniform(*cfg.wd_exponent))
            l1 = float(10 ** -rng.uniform(*cfg.l1_exponent))
            ls = float(rng.uniform(*cfg.label_smoothing))
            hp = replace(hp, weight_decay=wd if reg == "wd" else 0.0, l1=l1 if reg == "l1" else 0.0,
                         label_smoothing=ls if reg == "ls" else 0.0)
            trials.append(Trial(reg, hp))
    return trials


def fixed_hparams(cfg: LCCfg) -> LCHparams | None:
    """The hyperparameters of ``cfg.fixed`` (unset keys: lr 1e-3, no regularisation, batch 256,
    ``max_epochs`` epochs, or 10 when that is ``null``), or ``None`` when the search should run."""
    if cfg.fixed is None:
        return None
    values = dict(cfg.fixed)
    defaults = LCHparams() if cfg.max_epochs is None else LCHparams(epochs=cfg.max_epochs)
    try:
        return replace(defaults, **{k: type(getattr(defaults, k))(v) for k, v in values.items()})
    except (TypeError, ValueError) as e:
        raise WiseftError(f"finetune.lc.fixed: {e}; keys are lr, weight_decay, l1, label_smoothing, batch_size, "
                          f"epochs") from e


def heldout_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split training indices into ``(train, heldout)``, stratified by class, seeded.

    Every class with at least two samples gives ``round(fraction × count)`` samples (at least one) to the
    held-out split; classes with a single sample stay in training.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(derive_seed(_SPLIT_STREAM, seed))
    held = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if len(idx) < 2:
            continue
        take = min(max(1, int(round(fraction * len(idx)))), len(idx) - 1)
        held.append(rng.permutation(idx)[:take])
    heldout = np.sort(np.concatenate(held)) if held else np.empty(0, dtype=np.int64)
    mask = np.ones(len(labels), dtype=bool)
    mask[heldout] = False
    return np.flatnonzero(mask), heldout


def search_linear(features: torch.Tensor, labels: torch.Tensor, cfg: LCCfg, *,
                  init: tuple[torch.Tensor, torch.Tensor] | None = None, num_classes: int | None = None,
                  heldout: tuple[torch.Tensor, torch.Tensor] | None = None, normalize: bool = True,
                  seed: int = 0, device: str | torch.device = "cpu", refit: bool = True) -> LCResult:
    """Choose a linear classifier by the paper's random search, scored on held-out training data.

    Args:
        features, labels: the reference training set's features ``[N, D]`` and labels ``[N]``.
        cfg: the ``finetune.lc`` section of a profile.
        init: the zero-shot head ``(weight, bias)``; required when ``cfg.init == "zeroshot"``.
        num_classes: the number of classes (for a random start).
        heldout: features and labels of a held-out split of the *training* distribution; when ``None``,
            ``cfg.heldout_fraction`` of ``features`` is held out (stratified, seeded). Never pass a test set.
        normalize: the head L2-normalises features (as the zero-shot head does).
        seed: seeds sampling, the split and every fit.
        device: where to fit.
        refit: refit the chosen hyperparameters on all training data (including a carved-out held-out part).

    Returns:
        An :class:`LCResult`.
    """
    dev = resolve_device(device)
    if cfg.init == "zeroshot" and init is None:
        raise WiseftError("finetune.lc.init is 'zeroshot' but no zero-shot head was given")
    start = init if cfg.init == "zeroshot" else None
    num_classes = num_classes if num_classes is not None else (init[0].shape[0] if init is not None else None)
    fit_kw = dict(init=start, num_classes=num_classes, normalize=normalize, device=dev)
    fixed = fixed_hparams(cfg)
    if fixed is not None:
        log.info("linear classifier with fixed hyperparameters %s (no search)", fixed)
        head = train_linear(features, labels, fixed, seed=seed, **fit_kw)
        return LCResult(head, fixed, None, None, [])

    if heldout is None:
        train_idx, held_idx = heldout_split(labels.cpu().numpy(), cfg.heldout_fraction, seed)
        if len(held_idx) == 0:
            raise WiseftError("cannot hold out any training sample (every class has one sample); raise "
                              "finetune.lc.heldout_fraction or give fixed hyperparameters (finetune.lc.fixed)")
        t_idx, h_idx = torch.from_numpy(train_idx), torch.from_numpy(held_idx)
        fit_x, fit_y, held_x, held_y = features[t_idx], labels[t_idx], features[h_idx], labels[h_idx]
    else:
        fit_x, fit_y, (held_x, held_y) = features, labels, heldout
    fit_x, fit_y = fit_x.to(dev, torch.float32), fit_y.to(dev)
    held_x, held_y = held_x.to(dev, torch.float32), held_y.to(dev)

    budget = None
    if cfg.max_epochs is None and cfg.regularizers and cfg.search_trials:
        budget = find_epoch_budget(fit_x, fit_y, held_x, held_y, limit=cfg.epoch_search_limit,
                                   tolerance=cfg.epoch_search_tolerance, seed=seed, **fit_kw)
    trials = sample_trials(cfg, seed, budget.epochs if budget is not None else None)
    if not trials:
        raise WiseftError("finetune.lc.regularizers is empty: nothing to search; list some or set finetune.lc.fixed")
    log.info("linear-classifier search: %d trials, %d training / %d held-out samples", len(trials), len(fit_y),
             len(held_y))
    best: Trial | None = None
    for i, trial in enumerate(progress(trials, desc="LC search")):
        head = train_linear(fit_x, fit_y, trial.hparams, seed=derive_seed(seed, i), **fit_kw)
        trial.heldout_acc = linear_accuracy(head, held_x, held_y)
        if best is None or trial.heldout_acc > best.heldout_acc:
            best = trial
    log.info("best trial: %s, held-out accuracy %.4f", best.as_dict(), best.heldout_acc)
    if refit:
        all_x = features if heldout is not None else torch.cat([fit_x, held_x.to(fit_x.device)])
        all_y = labels if heldout is not None else torch.cat([fit_y, held_y.to(fit_y.device)])
        head = train_linear(all_x, all_y, best.hparams, seed=seed, **fit_kw)
    else:
        head = train_linear(fit_x, fit_y, best.hparams, seed=derive_seed(seed, trials.index(best)), **fit_kw)
    return LCResult(head, best.hparams, best.regularizer, best.heldout_acc, [t.as_dict() for t in trials], budget)
