"""No file wiseft reads can make it run code: every reader is fed a payload that would create a marker file.

A pickle's ``__reduce__`` names a callable that the unpickler calls while loading; here it is ``open(marker, "w")``
or ``os.system("touch marker")``, so a reader that unpickles leaves the marker behind. Each reader must refuse the
file with its documented error (naming the file) and the marker must not exist. YAML gets the same treatment
with a ``!!python/object/apply`` tag. The static side (no such call exists in the package) is
``test_static_security.py``.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from wiseft.errors import CheckpointError, DatasetError, ProfileError, WiseftError


class OpenPayload:
    """Unpickling calls ``open(marker, "w")``, which creates the marker."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


class SystemPayload:
    """Unpickling runs a shell command that creates the marker."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


PAYLOADS = [OpenPayload, SystemPayload]


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "PWNED"
    yield path
    assert not path.exists(), "code from a data file ran"


def test_the_payloads_do_run_when_unpickled(tmp_path):
    """Control: the payloads are live; a plain pickle.loads would create the marker."""
    for kind in PAYLOADS:
        m = tmp_path / f"control-{kind.__name__}"
        pickle.loads(pickle.dumps(kind(m)))  # noqa: S301 - the point of the control
        assert m.exists()


# ------------------------------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("kind", PAYLOADS)
@pytest.mark.parametrize("fmt", ["raw_pickle", "torch_save"])
def test_classifier_checkpoint_pickle_is_refused_without_running_it(make_classifier, tmp_path, marker, kind, fmt):
    from wiseft.checkpoint import load_classifier, read_state_dict, save_classifier
    from wiseft.io import sha256_file

    st, js = save_classifier(make_classifier(), tmp_path / "clf", {})
    payload = {"head.weight": kind(marker)}
    if fmt == "raw_pickle":
        st.write_bytes(pickle.dumps(payload, protocol=4))
    else:
        torch.save(payload, st)
    meta = json.loads(js.read_text())
    meta["tensors_sha256"] = sha256_file(st)  # a forger updates the sidecar too
    js.write_text(json.dumps(meta))
    for read in (lambda: read_state_dict(st), lambda: load_classifier(tmp_path / "clf")):
        with pytest.raises(CheckpointError, match="clf.safetensors") as info:
            read()
        assert "pickle" in str(info.value) or "torch.save" in str(info.value)


@pytest.mark.parametrize("kind", PAYLOADS)
@pytest.mark.parametrize("suffix", [".pt", ".bin", ".pth"])
def test_third_party_weights_are_read_with_weights_only(tiny_model_name, tmp_path, marker, kind, suffix):
    from wiseft.checkpoint import convert_to_safetensors
    from wiseft.models import create_clip, read_weights_file

    path = tmp_path / f"weights{suffix}"
    torch.save({"state_dict": {"visual.proj": kind(marker)}}, path)
    with pytest.raises(CheckpointError, match="weights_only=True"):
        read_weights_file(path)
    with pytest.raises(CheckpointError, match=str(path.name)):
        create_clip(tiny_model_name, pretrained=str(path))
    with pytest.raises(CheckpointError):
        convert_to_safetensors(path, tmp_path / "out.safetensors")
    assert not (tmp_path / "out.safetensors").exists()


def test_fisher_and_ema_files_refuse_pickles(tmp_path, marker):
    from wiseft.baselines.ema import WeightEMA
    from wiseft.fisher import load_fisher

    path = tmp_path / "fisher.safetensors"
    torch.save({"w": OpenPayload(marker)}, path)
    with pytest.raises(CheckpointError, match="fisher.safetensors"):
        load_fisher(path)
    ema = WeightEMA([0.9])
    with pytest.raises(CheckpointError, match="EMA state"):
        ema.load(path)


def test_training_state_with_a_forged_marker_still_never_unpickles(tmp_path, marker):
    from wiseft.finetune.state import MARKER, TrainProgress, capture_rng, load_latest, load_train_state, \
        save_train_state
    from wiseft.io import sha256_file

    model = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    folder = save_train_state(tmp_path / "state", model=model, optimizer=opt,
                              progress=TrainProgress(epoch=0, step_in_epoch=1, global_step=1),
                              rng_states=[capture_rng()], trainer={})
    evil = folder / "model.safetensors"
    evil.write_bytes(pickle.dumps({"weight": OpenPayload(marker)}))
    record = json.loads((folder / MARKER).read_text())
    record["files"]["model.safetensors"] = {"size": evil.stat().st_size, "sha256": sha256_file(evil)}
    (folder / MARKER).write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match="cannot read the training state"):
        load_train_state(folder)
    assert load_latest(tmp_path / "state") is None  # skipped with a warning, never loaded


def test_feature_cache_with_an_object_array_is_refused(tmp_path, marker):
    from wiseft.finetune.features import _read

    folder = tmp_path / "features" / "k"
    folder.mkdir(parents=True)
    np.save(folder / "features.npy", np.array([OpenPayload(marker)], dtype=object), allow_pickle=True)
    np.save(folder / "labels.npy", np.zeros(1, dtype=np.int64))
    (folder / "meta.json").write_text(json.dumps({"shape": [1, 1]}))
    with pytest.raises(WiseftError, match="feature cache"):
        _read(folder)


# ----------------------------------------------------------------------------------------------- datasets
@pytest.mark.parametrize("kind", PAYLOADS)
def test_cifar102_object_npy_with_a_payload_is_refused(tmp_path, marker, kind):
    from wiseft.datasets import create_eval_set
    from wiseft.datasets.fixtures import build_fake_dataset

    build_fake_dataset("cifar10.2", tmp_path, splits=["test"])
    path = tmp_path / "CIFAR-10.2" / "cifar102_test.npy"
    np.save(path, {"images": kind(marker), "labels": [0]}, allow_pickle=True)
    with pytest.raises(DatasetError, match="cifar102_test.npy"):
        create_eval_set("cifar10.2", root=tmp_path)


@pytest.mark.parametrize("kind", PAYLOADS)
def test_cifar101_npy_pair_with_a_payload_is_refused(tmp_path, marker, kind):
    from wiseft.datasets import create_eval_set
    from wiseft.datasets.fixtures import build_fake_dataset

    build_fake_dataset("cifar10.1", tmp_path)
    path = tmp_path / "CIFAR-10.1" / "cifar10.1_v6_data.npy"
    np.save(path, np.array([kind(marker)], dtype=object), allow_pickle=True)
    with pytest.raises(DatasetError, match="cifar10.1_v6_data.npy"):
        create_eval_set("cifar10.1", root=tmp_path)


# --------------------------------------------------------------------------------------------------- YAML
def _yaml_payload(marker: Path) -> str:
    return f'!!python/object/apply:os.system ["touch {marker}"]'


def test_profile_yaml_tags_are_not_constructed(tmp_path, marker):
    from wiseft.profile import load_profile

    path = tmp_path / "evil.yaml"
    path.write_text(f"name: evil\nmodel: {{name: m}}\ndata: {{reference: r}}\ndescription: {_yaml_payload(marker)}\n")
    with pytest.raises(ProfileError, match="evil.yaml: not valid YAML"):
        load_profile(path, check_references=False)
    with pytest.raises(ProfileError, match="not valid YAML"):
        load_profile("mini", overrides=[f"description={_yaml_payload(marker)}"], check_references=False)


def test_dataset_yaml_tags_are_not_constructed(tmp_path, marker, clean_registry):
    from wiseft.datasets import add_dataset_config

    path = tmp_path / "evil_datasets.yaml"
    path.write_text(f"evil:\n  classnames: {_yaml_payload(marker)}\n  splits: {{test: {{path: x}}}}\n")
    with pytest.raises(DatasetError, match="evil_datasets.yaml.*not valid YAML"):
        add_dataset_config(path)


def test_template_files_cannot_reach_attributes_through_format(tmp_path):
    """Templates are formatted with str.format; a field such as ``{0.__class__}`` could read attributes, so a
    template file may hold exactly one ``{}`` and no other braces."""
    from wiseft.templates import get_templates

    path = tmp_path / "templates.txt"
    path.write_text("a photo of a {}.\n{0.__class__.__init__.__globals__}\n")
    with pytest.raises(WiseftError, match="templates.txt:2"):
        get_templates(f"file:{path}")
