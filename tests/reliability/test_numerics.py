"""NaN and inf: in the weights being interpolated or merged (from a checkpoint on disk) and in the losses.

Interpolating a NaN or inf tensor would silently give a sweep of broken models whose accuracy is computed anyway
(``argmax`` of NaN logits is class 0). Every entry point that mixes weights refuses them with
:class:`NumericsError` naming the model and the tensor; the training loops stop at the first non-finite loss.
The E2E loop's NaN-loss test, which also checks that the last good checkpoint is kept, is
``tests/unit/test_finetune_e2e.py::test_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint``.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from wiseft.checkpoint import load_classifier, save_classifier
from wiseft.errors import NumericsError
from wiseft.interpolation import check_compatible, clone_state_dict, interpolate_state_dicts

BAD = [float("nan"), float("inf"), float("-inf")]


@pytest.mark.parametrize("bad", BAD)
@pytest.mark.parametrize("which", [0, 1])
def test_a_checkpoint_with_non_finite_weights_is_not_interpolated(make_classifier, tmp_path, bad, which):
    from wiseft.evaluation import lerp_settings

    models = [make_classifier(seed=0), make_classifier(seed=1)]
    with torch.no_grad():
        models[which].image_encoder.proj[2, 3] = bad
    for i, m in enumerate(models):
        save_classifier(m, tmp_path / f"m{i}", {})
    theta = [clone_state_dict(load_classifier(tmp_path / f"m{i}")[0]) for i in range(2)]
    word = "NaN" if bad != bad else "inf"
    with pytest.raises(NumericsError, match=rf"θ{which}: tensor 'image_encoder.proj' contains {word}"):
        lerp_settings(theta[0], theta[1], [0.0, 0.5, 1.0])
    with pytest.raises(NumericsError, match="image_encoder.proj"):
        interpolate_state_dicts(theta[0], theta[1], 0.5)


@pytest.mark.parametrize("bad", BAD)
def test_fisher_merging_refuses_non_finite_weights_and_fishers(make_classifier, bad):
    from wiseft.fisher import fisher_merge, fisher_settings

    theta0, theta1 = clone_state_dict(make_classifier(seed=0)), clone_state_dict(make_classifier(seed=1))
    fisher = {k: torch.ones_like(v) for k, v in theta0.items() if v.is_floating_point()}
    broken = {k: v.clone() for k, v in fisher.items()}
    broken["head.weight"][0, 0] = bad
    with pytest.raises(NumericsError, match="Fisher of θ1: tensor 'head.weight'"):
        fisher_settings(theta0, theta1, fisher, broken, [0.5])
    with pytest.raises(NumericsError, match="Fisher of model 0: tensor 'head.weight'"):
        fisher_merge([theta0, theta1], [broken, fisher], [0.5, 0.5])
    theta1["head.bias"][1] = bad
    with pytest.raises(NumericsError, match="θ1: tensor 'head.bias'"):
        fisher_settings(theta0, theta1, fisher, fisher, [0.5])


@settings(max_examples=60, deadline=None)
@given(shapes=st.lists(st.tuples(st.integers(1, 4), st.integers(1, 4)), min_size=1, max_size=4),
       where=st.tuples(st.integers(0, 3), st.integers(0, 15), st.sampled_from(BAD), st.integers(0, 1)),
       dtype=st.sampled_from([torch.float32, torch.float16, torch.bfloat16, torch.float64]))
def test_any_non_finite_value_is_found_and_named(shapes, where, dtype):
    key_i, pos, bad, side = where
    sds = [{f"w{i}": torch.randn(s).to(dtype) for i, s in enumerate(shapes)} for _ in range(2)]
    key = f"w{key_i % len(shapes)}"
    flat = sds[side][key].view(-1)
    flat[pos % flat.numel()] = bad
    with pytest.raises(NumericsError, match=rf"θ{side}: tensor '{key}'"):
        check_compatible(sds[0], sds[1])


@pytest.mark.parametrize("bad", BAD)
def test_linear_classifier_stops_at_a_non_finite_loss(bad):
    from wiseft.finetune import LCHparams, train_linear

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 8, generator=g), torch.randint(0, 3, (32,), generator=g)
    x[5, 2] = bad
    with pytest.raises(NumericsError, match="linear-classifier loss is .* at step 0.*lower the learning rate"):
        train_linear(x, y, LCHparams(batch_size=64, epochs=2), num_classes=3, normalize=False)


def test_linear_classifier_divergence_is_caught():
    from wiseft.finetune import LCHparams, train_linear

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 8, generator=g) * 1e30, torch.randint(0, 3, (64,), generator=g)
    with pytest.raises(NumericsError, match="linear-classifier loss"):
        train_linear(x, y, LCHparams(lr=1e30, batch_size=16, epochs=5), num_classes=3, normalize=False)
