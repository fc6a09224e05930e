"""Regularisation toward the zero-shot weights, as loss terms the fine-tuning loop adds (paper Figs. 3c, 13).

The paper tests whether simply keeping the fine-tuned weights near the zero-shot ones buys WiSE-FT's robustness:

- **E2E** (Fig. 3c, "Adam + regularize to zero-shot"): λ‖θ − θ_zero-shot‖²₂ summed over all parameters, the
  L2-SP regulariser of Li, Grandvalet & Davoine (2018, the paper's ref. [105]).
- **LC** (Fig. 13): λ‖W − W_zero-shot‖²_F on the linear head's weight matrix, λ swept on a log grid.

Both are added to the loss, so they pass through AdamW's per-coordinate preconditioning like the data term;
they are not decoupled like AdamW's weight decay (which keeps pulling toward 0). That is how the paper adds
them, and why their λ grids are not comparable with weight-decay values.

A penalty is a callable ``penalty(model) -> scalar tensor``; its gradient w.r.t. each parameter is
2λ(θ − θ_zero-shot). Parameters that do not require a gradient (a frozen encoder) are skipped: their term is a
constant that changes neither the gradient nor the optimum, and skipping it saves a pass over the encoder.

Example:
    >>> penalty = l2sp_penalty(zeroshot_state, lam=1e-2)          # doctest: +SKIP
    >>> loss = F.cross_entropy(model(x), y) + penalty(model)        # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
from typing import Iterable, Mapping

import torch

from ..errors import IncompatibleStateError, WiseftError

log = logging.getLogger(__name__)

__all__ = ["L2SPPenalty", "l2sp_penalty", "lc_l2sp_penalty"]


class L2SPPenalty:
    """λ·Σ_k ‖θ_k − θ⁰_k‖² over the model's trainable floating parameters that have a reference counterpart.

    Args:
        reference: the zero-shot weights by parameter name (a state dict, or a subset of one).
        lam: λ ≥ 0 (finite).
        keys: restrict the penalty to these parameter names, each of which must exist in the model and in
            ``reference``; ``None`` uses every trainable floating parameter found in ``reference``.

    Raises:
        WiseftError: for a negative or non-finite λ, or a reference tensor that is not floating.
    """

    def __init__(self, reference: Mapping[str, torch.Tensor], lam: float, *, keys: Iterable[str] | None = None):
        lam = float(lam)
        if not (math.isfinite(lam) and lam >= 0.0):
            raise WiseftError(f"L2-SP: lambda {lam!r} must be finite and >= 0")
        self.lam = lam
        self.keys = None if keys is None else list(keys)
        self._reference = {k: v.detach() for k, v in reference.items()}
        if self.keys is not None:
            missing = [k for k in self.keys if k not in self._reference]
            if missing:
                raise IncompatibleStateError(f"L2-SP: no reference tensor for {missing}; reference keys include "
                                             f"{sorted(self._reference)[:5]}")
        self._on_device: dict[str, torch.Tensor] = {}  # reference moved once to each parameter's device/dtype
        self._logged = False

    def _pairs(self, model: torch.nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
        params = dict(model.named_parameters())
        if self.keys is not None:
            absent = [k for k in self.keys if k not in params]
            if absent:
                raise IncompatibleStateError(f"L2-SP: the model has no parameter {absent}; its parameters include "
                                             f"{list(params)[:5]}")
            names = self.keys
        else:
            names = [k for k, p in params.items() if k in self._reference]
        pairs, skipped = [], []
        for name in names:
            p = params[name]
            if not p.requires_grad or not p.is_floating_point():
                skipped.append(name)
                continue
            ref = self._on_device.get(name)
            if ref is None or ref.device != p.device or ref.dtype != p.dtype:
                src = self._reference[name]
                if not src.is_floating_point() or tuple(src.shape) != tuple(p.shape):
                    raise IncompatibleStateError(
                        f"L2-SP: '{name}' is {tuple(p.shape)} {p.dtype} in the model but {tuple(src.shape)} "
                        f"{src.dtype} in the zero-shot reference; regularise toward the same architecture")
                ref = self._on_device[name] = src.to(p.device, p.dtype)
            pairs.append((p, ref))
        if not pairs:
            raise IncompatibleStateError(
                "L2-SP: no trainable parameter of the model has a zero-shot counterpart, so the penalty would be "
                "0; check that the reference is the zero-shot state dict of this model (same parameter names)")
        if not self._logged:
            unmatched = [k for k in params if k not in self._reference and params[k].requires_grad]
            log.info("L2-SP (lambda=%g) over %d parameter tensors; %d trainable without a reference%s; "
                     "%d frozen skipped", self.lam, len(pairs), len(unmatched),
                     f" (e.g. {unmatched[:3]})" if unmatched else "", len(skipped))
            self._logged = True
        return pairs

    def __call__(self, model: torch.nn.Module) -> torch.Tensor:
        """The penalty for the model's current weights, a scalar tensor attached to the autograd graph."""
        pairs = self._pairs(model)
        # float32 sums even for bf16 parameters: a squared distance summed over 1e8 entries overflows bf16 precision.
        total = torch.stack([(p.float() - r.float()).pow(2).sum() for p, r in pairs]).sum()
        return self.lam * total


def l2sp_penalty(zeroshot_state: Mapping[str, torch.Tensor], lam: float) -> L2SPPenalty:
    """E2E penalty λ‖θ − θ_zero-shot‖² over every trainable parameter with a zero-shot counterpart.

    Args:
        zeroshot_state: the zero-shot classifier's state dict (encoder and head).
        lam: λ (profile key ``baselines.l2sp_lambdas``).
    """
    return L2SPPenalty(zeroshot_state, lam)


def lc_l2sp_penalty(zeroshot_weight: torch.Tensor, lam: float, *, weight_name: str = "head.weight") -> L2SPPenalty:
    """LC penalty λ‖W − W_zero-shot‖²_F on the head's weight matrix only (the bias is not regularised).

    Args:
        zeroshot_weight: the zero-shot head's weight [C, D] (text embeddings times CLIP's temperature).
        lam: λ (profile key ``baselines.lc_l2sp_lambdas``).
        weight_name: the parameter's name in the module being trained: ``"head.weight"`` for an
            ``ImageClassifier``, ``"weight"`` when the LC loop trains a bare head on cached features.
    """
    if zeroshot_weight.ndim != 2:
        raise IncompatibleStateError(
            f"LC L2-SP: expected a [classes, dim] weight matrix, got {tuple(zeroshot_weight.shape)}")
    return L2SPPenalty({weight_name: zeroshot_weight}, lam, keys=[weight_name])
