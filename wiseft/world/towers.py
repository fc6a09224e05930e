"""The image tower of the world's CLIP, registered with timm as ``wiseft_mini_convnext``.

It is timm's ``test_convnext2`` (a LayerNorm ConvNeXt of 0.35 M parameters, depths 1-1-1-1) with its depthwise
kernels cut to the feature maps a 32 px image leaves its four stages: 8×8, 4×4, 2×2 and 1×1. On a 2×2 map a 7×7
kernel (padding 3) meets nothing but zero padding outside its central 3×3 taps, and on a 1×1 map nothing outside
its centre, so kernels (7, 7, 3, 1) compute exactly the functions (7, 7, 7, 7) can, while the CPU no longer
spends a third of each pretraining step convolving padding (measured: 0.27 → 0.19 s per step on 2 cores).
LayerNorm rather than BatchNorm matters for WiSE-FT (see :mod:`wiseft.world.pretrain`).
"""

from __future__ import annotations

import timm
from timm.models import register_model

__all__ = ["TOWER_NAME", "KERNEL_SIZES", "wiseft_mini_convnext"]

TOWER_NAME = "wiseft_mini_convnext"
#: depthwise kernel per stage, matched to the 8/4/2/1-pixel feature maps of a 32 px input.
KERNEL_SIZES = (7, 7, 3, 1)


@register_model
def wiseft_mini_convnext(pretrained: bool = False, **kwargs):
    """``test_convnext2`` with :data:`KERNEL_SIZES`; there are no pretrained weights to fetch."""
    kwargs.setdefault("kernel_sizes", KERNEL_SIZES)
    return timm.create_model("test_convnext2", pretrained=pretrained, **kwargs)
