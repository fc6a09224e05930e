"""The offline world's generator: determinism, layout and counts, the content-hash cache, atomic builds."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging

import numpy as np
import pytest
import yaml
from PIL import Image

from wiseft.errors import ProfileError
from wiseft.world import build as build_mod
from wiseft.world import (class_dir_names, classnames, ensure_world, get_world_cfg, list_worlds, templates,
                          world_datasets, world_spec)
from wiseft.world.build import MANIFEST, PRETRAIN_DATASET, REFERENCE_DATASET, WorldSpec, build_world, world_hash
from wiseft.world.captions import caption
from wiseft.world.recipes import SHIFTS, handwritten_pool, recipe
from wiseft.world.render import FONT_FILES, Look, font_path, render

TINY = WorldSpec(pretrain_pairs=40, reference_train=20, reference_val=10, reference_test=10, shift_test=10)


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setenv("WISEFT_PROGRESS", "0")
    monkeypatch.delenv("WISEFT_WORLD_ACTIVE", raising=False)  # ensure_world records the active world there


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory):
    return build_world(TINY, tmp_path_factory.mktemp("worlds"))


def _digest_tree(root):
    """sha256 of every file except the manifest (which records the build time)."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != MANIFEST}


# ------------------------------------------------------------------------------------------------ drawing
def test_fonts_are_bundled_and_render_every_digit():
    for name in FONT_FILES:
        assert font_path(name).endswith(".ttf")
    for digit in range(10):
        img = render(Look(digit=digit, font="cm-oldstyle"), np.random.default_rng(0))
        assert img.shape == (32, 32, 3) and img.dtype == np.uint8
        assert img.min() < 100 < img.max()  # ink on paper


@pytest.mark.parametrize("name", ["pretrain", "reference", *SHIFTS])
def test_recipes_are_deterministic(name):
    sample = recipe(name)

    def draw(seed):
        rng = np.random.default_rng([seed, 7])
        look = sample(rng, 3)
        return look, render(look, rng)

    (look_a, img_a), (look_b, img_b) = draw(0), draw(0)
    assert look_a == look_b and np.array_equal(img_a, img_b)
    assert not np.array_equal(img_a, draw(1)[1])


def test_unknown_recipe_lists_known():
    with pytest.raises(KeyError, match="reference"):
        recipe("nope")


def test_handwritten_halves_are_disjoint():
    assert not set(handwritten_pool("pretrain")) & set(handwritten_pool("shift"))


def test_captions_name_content_and_style_never_colour():
    sample = recipe("pretrain")
    colours = {"red", "green", "blue", "yellow", "black", "white", "purple", "orange", "pink", "grey", "gray"}
    for i in range(200):
        rng = np.random.default_rng(i)
        look = sample(rng, i % 10)
        text = caption(look, rng)
        assert str(look.digit) in text or classnames()[look.digit] in text
        assert not colours & set(text.replace(",", " ").replace(".", " ").split()), text


# ----------------------------------------------------------------------------------------- layout, counts
def test_layout_and_counts(tiny_world):
    manifest = json.loads((tiny_world / MANIFEST).read_text())
    assert manifest["hash"] == tiny_world.name == world_hash(TINY)
    assert manifest["class_dirs"] == class_dir_names() == sorted(class_dir_names())
    for dataset, splits in TINY.splits().items():
        for split, n in splits.items():
            files = sorted((tiny_world / dataset / split).rglob("*.png"))
            assert len(files) == n, (dataset, split)
            per_class = {f.parent.name for f in files}
            assert per_class == set(class_dir_names()) if n >= 10 else per_class <= set(class_dir_names())
    with Image.open(next((tiny_world / REFERENCE_DATASET / "test").rglob("*.png"))) as im:
        assert im.size == (32, 32) and im.mode == "RGB"
    lines = (tiny_world / PRETRAIN_DATASET / "captions.tsv").read_text().splitlines()
    assert lines[0] == "filepath\ttitle" and len(lines) == 1 + TINY.pretrain_pairs
    for line in lines[1:]:
        rel, text = line.split("\t")
        assert (tiny_world / PRETRAIN_DATASET / rel).is_file() and text.endswith(".")


def test_splits_do_not_share_images(tiny_world):
    digests = _digest_tree(tiny_world)
    png = [d for p, d in digests.items() if p.endswith(".png")]
    assert len(set(png)) == len(png)


def test_same_seed_same_images_other_seed_other_images(tmp_path, tiny_world):
    again = build_world(TINY, tmp_path / "a")
    assert _digest_tree(again) == _digest_tree(tiny_world)
    other = build_world(dataclasses.replace(TINY, seed=1), tmp_path / "b")
    assert other.name != tiny_world.name
    assert _digest_tree(other) != _digest_tree(tiny_world)


def test_workers_do_not_change_images(tmp_path, tiny_world):
    assert _digest_tree(build_world(TINY, tmp_path, workers=2)) == _digest_tree(tiny_world)


# ------------------------------------------------------------------------------------------ cache, atomic
def test_cache_reuse_logs_once(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("WISEFT_CACHE", str(tmp_path))
    spec = dataclasses.replace(TINY, pretrain_pairs=10)
    with caplog.at_level(logging.INFO, logger="wiseft.world"):
        first = ensure_world(spec=spec)
    assert first.parent == tmp_path / "world" and "building the offline world" in caplog.text

    def no_drawing(*args, **kwargs):
        raise AssertionError("a cached world was drawn again")

    monkeypatch.setattr(build_mod, "_draw_all", no_drawing)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="wiseft.world"):
        assert ensure_world(spec=spec) == first
    assert "building" not in caplog.text


def test_interrupted_build_leaves_nothing_that_looks_complete(tmp_path, monkeypatch):
    spec = dataclasses.replace(TINY, pretrain_pairs=10)
    real = build_mod._draw_block
    calls = {"n": 0}

    def dies_midway(args):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(args)

    monkeypatch.setattr(build_mod, "_draw_block", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        build_world(spec, tmp_path)
    assert list(tmp_path.iterdir()) == []  # no final folder, no temporary leftovers
    monkeypatch.setattr(build_mod, "_draw_block", real)
    assert (build_world(spec, tmp_path) / MANIFEST).is_file()


def test_folder_without_manifest_is_refused(tmp_path):
    spec = dataclasses.replace(TINY, pretrain_pairs=10)
    (tmp_path / world_hash(spec)).mkdir()
    with pytest.raises(Exception, match="not a complete world"):
        build_world(spec, tmp_path)


def test_hash_covers_settings():
    assert world_hash(TINY) == world_hash(dataclasses.replace(TINY))
    assert world_hash(TINY) != world_hash(dataclasses.replace(TINY, shift_test=11))


# ------------------------------------------------------------------------------------------------ registry
def test_world_registry():
    assert {"mini", "tiny"} <= set(list_worlds())
    cfg = get_world_cfg("mini")
    cfg["world"]["seed"] = 99
    assert get_world_cfg("mini")["world"]["seed"] == 0  # a copy
    assert world_spec("mini", seed=3).seed == 3
    with pytest.raises(ProfileError, match="known worlds: .*mini"):
        get_world_cfg("nope")
    with pytest.raises(ValueError, match="unknown key"):
        WorldSpec.from_dict({"pretrain_pair": 5})


def test_datasets_yaml_matches_the_mini_world():
    spec = world_spec("mini")
    entries = world_datasets()
    assert {n: {k: v["count"] for k, v in e["splits"].items()} for n, e in entries.items()} == spec.splits()
    assert [e["role"] for e in entries.values()].count("reference") == 1
    assert entries[REFERENCE_DATASET]["role"] == "reference"
    for name, entry in entries.items():
        assert entry["root"] == "world" and entry["classnames"] == classnames()
        assert entry["templates"] == "file:templates.txt"
        for split, layout in entry["splits"].items():
            assert layout["path"] == f"{name}/{split}"
    assert classnames() == ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    assert templates() == ["the number {}.", "a digit {}."]
    from importlib import resources

    raw = yaml.safe_load(resources.files("wiseft.world").joinpath("datasets.yaml").read_text())
    assert raw[".layout"]["folders"] == class_dir_names()


def test_world_root_follows_the_active_world(tmp_path, monkeypatch):
    from wiseft import world

    monkeypatch.delenv(world.ACTIVE_ENV, raising=False)
    monkeypatch.setenv("WISEFT_CACHE", str(tmp_path / "cache"))
    assert world.world_root() == tmp_path / "cache" / "world" / world_hash(world_spec("mini"))  # not built
    assert not world.world_root().exists()
    spec = dataclasses.replace(TINY, pretrain_pairs=10)
    folder = ensure_world("tiny", spec=spec, root=tmp_path)
    assert world.world_root() == folder
    assert json.loads(__import__("os").environ[world.ACTIVE_ENV])["folder"] == str(folder)  # children inherit it


def test_contrasting_colours_keep_the_digit_readable():
    from wiseft.world.recipes import _contrasting, _contrasting_pair, _luma

    for i in range(300):
        rng = np.random.default_rng(i)
        fg, bg = _contrasting_pair(rng)
        assert abs(_luma(np.array(fg)) - _luma(np.array(bg))) >= 0.4 - 0.01
        other = _contrasting(rng, fg)
        assert abs(_luma(np.array(other)) - _luma(np.array(fg))) >= 0.4 - 0.01


def test_profile_world_section():
    from wiseft.profile import WorldCfg, profile_from_dict

    base = {"name": "p", "model": {"name": "wiseft-mini-clip", "pretrained": "world:mini"},
            "data": {"reference": "world-print"}}
    prof = profile_from_dict({**base, "world": {"seed": 3, "workers": 2}}, check_references=False)
    assert prof.world == WorldCfg(seed=3, workers=2)
    assert profile_from_dict(base, check_references=False).world == WorldCfg()
    with pytest.raises(ProfileError, match="world.wrokers"):
        profile_from_dict({**base, "world": {"wrokers": 2}}, check_references=False)
    with pytest.raises(ProfileError, match="world.workers"):
        profile_from_dict({**base, "world": {"workers": 0}}, check_references=False)
