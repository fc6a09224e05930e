"""WiSE-FT weight interpolation: compatibility checks, exact endpoints, in-place lerp, linear-head equivalence."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from wiseft.ensembles import mix_logits
from wiseft.errors import IncompatibleStateError, NumericsError, WiseftError
from wiseft.interpolation import (check_compatible, clone_state_dict, differing_keys, interpolate_state_dicts,
                                  lerp_into_)


def _pair():
    g = torch.Generator().manual_seed(0)
    sd0 = {"w": torch.randn(3, 4, generator=g), "b": torch.randn(3, generator=g), "count": torch.tensor([7])}
    sd1 = {"w": torch.randn(3, 4, generator=g), "b": torch.randn(3, generator=g), "count": torch.tensor([7])}
    return sd0, sd1


@pytest.mark.parametrize("mutate, message", [
    (lambda sd: sd.pop("b"), "'b' is in θ0 but not in θ1"),
    (lambda sd: sd.update(extra=torch.zeros(1)), "'extra' is in θ1 but not in θ0"),
    (lambda sd: sd.update(w=torch.zeros(3, 5)), "'w': shape"),
    (lambda sd: sd.update(w=torch.zeros(3, 4, dtype=torch.float16)), "'w': dtype"),
    (lambda sd: sd.update(count=torch.tensor([8])), "'count': integer buffer differs"),
])
def test_incompatible_state_dicts_name_the_key(mutate, message):
    sd0, sd1 = _pair()
    mutate(sd1)
    with pytest.raises(IncompatibleStateError, match=message):
        check_compatible(sd0, sd1)


def test_nan_and_inf_are_refused_naming_the_key():
    sd0, sd1 = _pair()
    sd1["b"][1] = float("nan")
    with pytest.raises(NumericsError, match="'b' contains NaN"):
        check_compatible(sd0, sd1)
    sd1["b"][1] = float("inf")
    with pytest.raises(NumericsError, match="'b' contains inf"):
        interpolate_state_dicts(sd0, sd1, 0.5)


def test_endpoints_exact_and_integers_copied():
    sd0, sd1 = _pair()
    assert all(torch.equal(interpolate_state_dicts(sd0, sd1, 0.0)[k], sd0[k]) for k in sd0)
    assert all(torch.equal(interpolate_state_dicts(sd0, sd1, 1.0)[k], sd1[k]) for k in sd0)
    mid = interpolate_state_dicts(sd0, sd1, 0.25)
    assert torch.allclose(mid["w"], 0.75 * sd0["w"] + 0.25 * sd1["w"], atol=1e-6)
    assert mid["count"].dtype == torch.int64 and torch.equal(mid["count"], sd0["count"])
    with pytest.raises(WiseftError, match="outside"):
        interpolate_state_dicts(sd0, sd1, 1.5)


@settings(max_examples=25, deadline=None)
@given(alpha=st.floats(0.0, 1.0))
def test_lerp_stays_between_endpoints(alpha):
    sd0, sd1 = _pair()
    mixed = interpolate_state_dicts(sd0, sd1, alpha)["w"]
    low, high = torch.minimum(sd0["w"], sd1["w"]), torch.maximum(sd0["w"], sd1["w"])
    assert bool(((mixed >= low - 1e-6) & (mixed <= high + 1e-6)).all())


def test_lerp_into_writes_in_place_and_reproduces_endpoints(make_classifier):
    model0, model1 = make_classifier(seed=0), make_classifier(seed=1)
    theta0, theta1 = clone_state_dict(model0), clone_state_dict(model1)
    check_compatible(theta0, theta1)
    images = torch.randn(5, 3, 32, 32)
    with torch.no_grad():
        ref0, ref1 = model0(images), model1(images)
    work = make_classifier(seed=2)
    pointers = {k: v.data_ptr() for k, v in work.state_dict().items()}
    with torch.no_grad():
        assert torch.equal(lerp_into_(work, theta0, theta1, 0.0)(images), ref0)
        assert torch.equal(lerp_into_(work, theta0, theta1, 1.0)(images), ref1)
        lerp_into_(work, theta0, theta1, 0.3)
    expected = interpolate_state_dicts(theta0, theta1, 0.3)
    assert all(torch.equal(work.state_dict()[k], expected[k]) for k in expected)
    assert pointers == {k: v.data_ptr() for k, v in work.state_dict().items()}  # no new tensors


def test_lerp_into_missing_key(make_classifier):
    work = make_classifier()
    theta = clone_state_dict(work)
    theta.pop("head.bias")
    with pytest.raises(IncompatibleStateError, match="head.bias"):
        lerp_into_(work, theta, theta, 0.5)


def test_linear_head_weight_space_equals_output_space(make_classifier):
    """Paper Eq. 1: for a linear classifier on shared features, WiSE-FT is the logit ensemble."""
    zeroshot = make_classifier(seed=0)
    finetuned = make_classifier(seed=0)
    with torch.no_grad():
        finetuned.head.weight.add_(torch.randn_like(finetuned.head.weight))
        finetuned.head.bias.add_(torch.randn_like(finetuned.head.bias))
    theta0, theta1 = clone_state_dict(zeroshot), clone_state_dict(finetuned)
    assert set(differing_keys(theta0, theta1)) == {"head.weight", "head.bias"}
    images = torch.randn(8, 3, 32, 32)
    work = make_classifier(seed=5)
    with torch.no_grad():
        l0, l1 = zeroshot(images), finetuned(images)
        for alpha in (0.0, 0.2, 0.5, 0.9, 1.0):
            weight_space = lerp_into_(work, theta0, theta1, alpha)(images)
            assert torch.allclose(weight_space, mix_logits(l0, l1, alpha), atol=1e-5), alpha
