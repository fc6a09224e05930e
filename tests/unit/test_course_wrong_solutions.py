"""The course's checks against real wrong solutions, on a small classifier and two small evaluation sets.

θ₀ and θ₁ are two random small classifiers (an encoder and a head); the reference set is labelled by θ₁ (the
"fine-tuned" model is right there) and the shift by θ₀, so the sweep really moves with α. The students' code is what students write: a
reversed α, only the head mixed, the endpoints' accuracies averaged, θ_α never loaded. Each must be flagged at the
first printed line with the hint that names it, and a check prints at most 2 + MAX_DETAIL lines.
"""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from wiseft.course import MAX_DETAIL, accuracy, check_interpolation, check_sweep
from wiseft.datasets.base import EvalSet, Protocol
from wiseft.interpolation import interpolate_state_dicts

ALPHAS = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]


def right(theta_0, theta_1, alpha):
    return {k: (1 - alpha) * theta_0[k] + alpha * theta_1[k] for k in theta_0}


def reversed_alpha(theta_0, theta_1, alpha):
    return {k: alpha * theta_0[k] + (1 - alpha) * theta_1[k] for k in theta_0}


def head_only(theta_0, theta_1, alpha):
    return {k: (1 - alpha) * theta_0[k] + alpha * theta_1[k] if k.startswith("head.") else theta_0[k]
            for k in theta_0}


def encoder_only(theta_0, theta_1, alpha):
    return {k: theta_1[k] if k.startswith("head.") else (1 - alpha) * theta_0[k] + alpha * theta_1[k]
            for k in theta_0}


class Net(torch.nn.Module):
    """An image encoder and a classification head, named as in wiseft's ImageClassifier."""

    def __init__(self, seed: int):
        super().__init__()
        torch.manual_seed(seed)
        self.image_encoder = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 32), torch.nn.Tanh())
        self.head = torch.nn.Linear(32, 5)

    def forward(self, x):
        return self.head(self.image_encoder(x))


@pytest.fixture(scope="module")
def world():
    m0, m1, model = Net(0).eval(), Net(1).eval(), Net(0).eval()

    def labelled(name, role, teacher, seed):
        images = torch.randn(400, 3, 4, 4, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            labels = teacher(images).argmax(-1)
        return EvalSet(name, torch.utils.data.TensorDataset(images, labels), [str(i) for i in range(5)], Protocol(),
                       role=role)

    sets = [labelled("toy", "reference", m1, 2), labelled("toy-dark", "shift", m0, 3)]
    theta_0 = {k: v.clone() for k, v in m0.state_dict().items()}
    theta_1 = {k: v.clone() for k, v in m1.state_dict().items()}

    def sweep(mix, load=True):
        out = {}
        for a in ALPHAS:
            if load:
                model.load_state_dict(mix(theta_0, theta_1, a))
            out[a] = {s.name: accuracy(model, s) for s in sets}
        model.load_state_dict(theta_0)
        return out

    ref = sweep(lambda t0, t1, a: interpolate_state_dicts(t0, t1, a))
    reference = pd.DataFrame([{"alpha": a, "dataset": s.name, "role": s.role, "value": v[s.name]}
                              for a, v in ref.items() for s in sets])
    return dict(theta_0=theta_0, theta_1=theta_1, sweep=sweep, reference=reference, ref=ref)


def first_line(check):
    lines = str(check).splitlines()
    assert len(lines) <= 2 + MAX_DETAIL, str(check)
    return lines[0]


def test_the_right_solution_passes_both_checks(world):
    assert check_interpolation(right, world["theta_0"], world["theta_1"]).ok
    check = check_sweep(world["sweep"](right), world["reference"])
    assert check.ok and str(check).startswith("All 12 numbers match")


def test_the_toy_sweep_moves_with_alpha(world):
    """Otherwise the wrong solutions below would not be told apart by their numbers."""
    ref = world["ref"]
    assert ref[1.0]["toy"] == 1.0 and ref[0.0]["toy-dark"] == 1.0
    assert ref[0.0]["toy"] < 0.6 and ref[1.0]["toy-dark"] < 0.6


@pytest.mark.parametrize("alphas", [(0.0, 0.25, 0.8, 1.0), (0.25,), (0.8,)])
def test_task1_flags_a_reversed_alpha_at_asymmetric_alphas(world, alphas):
    check = check_interpolation(reversed_alpha, world["theta_0"], world["theta_1"], alphas=alphas)
    assert not check.ok
    assert first_line(check).startswith("Hint: your θ_α equals wiseft's at 1 − α: the mixing is reversed")


def test_task1_names_a_head_only_mix_and_its_converse(world):
    check = check_interpolation(head_only, world["theta_0"], world["theta_1"])
    assert not check.ok
    assert first_line(check).startswith("Hint: you mixed only the classification head (2 tensors)"), str(check)
    assert "(image_encoder.*) are θ₀'s unchanged" in first_line(check)
    converse = check_interpolation(encoder_only, world["theta_0"], world["theta_1"])
    assert first_line(converse).startswith("Hint: you mixed only image_encoder.*")
    assert "(head.*) are θ₁'s" in str(converse)


def test_task1_flags_unmixed_weights_in_place_changes_and_a_dict_instead_of_a_function(world):
    theta_0, theta_1 = world["theta_0"], world["theta_1"]
    assert "θ₀ unchanged at every tensor" in first_line(check_interpolation(lambda t0, t1, a: t0, theta_0, theta_1))
    copies = ({k: v.clone() for k, v in theta_0.items()}, {k: v.clone() for k, v in theta_1.items()})

    def in_place(t0, t1, a):
        return {k: t0[k].mul_(1 - a).add_(a * t1[k]) for k in t0}

    assert "changed theta_0 or theta_1 in place" in first_line(check_interpolation(in_place, *copies))
    check = check_interpolation(right(theta_0, theta_1, 0.5), theta_0, theta_1)
    assert not check.ok and "give θ_α at every α = 0, 0.25, 0.8, 1, as a dict {alpha: state dict}" in first_line(check)
    assert "no θ_α at α = 0.25, 0.8" in str(check_interpolation({0.0: theta_0, 1.0: theta_1}, theta_0, theta_1))


def test_task1_accepts_theta_by_alpha_as_the_notebook_hands_it_in(world):
    theta_0, theta_1 = world["theta_0"], world["theta_1"]
    alphas = (0.0, 0.25, 0.8, 1.0)
    assert check_interpolation({a: right(theta_0, theta_1, a) for a in alphas}, theta_0, theta_1).ok
    check = check_interpolation({a: reversed_alpha(theta_0, theta_1, a) for a in alphas}, theta_0, theta_1)
    assert "the mixing is reversed" in first_line(check)
    check = check_interpolation({a: head_only(theta_0, theta_1, a) for a in alphas}, theta_0, theta_1)
    assert first_line(check).startswith("Hint: you mixed only the classification head")


@pytest.mark.parametrize("mistake, hint", [
    ("reversed", "Hint: your numbers equal wiseft's at 1 − α: the mixing is reversed"),
    ("head_only", "Hint: α = 0 is right but α = 1 is not the fine-tuned model"),
    ("averaged", "Hint: your numbers lie on the straight line between the endpoints' accuracies"),
    ("not_loaded", "Hint: your accuracy does not change with α"),
])
def test_task2_names_the_mistake_first_in_at_most_seven_lines(world, mistake, hint):
    sweep = world["sweep"]
    if mistake == "averaged":
        ends = sweep(right)
        student = {a: {d: (1 - a) * ends[0.0][d] + a * ends[1.0][d] for d in ends[0.0]} for a in ALPHAS}
    else:
        student = sweep(head_only if mistake == "head_only" else reversed_alpha, load=mistake != "not_loaded")
    check = check_sweep(student, world["reference"])
    assert not check.ok
    assert first_line(check).startswith(hint), str(check)
    assert "numbers differ from wiseft's" in str(check).splitlines()[1]
