"""GPU switches of fine-tuning, decided from the profile and the device type (testable without a GPU)."""

from __future__ import annotations

import copy

import pytest
import torch

from wiseft.finetune import finetune_e2e
from wiseft.finetune.optim import build_optimizer, loader_options
from wiseft.profile import E2ECfg
from tests.helpers import finetune_worker as worker


def test_loader_pins_memory_on_cuda_unless_told_and_prefetches_only_with_workers():
    assert loader_options(E2ECfg(num_workers=0), "cpu") == {"num_workers": 0, "pin_memory": False}
    assert loader_options(E2ECfg(num_workers=8), "cuda") == {"num_workers": 8, "pin_memory": True}
    assert loader_options(E2ECfg(num_workers=8, pin_memory=False), "cuda")["pin_memory"] is False
    assert loader_options(E2ECfg(num_workers=4, prefetch_factor=6), "cuda")["prefetch_factor"] == 6
    assert "prefetch_factor" not in loader_options(E2ECfg(num_workers=0, prefetch_factor=6), "cuda")


@pytest.mark.parametrize("optimizer", ["adamw", "adam", "sgd"])
def test_fused_kernels_on_cuda_by_default_and_the_same_update(optimizer):
    model = torch.nn.Linear(6, 3)
    cfg = E2ECfg(optimizer=optimizer, lr=0.1)
    assert not build_optimizer(model.parameters(), cfg, "cpu").defaults.get("fused")
    fused_model = copy.deepcopy(model)
    plain = build_optimizer(model.parameters(), cfg, "cpu")
    fused = build_optimizer(fused_model.parameters(), E2ECfg(optimizer=optimizer, lr=0.1, fused_optimizer=True), "cpu")
    assert fused.defaults["fused"] is True  # the kernel CUDA gets by default (torch has it on the CPU too)
    x = torch.randn(5, 6, generator=torch.Generator().manual_seed(0))
    for m, opt in ((model, plain), (fused_model, fused)):
        for _ in range(3):
            opt.zero_grad()
            m(x).square().mean().backward()
            opt.step()
    for a, b in zip(model.parameters(), fused_model.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_channels_last_training_matches_the_default_layout(tmp_path):
    torch.set_num_threads(1)
    cfg = dict(epochs=1, max_steps=3, batch_size=8, lr=1e-3, warmup_steps=1, num_workers=0, log_every_steps=100)
    model = worker.tiny_model()
    a = finetune_e2e(copy.deepcopy(model), worker.tiny_train_set(), E2ECfg(**cfg), tmp_path / "a", seed=0).model
    b = finetune_e2e(copy.deepcopy(model), worker.tiny_train_set(), E2ECfg(**cfg, channels_last=True),
                     tmp_path / "b", seed=0).model
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.allclose(va, vb, atol=1e-5), k
