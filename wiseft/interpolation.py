"""WiSE-FT weight-space ensembling: θ_α = (1−α)·θ_0 + α·θ_1 (paper Eq. 1).

Only floating-point tensors are interpolated; integer buffers (counters, index tables) must be equal in both
state dicts and are copied. Interpolation uses ``torch.lerp``, which returns θ_0 exactly at α = 0 and θ_1
exactly at α = 1, so the ends of a sweep reproduce the zero-shot and fine-tuned models bit for bit.

:func:`lerp_into_` writes θ_α straight into a working model's tensors, so a sweep over any number of α keeps
only θ_0, θ_1 and one model in memory and never builds a state dict per α.

Example:
    >>> theta0, theta1 = zeroshot.state_dict(), finetuned.state_dict()        # doctest: +SKIP
    >>> check_compatible(theta0, theta1)                                       # doctest: +SKIP
    >>> lerp_into_(working_model, theta0, theta1, 0.5)                         # doctest: +SKIP
"""

from __future__ import annotations

import logging
from typing import Mapping

import torch
from torch import nn

from .errors import IncompatibleStateError, NumericsError, WiseftError

log = logging.getLogger(__name__)

__all__ = ["check_compatible", "check_finite", "interpolate_state_dicts", "lerp_into_", "differing_keys",
           "clone_state_dict"]

StateDict = Mapping[str, torch.Tensor]


def check_finite(state_dict: StateDict, name: str = "state dict", use: str = "interpolated") -> None:
    """Raise :class:`NumericsError` naming the first floating tensor holding NaN or ±inf (``use``: what the
    weights cannot be, for the message)."""
    for key, value in state_dict.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            bad = "NaN" if bool(torch.isnan(value).any()) else "inf"
            raise NumericsError(f"{name}: tensor {key!r} contains {bad}; the checkpoint is corrupt or training "
                                f"diverged, so it cannot be {use}")


def check_compatible(sd0: StateDict, sd1: StateDict, finite: bool = True) -> None:
    """Check that two state dicts can be interpolated.

    Args:
        sd0: θ_0 (e.g. zero-shot).
        sd1: θ_1 (e.g. fine-tuned).
        finite: also refuse NaN/inf weights.

    Raises:
        IncompatibleStateError: different key sets, shapes or dtypes, or unequal integer buffers, naming the
            first offending key.
        NumericsError: a NaN/inf tensor (with ``finite``).
    """
    for key in sd0:
        if key not in sd1:
            raise IncompatibleStateError(f"key {key!r} is in θ0 but not in θ1; the checkpoints come from "
                                         f"different architectures or heads")
    for key in sd1:
        if key not in sd0:
            raise IncompatibleStateError(f"key {key!r} is in θ1 but not in θ0; the checkpoints come from "
                                         f"different architectures or heads")
    for key, a in sd0.items():
        b = sd1[key]
        if a.shape != b.shape:
            raise IncompatibleStateError(f"key {key!r}: shape {tuple(a.shape)} in θ0 vs {tuple(b.shape)} in θ1 "
                                         f"(different model size or number of classes?)")
        if a.dtype != b.dtype:
            raise IncompatibleStateError(f"key {key!r}: dtype {a.dtype} in θ0 vs {b.dtype} in θ1; cast both to "
                                         f"float32 before interpolating (OpenAI weights load as fp16 on CUDA)")
        if not a.is_floating_point() and not torch.equal(a.cpu(), b.cpu()):
            raise IncompatibleStateError(f"key {key!r}: integer buffer differs between θ0 and θ1; it cannot be "
                                         f"interpolated")
    if finite:
        check_finite(sd0, "θ0")
        check_finite(sd1, "θ1")


def interpolate_state_dicts(sd0: StateDict, sd1: StateDict, alpha: float, check: bool = True
                            ) -> dict[str, torch.Tensor]:
    """A new state dict θ_α = (1−α)·θ_0 + α·θ_1 over floating tensors; integer buffers copied from θ_0.

    Prefer :func:`lerp_into_` in loops: this allocates a full state dict.
    """
    _check_alpha(alpha)
    if check:
        check_compatible(sd0, sd1)
    return {k: torch.lerp(v, sd1[k], alpha) if v.is_floating_point() else v.clone() for k, v in sd0.items()}


@torch.no_grad()
def lerp_into_(model: nn.Module, sd0: StateDict, sd1: StateDict, alpha: float) -> nn.Module:
    """Write θ_α into ``model``'s parameters and buffers in place and return the model.

    ``sd0``/``sd1`` must have exactly the model's state-dict keys (check them once with
    :func:`check_compatible`; this function does not repeat that per α). Tensors on another device than the
    model are moved one at a time, so θ_0/θ_1 may stay on the CPU while the model is on a GPU.

    Raises:
        IncompatibleStateError: a key of the model is missing from ``sd0`` or ``sd1``.
    """
    _check_alpha(alpha)
    targets = model.state_dict(keep_vars=True)
    for key, target in targets.items():
        if key not in sd0 or key not in sd1:
            raise IncompatibleStateError(f"key {key!r} of the model is missing from the state dicts being "
                                         f"interpolated")
        a, b = sd0[key], sd1[key]
        if a.device != target.device:
            a, b = a.to(target.device, non_blocking=True), b.to(target.device, non_blocking=True)
        if target.is_floating_point() and a.is_floating_point():
            if a.dtype == target.dtype:
                torch.lerp(a, b, alpha, out=target.data)
            else:
                target.data.copy_(torch.lerp(a, b, alpha))
        else:
            target.data.copy_(a)
    return model


def differing_keys(sd0: StateDict, sd1: StateDict) -> list[str]:
    """Keys whose tensors differ between two compatible state dicts (e.g. only ``head.*`` for an LC)."""
    return [k for k, v in sd0.items() if not torch.equal(v, sd1[k].to(v.device))]


def clone_state_dict(model_or_sd: nn.Module | StateDict, device: str | torch.device | None = None
                     ) -> dict[str, torch.Tensor]:
    """A detached copy of a model's (or a state dict's) tensors, optionally on another device."""
    sd = model_or_sd.state_dict() if isinstance(model_or_sd, nn.Module) else model_or_sd
    return {k: v.detach().to(device if device is not None else v.device, copy=True) for k, v in sd.items()}


def _check_alpha(alpha: float) -> None:
    if not (0.0 <= float(alpha) <= 1.0):
        raise WiseftError(f"alpha {alpha!r} is outside [0, 1]; WiSE-FT mixes θ0 and θ1 with 0 ≤ α ≤ 1")
