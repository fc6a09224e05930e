"""The world CLIP's image tower: trimmed depthwise kernels compute what timm's full 7×7 kernels compute at 32 px."""

from __future__ import annotations

import open_clip
import pytest
import timm
import torch

from wiseft import world
from wiseft.world.towers import KERNEL_SIZES, TOWER_NAME


def _trimmed_copy_of(full: torch.nn.Module) -> torch.nn.Module:
    """A ``wiseft_mini_convnext`` holding ``full``'s weights, its depthwise kernels cut to their central taps."""
    trimmed = timm.create_model(TOWER_NAME)
    state = full.state_dict()
    for name, target in trimmed.state_dict().items():
        source = state[name]
        if source.shape != target.shape:
            k, size = target.shape[-1], source.shape[-1]
            start = (size - k) // 2
            state[name] = source[..., start:start + k, start:start + k]
    trimmed.load_state_dict(state)
    return trimmed.eval()


def _full_tower_where_every_tap_counts() -> torch.nn.Module:
    """timm's ``test_convnext2`` with large depthwise taps and layer scales of 1 (timm starts them at 1e-6,
    which would hide any difference between two towers behind the tolerance)."""
    torch.manual_seed(0)
    full = timm.create_model("test_convnext2").eval()
    with torch.no_grad():
        for stage in full.stages:
            stage.blocks[0].conv_dw.weight.normal_(0, 0.2)
            stage.blocks[0].gamma.fill_(1.0)
    return full


def test_the_tower_is_registered_with_the_trimmed_kernels():
    world.register_model_configs()
    assert TOWER_NAME in timm.list_models()
    tower = timm.create_model(TOWER_NAME)
    kernels = [stage.blocks[0].conv_dw.kernel_size[0] for stage in tower.stages]
    assert tuple(kernels) == KERNEL_SIZES
    clip = open_clip.create_model(world.MODEL_NAME)
    assert sum(p.numel() for p in clip.visual.trunk.parameters()) < sum(
        p.numel() for p in timm.create_model("test_convnext2").parameters())


def test_trimmed_kernels_give_the_full_kernels_outputs_at_32px():
    full = _full_tower_where_every_tap_counts()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(_trimmed_copy_of(full)(x), full(x), rtol=1e-5, atol=1e-5)


def test_at_larger_inputs_the_trimmed_tower_is_a_different_function():
    """The equivalence is a property of the 32 px world, not a general one: at 64 px the outer taps matter."""
    full = _full_tower_where_every_tap_counts()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad(), pytest.raises(AssertionError):
        torch.testing.assert_close(_trimmed_copy_of(full)(x), full(x), rtol=1e-5, atol=1e-5)
