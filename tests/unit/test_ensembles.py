"""Output-space ensembles: logit mix, probability mix, seeded per-example random interpolation."""

from __future__ import annotations

import pytest
import torch

from wiseft.ensembles import (OutputSetting, example_uniforms, mix_logits, mix_probabilities, output_settings,
                              random_interpolation)
from wiseft.errors import WiseftError


def _logits():
    g = torch.Generator().manual_seed(0)
    return torch.randn(200, 6, generator=g) * 3, torch.randn(200, 6, generator=g) * 3


def test_logit_mix_exact_at_endpoints():
    l0, l1 = _logits()
    assert torch.equal(mix_logits(l0, l1, 0.0), l0) and torch.equal(mix_logits(l0, l1, 1.0), l1)
    assert torch.allclose(mix_logits(l0, l1, 0.3), 0.7 * l0 + 0.3 * l1, atol=1e-6)


@pytest.mark.parametrize("alpha", [0.0, 0.25, 0.5, 1.0])
def test_probability_mix_is_log_of_mixed_softmax(alpha):
    l0, l1 = _logits()
    expected = torch.log((1 - alpha) * torch.softmax(l0, -1) + alpha * torch.softmax(l1, -1))
    got = mix_probabilities(l0, l1, alpha)
    assert torch.allclose(got, expected, atol=1e-5)
    assert torch.allclose(got.exp().sum(-1), torch.ones(200), atol=1e-5)


def test_random_interpolation_is_seeded_per_example():
    l0, l1 = _logits()
    u = example_uniforms(200, seed=4)
    assert torch.equal(u, example_uniforms(200, seed=4)) and not torch.equal(u, example_uniforms(200, seed=5))
    assert torch.equal(random_interpolation(l0, l1, 0.0, u), l0)
    assert torch.equal(random_interpolation(l0, l1, 1.0, u), l1)
    mixed = random_interpolation(l0, l1, 0.3, u)
    picked_one = (mixed == l1).all(-1)
    assert torch.equal(picked_one, u < 0.3)
    assert 0.2 < picked_one.float().mean() < 0.4
    # chunking does not change the draw: examples 50..99 on their own get the same choices
    setting = OutputSetting("r", "random_interp", 0.3, ("a", "b"), seed=4)
    part = setting.combine(l0[50:100], l1[50:100], torch.arange(50, 100), num_examples=200)
    assert torch.equal(part, mixed[50:100])


def test_output_setting_validation_and_factory():
    with pytest.raises(WiseftError, match="unknown method"):
        OutputSetting("x", "median", 0.5, ("a", "b"))
    with pytest.raises(WiseftError, match="outside"):
        OutputSetting("x", "ose", 2.0, ("a", "b"))
    made = output_settings([0.0, 0.5], sources=("zs", "ft"), method="ose_prob", mode="lc")
    assert [s.label for s in made] == ["ose_prob α=0", "ose_prob α=0.5"]
    assert all(s.sources == ("zs", "ft") and s.mode == "lc" for s in made)
