"""The fine-tuning optimizer and data-loading options, from the profile (GPU switches default to on for CUDA)."""

from __future__ import annotations

from typing import Any

import torch

from ..errors import WiseftError
from .config import E2ECfg

__all__ = ["build_optimizer", "loader_options"]


def build_optimizer(params, cfg: E2ECfg, device_type: str = "cpu") -> torch.optim.Optimizer:
    """The optimizer of ``cfg`` (``adamw`` as in the paper; ``adam``/``sgd`` for Fig. 3c) over ``params``, with
    fused kernels where ``cfg.fused_optimizer`` (``null``: on CUDA) asks for them."""
    fused = {"fused": True} if _use(cfg.fused_optimizer, device_type) else {}
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps,
                                 weight_decay=cfg.weight_decay, **fused)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps,
                                weight_decay=cfg.weight_decay, **fused)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, **fused)
    raise WiseftError(f"unknown optimizer {cfg.optimizer!r} (finetune.e2e.optimizer); use adamw, adam or sgd")


def _use(option: bool | None, device_type: str) -> bool:
    """A GPU-performance switch: its value when set, else on for CUDA only."""
    return device_type == "cuda" if option is None else bool(option)


def loader_options(cfg: E2ECfg, device_type: str) -> dict[str, Any]:
    """The training DataLoader's workers, pinned memory and prefetching, from the profile."""
    out: dict[str, Any] = {"num_workers": cfg.num_workers, "pin_memory": _use(cfg.pin_memory, device_type)}
    if cfg.num_workers > 0 and cfg.prefetch_factor is not None:
        out["prefetch_factor"] = cfg.prefetch_factor
    return out
