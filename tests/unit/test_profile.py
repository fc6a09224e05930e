"""Profile schema: validation errors name the file, key and value; --set overrides; extends; suites."""

from __future__ import annotations

import math

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wiseft.errors import ProfileError
from wiseft.profile import (
    Profile,
    apply_overrides,
    list_profiles,
    load_profile,
    profile_from_dict,
    profile_to_dict,
)

PACKAGED = [name for name, _ in list_profiles()]
BASE = {"name": "t", "model": {"name": "ViT-B-32", "pretrained": None}, "data": {"reference": "imagenet"}}


def build(raw):
    return profile_from_dict(raw, source="t.yaml", check_references=False)


def test_every_packaged_profile_loads_with_a_description():
    assert {"mini", "imagenet-vitb16", "imagenet-vitl14-336", "cifar10-vitb32", "wilds-iwildcam", "wilds-fmow",
            "transfer"} <= set(PACKAGED)
    for name, description in list_profiles():
        profile = load_profile(name, check_references=False)
        assert isinstance(profile, Profile) and profile.name == name
        assert description and profile.hardware and profile.expected_runtime


def test_paper_defaults_of_the_imagenet_profiles():
    e2e = load_profile("imagenet-vitb16", check_references=False).finetune.e2e
    assert (e2e.lr, e2e.weight_decay, e2e.warmup_steps, e2e.batch_size, e2e.epochs, e2e.grad_clip) == (
        3e-5, 0.1, 500, 512, 10, 1.0)
    assert e2e.betas == [0.9, 0.999] and e2e.eps == 1e-8 and e2e.crop_scale == [0.9, 1.0]


def test_alpha_grid_has_the_papers_21_values():
    grid = build(BASE).interpolation.alpha_grid()
    assert len(grid) == 21 and grid[0] == 0.0 and grid[-1] == 1.0 and grid[7] == 0.35


@pytest.mark.parametrize(
    "patch, key, fragment",
    [
        ({"finetune": {"e2e": {"lrr": 1}}}, "finetune.e2e.lrr", "did you mean 'lr'"),
        ({"bogus": 1}, "bogus", "unknown key"),
        ({"seed": "zero"}, "seed", "expected an integer"),
        ({"seed": True}, "seed", "expected an integer"),
        ({"finetune": {"e2e": {"lr": "fast"}}}, "finetune.e2e.lr", "expected a number"),
        ({"interpolation": {"alphas": [0.0, 1.5]}}, "interpolation.alphas", "[0, 1]"),
        ({"interpolation": {"keep": [-0.1]}}, "interpolation.keep", "[0, 1]"),
        ({"interpolation": {"alpha_step": 0}}, "interpolation.alpha_step", "divides 1"),
        ({"finetune": {"e2e": {"precision": "fp64"}}}, "finetune.e2e.precision", "one of 'fp32'"),
        ({"finetune": {"e2e": {"lr": -1.0}}}, "finetune.e2e.lr", "positive"),
        ({"finetune": {"e2e": {"lr": float("nan")}}}, "finetune.e2e.lr", "positive"),
        ({"finetune": {"lc": {"heldout_fraction": 1.0}}}, "finetune.lc.heldout_fraction", "(0, 1)"),
        ({"finetune": {"lc": {"fixed": {"learning_rate": 1}}}}, "finetune.lc.fixed.learning_rate", "unknown key"),
        ({"finetune": {"variants": [{"lr": 1e-5}]}}, "finetune.variants[0].name", "needs a name"),
        ({"finetune": {"variants": [{"name": "v", "epochz": 1}]}}, "finetune.variants[0].epochz", "unknown key"),
        ({"data": {"shifts": "imagenet-a"}}, "data.shifts", "a list of a string"),
        ({"model": "ViT-B-32"}, "model", "expected a mapping"),
        ({"baselines": {"ema_decays": [1.0]}}, "baselines.ema_decays", "(0, 1)"),
        ({"eval": {"memory_gb": 0}}, "eval.memory_gb", "positive"),
        ({"eval": {"memory_gb": float("inf")}}, "eval.memory_gb", "positive"),
        ({"eval": {"decode": "gpu"}}, "eval.decode", "one of 'cpu'"),
        ({"finetune": {"e2e": {"prefetch_factor": 0}}}, "finetune.e2e.prefetch_factor", "positive"),
    ],
)
def test_validation_errors_name_file_key_and_value(patch, key, fragment):
    raw = _deep(BASE, patch)
    with pytest.raises(ProfileError) as info:
        build(raw)
    message = str(info.value)
    assert message.startswith("t.yaml: ")
    assert key in message and fragment in message


def _deep(base, patch):
    out = yaml.safe_load(yaml.safe_dump(base))
    for k, v in patch.items():
        out[k] = _deep(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def test_missing_required_key_is_named():
    with pytest.raises(ProfileError, match="missing required key 'data.reference'"):
        build({**BASE, "data": {}})


def test_yaml_style_exponent_strings_are_numbers():
    profile = build(_deep(BASE, {"finetune": {"e2e": {"lr": "3e-5"}}}))
    assert profile.finetune.e2e.lr == pytest.approx(3e-5)


def test_set_overrides_any_key_and_parses_yaml_values():
    profile = load_profile("mini", overrides=["finetune.e2e.lr=1e-4", "interpolation.alphas=[0, 0.5, 1]",
                                              "data.shifts=[world-fonts]", "seed=7"], check_references=False)
    assert profile.finetune.e2e.lr == pytest.approx(1e-4)
    assert profile.interpolation.alpha_grid() == [0.0, 0.5, 1.0]
    assert profile.data.shifts == ["world-fonts"] and profile.seed == 7
    assert "--set" in profile.source


@pytest.mark.parametrize("override, fragment", [
    ("finetune.e2e.lr", "expected key=value"),
    ("=3", "empty key"),
    ("seed.x=1", "'seed' is not a mapping"),
    ("interpolation.alphas=[0, 2]", "interpolation.alphas"),
    ("finetune.e2e.lr=[", "not valid YAML"),
])
def test_bad_overrides_are_named(override, fragment):
    with pytest.raises(ProfileError) as info:
        load_profile("mini", overrides=[override], check_references=False)
    assert fragment in str(info.value)


def test_user_profile_extends_a_packaged_one(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("extends: imagenet-vitb16\nfinetune:\n  e2e:\n    lr: 1.0e-5\n")
    profile = load_profile(path, check_references=False)
    assert profile.name == "mine"  # a derived profile is its own run
    assert profile.finetune.e2e.lr == pytest.approx(1e-5)
    assert profile.finetune.e2e.warmup_steps == 500  # inherited
    assert profile.model.name == "ViT-B-16"


def test_circular_extends_is_refused(tmp_path):
    (tmp_path / "a.yaml").write_text(f"extends: {tmp_path / 'b.yaml'}\n")
    (tmp_path / "b.yaml").write_text(f"extends: {tmp_path / 'a.yaml'}\n")
    with pytest.raises(ProfileError, match="circular"):
        load_profile(tmp_path / "a.yaml", check_references=False)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ProfileError, match="does not exist"):
        load_profile(tmp_path / "nope.yaml")
    with pytest.raises(ProfileError, match="unknown profile 'nope'.*mini"):
        load_profile("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ProfileError, match="bad.yaml: not valid YAML"):
        load_profile(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(ProfileError, match="expected a mapping"):
        load_profile(scalar)


def test_suite_members_replace_the_reference():
    suite = load_profile("transfer", check_references=False)
    members = suite.suite_members()
    assert [m.data.reference for m in members] == suite.suite
    assert all(m.data.shifts == [] and not m.suite and m.name.startswith("transfer-") for m in members)
    assert members[0].finetune.e2e.lr == suite.finetune.e2e.lr


def test_round_trip_through_a_dict():
    profile = load_profile("mini", check_references=False)
    again = profile_from_dict(profile_to_dict(profile), check_references=False)
    assert profile_to_dict(again) == profile_to_dict(profile)


def test_apply_overrides_does_not_mutate_its_input():
    raw = {"a": {"b": 1}}
    out = apply_overrides(raw, ["a.b=2", "c.d=x"])
    assert raw == {"a": {"b": 1}} and out == {"a": {"b": 2}, "c": {"d": "x"}}


# --------------------------------------------------------------------------------------- property-based
_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10, 10**6), st.floats(allow_nan=True),
                     st.text(max_size=8))
_values = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                       max_leaves=8)
_known_keys = st.sampled_from(["name", "model", "data", "seed", "device", "eval", "finetune", "interpolation",
                               "baselines", "figures", "suite", "world", "templates", "steps"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.one_of(_known_keys, st.text(max_size=6)), _values, max_size=6))
def test_arbitrary_mappings_raise_only_profile_errors(raw):
    try:
        profile_from_dict(raw, source="fuzz.yaml", check_references=False)
    except ProfileError as e:
        assert str(e).startswith("fuzz.yaml")


@settings(max_examples=200, deadline=None)
@given(section=st.sampled_from(["eval", "interpolation", "baselines", "figures"]),
       key=st.sampled_from(["batch_size", "alphas", "keep", "alpha_step", "ema_decays", "formats", "include",
                            "num_workers", "chunk_images", "memory_gb", "fisher_floor"]),
       value=_values)
def test_arbitrary_values_in_known_sections_raise_only_profile_errors(section, key, value):
    raw = _deep(BASE, {})
    raw[section] = {key: value}
    try:
        profile = profile_from_dict(raw, source="fuzz.yaml", check_references=False)
    except ProfileError:
        return
    for a in profile.interpolation.alpha_grid():
        assert 0.0 <= a <= 1.0 and not math.isnan(a)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=20), max_size=4))
def test_arbitrary_overrides_raise_only_profile_errors(overrides):
    try:
        load_profile("mini", overrides=overrides, check_references=False)
    except ProfileError:
        pass


# ------------------------------------------------------------------------------------ reference checks
@pytest.mark.parametrize("override, key, fragment", [
    ("data.shifts=[imagenet-b]", "data.shifts", "unknown dataset 'imagenet-b'"),
    ("data.reference=nope", "data.reference", "known datasets: cifar10"),
    ("model.name=ViT-B-17", "model", "did you mean ViT-B-16"),
    ("model.pretrained=openaii", "model", "unknown pretrained tag 'openaii'"),
    ("model.pretrained=/no/such/weights.safetensors", "model", "does not exist"),
    ("templates=file:/no/such/templates.txt", "templates", "does not exist"),
    ("templates=nonsense", "templates", "unknown template set"),
    ("figures.baseline_models=/no/such.csv", "figures.baseline_models", "does not exist"),
    ("data.configs=[/no/such/datasets.yaml]", "data.configs[0]", "does not exist"),
    ("suite=[cifar10, nope]", "suite", "unknown dataset 'nope'"),
])
def test_references_to_missing_things_are_named(override, key, fragment):
    with pytest.raises(ProfileError) as info:
        load_profile("imagenet-vitb16", overrides=[override])
    message = str(info.value)
    assert "imagenet-vitb16.yaml" in message and f"key '{key}'" in message and fragment in message


def test_a_custom_dataset_yaml_named_by_the_profile_becomes_reference_and_shift(tmp_path):
    from wiseft.datasets import create_eval_set
    from wiseft.datasets.fixtures import make_image_folder

    make_image_folder(tmp_path / "flowers" / "train", ["daisy", "rose"], per_class=2)
    make_image_folder(tmp_path / "flowers" / "field", ["daisy", "rose"], per_class=1)
    (tmp_path / "classnames.txt").write_text("daisy\nrose\n")
    (tmp_path / "templates.txt").write_text("a photo of a {}.\n")
    (tmp_path / "my_datasets.yaml").write_text(
        "my-flowers-ref:\n  role: reference\n  root: flowers\n  classnames: file:classnames.txt\n"
        "  templates: file:templates.txt\n  splits:\n    train: {path: train, count: 4}\n    test: {path: field}\n"
        "my-flowers-field:\n  root: flowers\n  classnames: file:classnames.txt\n  templates: file:templates.txt\n"
        "  splits:\n    test: {path: field}\n")
    (tmp_path / "mine.yaml").write_text(
        "extends: imagenet-vitb16\ndata:\n  configs: [my_datasets.yaml]\n  reference: my-flowers-ref\n"
        "  shifts: [my-flowers-field]\n  extra: []\n")
    profile = load_profile(tmp_path / "mine.yaml")
    assert profile.data.reference == "my-flowers-ref" and profile.data.configs[0].endswith("my_datasets.yaml")
    field = create_eval_set("my-flowers-field")
    assert field.classnames == ["daisy", "rose"] and len(field) == 2
