"""Device, precision and seeding helpers.

Device and precision are always parameters. ``"auto"`` is resolved once, here, and a fallback is logged rather
than silent. Seeding covers Python, NumPy and torch so that CPU runs are bit-for-bit repeatable.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random

import numpy as np
import torch

from .errors import WiseftError

log = logging.getLogger(__name__)

__all__ = ["PRECISIONS", "resolve_device", "autocast", "seed_everything", "configure_determinism", "dtype_for"]

#: Precision modes understood by training and evaluation.
PRECISIONS = ("fp32", "amp_bf16", "amp_fp16")


def resolve_device(device: str | torch.device | None = "cpu") -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"mps"`` into a usable :class:`torch.device`.

    ``"auto"`` picks CUDA, then MPS, then the CPU. An explicit device that is not available raises, because a
    silent fallback to the CPU would turn a two-hour GPU job into a two-week one.

    Raises:
        WiseftError: if the named device is not available on this machine.
    """
    if device is None:
        device = "cpu"
    if isinstance(device, torch.device):
        device = str(device)
    device = device.lower()
    if device == "auto":
        if torch.cuda.is_available():
            chosen = "cuda"
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            chosen = "mps"
        else:
            chosen = "cpu"
        log.info("device 'auto' resolved to %s", chosen)
        return torch.device(chosen)
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise WiseftError(f"device {device!r} was asked for but CUDA is not available; use device='cpu' or 'auto'")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise WiseftError(f"device {device!r} was asked for but MPS is not available; use device='cpu' or 'auto'")
    return dev


def dtype_for(precision: str) -> torch.dtype | None:
    """The autocast dtype of a precision mode (``None`` for fp32)."""
    if precision not in PRECISIONS:
        raise WiseftError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    return {"fp32": None, "amp_bf16": torch.bfloat16, "amp_fp16": torch.float16}[precision]


def autocast(precision: str, device: torch.device | str):
    """A context manager that runs the block in ``precision`` on ``device`` (a no-op for fp32)."""
    dtype = dtype_for(precision)
    if dtype is None:
        return contextlib.nullcontext()
    device_type = torch.device(device).type
    if device_type == "cpu" and dtype == torch.float16:
        log.warning("amp_fp16 on the CPU is slow and poorly supported; consider amp_bf16")
    return torch.autocast(device_type=device_type, dtype=dtype)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def configure_determinism(enabled: bool = True) -> None:
    """Ask torch for deterministic kernels (warn-only, so ops without one still run).

    On CUDA this also needs ``CUBLAS_WORKSPACE_CONFIG``, which is set here when absent.
    """
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enabled, warn_only=True)
    if torch.backends.cudnn.is_available():
        torch.backends.cudnn.benchmark = not enabled
        torch.backends.cudnn.deterministic = enabled
