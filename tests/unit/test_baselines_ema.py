"""Weight EMA (paper Figs. 11, 12): debiasing, the zero-shot-biased start, integer buffers, resume."""

from __future__ import annotations

import pytest
import torch

from wiseft.baselines.ema import WeightEMA
from wiseft.errors import CheckpointError, IncompatibleStateError, WiseftError


def _close(actual: torch.Tensor, expected, tol: float = 1e-6) -> None:
    """allclose with a message; cheaper than torch.testing.assert_close, whose first call costs ~2 s of imports."""
    expected = torch.as_tensor(expected, dtype=actual.dtype)
    assert actual.shape == expected.shape and torch.allclose(actual, expected, rtol=tol, atol=tol), (actual, expected)


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(3, 2)
        self.register_buffer("steps", torch.zeros((), dtype=torch.int64))


def _state(value: float, steps: int = 0) -> dict[str, torch.Tensor]:
    return {"w": torch.full((2, 3), value), "b": torch.full((2,), -value), "steps": torch.tensor(steps)}


@pytest.mark.parametrize("decay", [0.5, 0.9, 0.999, 0.999999])
def test_debiased_ema_of_constant_weights_is_exact_after_any_step(decay):
    ema = WeightEMA([decay])
    state = {"w": torch.randn(4, 5), "b": torch.randn(5)}
    for _ in range(7):
        ema.update(state)
        out = ema.state_dict_for(decay)
        assert torch.equal(out["w"], state["w"]) and torch.equal(out["b"], state["b"])


def test_three_step_hand_example_debiased_and_biased():
    # theta_1..3 = 1, 2, 4 and beta = 0.5:
    # debiased: mu = 0.5, 1.25, 2.625; divided by 1 - 0.5^3 = 0.875 -> 3.0
    # biased from theta_0 = 10: mu = 5.5, 3.75, 3.875
    deb = WeightEMA([0.5, 0.9], mode="debiased")
    bia = WeightEMA([0.5], mode="biased", init_state=_state(10.0))
    for v in (1.0, 2.0, 4.0):
        deb.update(_state(v))
        bia.update(_state(v))
    assert deb.num_updates == 3
    _close(deb.state_dict_for(0.5)["w"], torch.full((2, 3), 3.0))
    _close(bia.state_dict_for(0.5)["w"], torch.full((2, 3), 3.875))
    _close(bia.state_dict_for(0.5)["b"], torch.full((2,), -3.875))
    # beta = 0.9 by the textbook recursion, for the second buffer of the grid
    mu = 0.0
    for v in (1.0, 2.0, 4.0):
        mu = 0.9 * mu + 0.1 * v
    _close(deb.state_dict_for(0.9)["w"], torch.full((2, 3), mu / (1 - 0.9**3)))


def test_biased_ema_starts_at_zero_shot_and_debiased_is_undefined_before_updates():
    bia = WeightEMA([0.99], mode="biased", init_state=_state(7.0))
    assert torch.equal(bia.state_dict_for(0.99)["w"], torch.full((2, 3), 7.0))
    with pytest.raises(WiseftError, match="before the first update"):
        WeightEMA([0.99]).state_dict_for(0.99)
    with pytest.raises(WiseftError, match="init_state"):
        WeightEMA([0.99], mode="biased")


def test_integer_buffers_are_copied_and_dtypes_kept():
    model = Tiny().to(torch.float64)
    ema = WeightEMA([0.9, 0.99])
    for step in range(1, 4):
        model.steps.fill_(step)
        with torch.no_grad():
            model.lin.weight.add_(1.0)
        ema.update(model)
    out = ema.state_dict_for(0.99)
    assert out["steps"].dtype == torch.int64 and int(out["steps"]) == 3
    assert out["lin.weight"].dtype == torch.float64
    model.load_state_dict(out)  # keys and shapes fit the model


def test_bad_decays_and_state_changes_are_refused():
    for decays in ([], [1.0], [0.0], [0.9, 0.9]):
        with pytest.raises(WiseftError):
            WeightEMA(decays)
    ema = WeightEMA([0.9])
    ema.update(_state(1.0))
    with pytest.raises(IncompatibleStateError, match="keys"):
        ema.update({"w": torch.zeros(2, 3)})
    with pytest.raises(IncompatibleStateError, match="shape"):
        ema.update({"w": torch.zeros(3, 3), "b": torch.zeros(2), "steps": torch.tensor(0)})
    with pytest.raises(WiseftError, match="averaged decays"):
        ema.state_dict_for(0.5)


@pytest.mark.parametrize("mode", ["debiased", "biased"])
def test_save_and_resume_continue_the_averages_exactly(tmp_path, mode):
    init = _state(3.0)
    steps = [_state(float(v), steps=i) for i, v in enumerate([1.0, -2.0, 5.0, 0.5, 4.0])]
    straight = WeightEMA([0.9, 0.99], mode=mode, init_state=init)
    for s in steps:
        straight.update(s)

    first = WeightEMA([0.9, 0.99], mode=mode, init_state=init)
    for s in steps[:3]:
        first.update(s)
    path = tmp_path / "ema.safetensors"
    first.save(path)
    assert path.read_bytes()[:8] and not list(tmp_path.glob(".*.tmp"))  # written atomically, no leftovers
    resumed = WeightEMA([0.9, 0.99], mode=mode, init_state=init)
    resumed.load(path)
    assert resumed.num_updates == 3
    for s in steps[3:]:
        resumed.update(s)
    for d in (0.9, 0.99):
        a, b = straight.state_dict_for(d), resumed.state_dict_for(d)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_with_another_grid_or_a_broken_file_fails_clearly(tmp_path):
    ema = WeightEMA([0.9])
    ema.update(_state(1.0))
    path = tmp_path / "ema.safetensors"
    ema.save(path)
    with pytest.raises(CheckpointError, match="decays"):
        WeightEMA([0.99]).load(path)
    with pytest.raises(CheckpointError, match="mode"):
        WeightEMA([0.9], mode="biased", init_state=_state(0.0)).load(path)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="cannot read"):
        WeightEMA([0.9]).load(bad)
