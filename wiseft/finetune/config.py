"""The settings of the fine-tuning engines: end-to-end (:class:`E2ECfg`) and the linear classifier (:class:`LCCfg`).

Plain dataclasses with the paper's defaults. The engines (:func:`wiseft.finetune.finetune_e2e`,
:func:`wiseft.finetune.search_linear`) take them directly; a profile composes them under ``finetune.e2e`` and
``finetune.lc`` (:mod:`wiseft.profile` validates and coerces the YAML values).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["E2ECfg", "LCCfg", "Precision"]

Precision = Literal["fp32", "amp_bf16", "amp_fp16"]


@dataclass
class E2ECfg:
    """End-to-end fine-tuning (paper App. D.2). Defaults are the paper's ImageNet settings."""

    enabled: bool = True
    epochs: int = 10
    #: stop after this many optimizer steps (``null``: run every epoch).
    max_steps: int | None = None
    #: global batch (per-rank batch × world size × accumulation steps).
    batch_size: int = 512
    #: per-rank, per-forward batch; ``null`` means ``batch_size / world_size`` (no accumulation).
    micro_batch_size: int | None = None
    optimizer: Literal["adamw", "adam", "sgd"] = "adamw"
    lr: float = 3e-5
    weight_decay: float = 0.1
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    momentum: float = 0.9
    warmup_steps: int = 500
    grad_clip: float | None = 1.0
    label_smoothing: float = 0.0
    precision: Precision = "fp32"
    #: ``clip``: RandomResizedCrop(scale 0.9–1, bicubic) as in the paper's code; ``strong``: Fig. 15's timm
    #: augmentation (random crop, flip, colour jitter); ``none``: evaluation preprocessing.
    augmentation: Literal["clip", "strong", "none"] = "clip"
    crop_scale: list[float] = field(default_factory=lambda: [0.9, 1.0])
    grad_checkpointing: bool = False
    eval_every_epoch: bool = False
    checkpoint_every_steps: int = 0
    log_every_steps: int = 10
    tensorboard: bool = False
    num_workers: int = 2
    #: page-locked loader batches for fast copies to the GPU; ``null``: on CUDA only.
    pin_memory: bool | None = None
    #: batches each loader worker prepares ahead; ``null``: torch's default (2).
    prefetch_factor: int | None = None
    #: fused optimizer kernels (one launch for all parameters); ``null``: on CUDA only.
    fused_optimizer: bool | None = None
    #: ``channels_last`` model and images (faster convolutions on GPUs).
    channels_last: bool = False


@dataclass
class LCCfg:
    """Linear classifier on frozen features (paper App. C.3.3, D.3)."""

    enabled: bool = True
    init: Literal["zeroshot", "random"] = "zeroshot"
    #: random-search trials per regulariser (the paper uses 64).
    search_trials: int = 64
    regularizers: list[Literal["none", "wd", "l1", "ls"]] = field(default_factory=lambda: ["none", "wd", "l1", "ls"])
    batch_sizes: list[int] = field(default_factory=lambda: [64, 128, 256])
    #: lr = 10^-U[a, b]; wd = 10^-U[a, b]; L1 = 10^-U[a, b]; label smoothing ~ U[a, b].
    lr_exponent: list[float] = field(default_factory=lambda: [0.0, 6.0])
    wd_exponent: list[float] = field(default_factory=lambda: [0.0, 4.0])
    l1_exponent: list[float] = field(default_factory=lambda: [4.0, 8.0])
    label_smoothing: list[float] = field(default_factory=lambda: [0.0, 0.25])
    #: T of epochs ~ U{1..T}; ``null`` finds T by the App. D.3 doubling search (the paper's protocol).
    max_epochs: int | None = None
    #: the doubling search's largest budget, and the smallest held-out accuracy gain of a doubling that is not
    #: saturation (a fraction).
    epoch_search_limit: int = 256
    epoch_search_tolerance: float = 1e-3
    #: fraction of the reference training set held out for choosing hyperparameters (when the dataset has
    #: no validation split of its own).
    heldout_fraction: float = 0.02
    #: fixed hyperparameters that skip the search: any of lr, weight_decay, l1, label_smoothing, batch_size, epochs.
    fixed: dict[str, Any] | None = None
    #: k-shot runs (k images per class) for the low-data experiment (Fig. 17).
    shots: list[int] = field(default_factory=list)
