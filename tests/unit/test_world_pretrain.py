"""The world's small CLIP: model config, pretraining, weights cache and the ``world:<name>`` tag."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil

import open_clip
import pytest
import torch
from safetensors.torch import load_file

from wiseft import world
from wiseft.errors import CheckpointError, ProfileError
from wiseft.world import (MODEL_NAME, PretrainSpec, check_world_tag, ensure_pretrained, parse_world_tag,
                          pretrain_spec, resolve_world_pretrained)
from wiseft.world.build import WorldSpec, build_world
from wiseft.world.pretrain import pretrain_clip

TINY = WorldSpec(pretrain_pairs=64, reference_train=10, reference_val=10, reference_test=10, shift_test=10,
                 shifts=("colour",))
FEW_STEPS = PretrainSpec(steps=3, batch_size=32, warmup_steps=1)


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setenv("WISEFT_PROGRESS", "0")
    monkeypatch.delenv("WISEFT_WORLD_ACTIVE", raising=False)  # ensure_* record the active world there


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory):
    return build_world(TINY, tmp_path_factory.mktemp("worlds"))


def test_model_config_registers_and_builds():
    world.register_model_configs()
    assert MODEL_NAME in open_clip.list_models()
    world.register_model_configs()  # idempotent
    model = open_clip.create_model(MODEL_NAME, pretrained=None, load_weights=False)
    tokens = open_clip.get_tokenizer(MODEL_NAME)(["the number seven.", "a digit two."])
    image_features, text_features, scale = model(torch.zeros(2, 3, 32, 32), tokens)[:3]
    assert image_features.shape == text_features.shape == (2, 64)
    norms = ("norm" in n for n, m in model.visual.named_modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert not any(norms), "BatchNorm towers do not interpolate; the world's CLIP must not have any"


def test_a_few_steps_reduce_the_loss(tiny_world):
    spec = PretrainSpec(steps=12, batch_size=16, warmup_steps=2, lr=3e-3)
    model, stats = pretrain_clip(tiny_world, spec)
    curve = dict(stats["loss_curve"])
    assert curve[11] < curve[0] - 0.2, curve
    assert stats["pairs"] == TINY.pretrain_pairs and stats["cpu_seconds"] >= 0


def test_pretraining_is_repeatable(tiny_world):
    a, _ = pretrain_clip(tiny_world, FEW_STEPS)
    b, _ = pretrain_clip(tiny_world, FEW_STEPS)
    for (name, ta), tb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(ta, tb), name
    assert torch.get_num_threads() > 0  # the thread setting was restored, not left broken


def test_ensure_pretrained_saves_open_clip_weights_and_reuses_them(tmp_path, monkeypatch, caplog):
    with caplog.at_level(logging.INFO, logger="wiseft.world"):
        path = ensure_pretrained("tiny", root=tmp_path, world=TINY, pretrain=FEW_STEPS)
    assert "pretraining the world CLIP" in caplog.text
    assert path.suffix == ".safetensors" and path.parent == tmp_path / "models"
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar["model_name"] == MODEL_NAME and sidecar["world_hash"] == world.world_hash(TINY)
    assert 0.0 <= sidecar["zero_shot_val_top1"] <= 1.0 and sidecar["tensors_sha256"]
    model, _, preprocess = open_clip.create_model_and_transforms(MODEL_NAME, pretrained=str(path))
    state = load_file(str(path))
    assert set(state) == set(model.state_dict())
    assert torch.equal(model.state_dict()["logit_scale"], state["logit_scale"])

    def no_training(*args, **kwargs):
        raise AssertionError("cached weights were trained again")

    monkeypatch.setattr(world, "pretrain_clip", no_training)
    assert ensure_pretrained("tiny", root=tmp_path, world=TINY, pretrain=FEW_STEPS) == path
    other = dataclasses.replace(FEW_STEPS, seed=1)
    assert world.pretrained_path(root=tmp_path, world=TINY, pretrain=other) != path
    assert resolve_world_pretrained("world:tiny") == path  # the weights this process prepared for that world


def test_shipped_weights_of_the_same_setting_are_copied_not_retrained(tmp_path, monkeypatch, caplog):
    made = ensure_pretrained("tiny", root=tmp_path / "maker", world=TINY, pretrain=FEW_STEPS)
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    for src in (made, made.with_suffix(".json")):
        shutil.copyfile(src, shipped / src.name)
    monkeypatch.setattr(world, "packaged_weights_dir", lambda: shipped)

    def no_training(*args, **kwargs):
        raise AssertionError("the shipped weights of this setting were trained again")

    with monkeypatch.context() as m:
        m.setattr(world, "pretrain_clip", no_training)
        with caplog.at_level(logging.INFO, logger="wiseft.world"):
            path = ensure_pretrained("tiny", root=tmp_path / "user", world=TINY, pretrain=FEW_STEPS)
    assert "ships with wiseft" in caplog.text
    assert path == tmp_path / "user" / "models" / made.name
    assert path.read_bytes() == made.read_bytes()
    assert json.loads(path.with_suffix(".json").read_text()) == json.loads(made.with_suffix(".json").read_text())
    # packaged=False pretrains here, into the same cache name
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="wiseft.world"):
        again = ensure_pretrained("tiny", root=tmp_path / "own", world=TINY, pretrain=FEW_STEPS, packaged=False)
    assert again.name == made.name
    assert "pretraining the world CLIP" in caplog.text and "ships with wiseft" not in caplog.text


def test_a_damaged_shipped_file_is_refused_naming_it(tmp_path, monkeypatch):
    made = ensure_pretrained("tiny", root=tmp_path / "maker", world=TINY, pretrain=FEW_STEPS)
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    shutil.copyfile(made.with_suffix(".json"), shipped / made.with_suffix(".json").name)
    data = bytearray(made.read_bytes())
    data[-1] ^= 0xFF
    (shipped / made.name).write_bytes(bytes(data))
    monkeypatch.setattr(world, "packaged_weights_dir", lambda: shipped)
    with pytest.raises(CheckpointError, match=made.name):
        ensure_pretrained("tiny", root=tmp_path / "user", world=TINY, pretrain=FEW_STEPS)
    assert not (tmp_path / "user" / "models" / made.name).exists()


def test_the_mini_world_ships_its_pretrained_clip():
    """The file the main job copies instead of pretraining: named for today's mini setting, checksum intact."""
    path = world.pretrained_path("mini")
    shipped = world.packaged_weights_dir() / path.name
    assert shipped.is_file(), f"{shipped} missing: run python data_prep/build_world.py --ship after changing the world"
    sidecar = json.loads(shipped.with_suffix(".json").read_text())
    from wiseft.io import sha256_file

    assert sidecar["tensors_sha256"] == sha256_file(shipped)
    assert sidecar["pretrain_spec"] == json.loads(json.dumps(dataclasses.asdict(pretrain_spec("mini"))))
    assert sidecar["zero_shot_val_top1"] >= 0.5


@pytest.mark.parametrize("tag", ["world:nope", "world:", "openai", "mini"])
def test_unknown_world_tags_fail_clearly(tag):
    with pytest.raises(ProfileError, match="mini"):
        resolve_world_pretrained(tag)
    assert "mini" in check_world_tag(tag)


def test_known_world_tags():
    assert parse_world_tag("world:mini") == "mini"
    assert check_world_tag("world:tiny") is None
    assert pretrain_spec("mini").model_name == MODEL_NAME


def test_profile_checks_of_the_world_model_do_not_import_open_clip():
    """Notebooks that only read results open their run in a fraction of a second: no open_clip import for that."""
    import subprocess
    import sys

    code = ("import sys; from wiseft.profile import load_profile; p = load_profile('mini'); "
            "print(p.model.name, 'open_clip' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["wiseft-mini-clip", "False"]
    code = ("from wiseft.profile import load_profile; load_profile('mini', ['model.pretrained=world:nope'])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode != 0 and "world:nope" in proc.stderr and "model.pretrained" in proc.stderr
