"""``wiseft plan``: model FLOPs from the architecture, the cost constants' provenance, and the profiles' runtimes."""

from __future__ import annotations

import pytest

from wiseft.cli import main
from wiseft.errors import ProfileError
from wiseft.plan import format_plan, load_constants, make_plan, model_gflops, parse_hours, stated_hardware
from wiseft.profile import list_profiles, load_profile


@pytest.mark.parametrize("name,low,high", [("ViT-B-32", 8.4, 9.2), ("ViT-B-16", 34.0, 36.0),
                                           ("ViT-L-14-336", 370.0, 395.0)])
def test_image_gflops_follow_from_the_open_clip_config(name, low, high):
    # published forward costs: 4.4, 17.6 and 191 GMACs (2 FLOPs per multiply-add)
    assert low < model_gflops(name)["image"] < high


def test_a_twin_costs_a_tiny_fraction_of_its_model():
    assert model_gflops("rehearsal-ViT-B-16")["image"] < model_gflops("ViT-B-16")["image"] / 100


def _leaves(node, path=()):
    if isinstance(node, dict) and "value" in node:
        yield path, node
    elif isinstance(node, dict):
        for k, v in node.items():
            if not k.startswith("_"):
                yield from _leaves(v, (*path, k))


def test_every_constant_has_a_value_a_unit_and_a_source_saying_measured_or_assumed():
    leaves = list(_leaves(load_constants()))
    assert len(leaves) > 15
    for path, c in leaves:
        assert isinstance(c["value"], (int, float)) and c["unit"], path
        assert c["source"].split(":")[0] in ("measured", "assumed") and len(c["source"]) > 15, path
    assert any(c["source"].startswith("measured: benchmarks/run.py") for _, c in leaves)


def test_the_imagenet_plan_has_every_step_and_scales_with_the_gpus():
    profile = load_profile("imagenet-vitb16")
    eight, sixteen = make_plan(profile, 8, "a100"), make_plan(profile, 16, "a100")
    steps = {s.step: s for s in eight.steps}
    assert list(steps) == ["data", "zeroshot", "finetune", "interpolate", "figures"]
    # 10 epochs of 1,281,167 images, three passes each (forward and a backward of twice its cost)
    assert steps["finetune"].gflops == pytest.approx((12_811_670 * 3 + 1_281_167) * eight.gflops_per_image,
                                                     rel=0.05)
    assert steps["finetune"].disk_gb > 0 and 0 < steps["finetune"].peak_gib < 80
    ft16 = {s.step: s for s in sixteen.steps}["finetune"]
    assert ft16.seconds == pytest.approx(steps["finetune"].seconds / 2, rel=0.05)
    assert make_plan(profile, 8, "h100").seconds < eight.seconds
    text = format_plan(eight)
    assert "| finetune | " in text and "on 8× A100" in text and "assumed (" in text


def test_an_unknown_device_type_is_one_clear_line(capsys):
    with pytest.raises(ProfileError, match="unknown; known: a100"):
        make_plan(load_profile("mini"), 1, "tpu")
    assert main(["plan", "--profile", "mini", "--gpu-type", "tpu"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.parametrize("text,hours", [("≈10 h fine-tuning on 8 GPUs + ≈2 h evaluation", 12.0),
                                        ("≈2–3 days fine-tuning + ≈6 h evaluation", 66.0),
                                        ("≈9 min (≈10 min cold)", 0.15), ("≈1½ days on one A100, ≈6 h on 8", 36.0),
                                        ("soon", None)])
def test_parse_hours(text, hours):
    assert parse_hours(text) == (pytest.approx(hours) if hours is not None else None)


@pytest.mark.parametrize("name", [n for n, _ in list_profiles()])
def test_each_profile_states_the_runtime_its_plan_predicts_within_a_factor_of_three(name):
    profile = load_profile(name)
    gpus, kind = stated_hardware(profile)
    planned = make_plan(profile, gpus, kind).seconds / 3600
    stated = parse_hours(profile.expected_runtime)
    assert stated is not None, f"{name}: expected_runtime {profile.expected_runtime!r} names no duration"
    assert planned / 3 <= stated <= planned * 3, (
        f"{name}: expected_runtime says {stated:.2g} h, `wiseft plan --gpus {gpus} --gpu-type {kind}` {planned:.2g} h")
