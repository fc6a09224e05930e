"""Training checkpoints: pickle-free, complete-or-invisible, verified, pruned."""

from __future__ import annotations

import json
import logging
import random

import numpy as np
import pytest
import torch

from wiseft.errors import CheckpointError
from wiseft.finetune.state import (MARKER, TrainProgress, capture_rng, latest_state, list_states, load_latest,
                                   load_train_state, save_train_state, state_dict_tensors)


def _trained(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LayerNorm(8), torch.nn.Linear(8, 3))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.8, 0.99))
    for _ in range(3):
        model(torch.randn(5, 4)).sum().backward()
        opt.step()
        opt.zero_grad()
    return model, opt


def _save(root, model, opt, step, **kw):
    progress = TrainProgress(epoch=1, step_in_epoch=2, global_step=step, history=[{"epoch": 1, "loss": 0.5}])
    return save_train_state(root, model=model, optimizer=opt, progress=progress, rng_states=[capture_rng()],
                            trainer={"settings": {"seed": 1}}, **kw)


def test_round_trip_restores_weights_optimizer_and_random_streams(tmp_path):
    model, opt = _trained()
    torch.manual_seed(11), random.seed(11), np.random.seed(11)
    path = _save(tmp_path, model, opt, 7)
    expected_draws = (torch.rand(4), random.random(), np.random.rand())

    other, other_opt = _trained(seed=1)
    loaded = load_train_state(path)
    loaded.apply(other, other_opt)
    for a, b in zip(model.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b)
    sa, sb = opt.state_dict(), other_opt.state_dict()
    assert sa["param_groups"] == sb["param_groups"]  # betas come back as a tuple
    for pid in sa["state"]:
        for key in sa["state"][pid]:
            assert torch.equal(sa["state"][pid][key], sb["state"][pid][key])
    assert torch.equal(torch.rand(4), expected_draws[0])
    assert random.random() == expected_draws[1] and np.random.rand() == expected_draws[2]
    assert loaded.progress.global_step == 7 and loaded.progress.history == [{"epoch": 1, "loss": 0.5}]
    assert loaded.trainer["settings"] == {"seed": 1}


def test_checkpoints_hold_only_safetensors_and_json(tmp_path):
    model, opt = _trained()
    path = _save(tmp_path, model, opt, 1)
    names = sorted(p.name for p in path.iterdir())
    assert names == sorted(["COMPLETE", "model.safetensors", "optimizer.safetensors", "optimizer.json",
                            "rng.safetensors", "rng.json", "trainer.json"])
    for name in names:
        if name.endswith(".json") or name == MARKER:
            json.loads((path / name).read_text())


def test_a_folder_without_its_marker_is_never_taken_as_complete(tmp_path):
    model, opt = _trained()
    good = _save(tmp_path, model, opt, 2)
    half = tmp_path / "step-000000009"  # what a kill between writing files and the marker would leave
    half.mkdir()
    (half / "model.safetensors").write_bytes(b"\x00" * 10)
    (tmp_path / ".tmp-step-000000010-123").mkdir()
    assert list_states(tmp_path) == [good]
    assert latest_state(tmp_path) == good
    _save(tmp_path, model, opt, 3)
    assert not (tmp_path / ".tmp-step-000000010-123").exists()  # leftovers of killed writers are cleaned


def test_damaged_newest_checkpoint_falls_back_to_the_one_before(tmp_path, caplog):
    model, opt = _trained()
    first = _save(tmp_path, model, opt, 1)
    second = _save(tmp_path, model, opt, 2)
    data = (second / "model.safetensors").read_bytes()
    (second / "model.safetensors").write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(CheckpointError, match="truncated"):
        load_train_state(second)
    with caplog.at_level(logging.WARNING):
        assert load_latest(tmp_path).path == first
    assert "damaged" in caplog.text


def test_keep_last_prunes_older_checkpoints(tmp_path):
    model, opt = _trained()
    for step in range(1, 6):
        _save(tmp_path, model, opt, step, keep_last=2)
    assert [p.name for p in list_states(tmp_path)] == ["step-000000004", "step-000000005"]


def test_saving_the_same_step_again_replaces_it(tmp_path):
    model, opt = _trained()
    _save(tmp_path, model, opt, 4)
    with torch.no_grad():
        model[0].weight.add_(1.0)
    path = _save(tmp_path, model, opt, 4)
    assert torch.equal(load_train_state(path).model["0.weight"], model[0].weight)


def test_tied_weights_can_be_saved():
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Linear(3, 3))
    model[1].weight = model[0].weight
    tensors = state_dict_tensors(model)
    assert tensors["0.weight"].data_ptr() != tensors["1.weight"].data_ptr()
    assert torch.equal(tensors["0.weight"], tensors["1.weight"])


def test_wrong_optimizer_type_is_refused(tmp_path):
    model, opt = _trained()
    path = _save(tmp_path, model, opt, 1)
    with pytest.raises(CheckpointError, match="optimizer"):
        load_train_state(path).apply(model, torch.optim.SGD(model.parameters(), lr=0.1))
