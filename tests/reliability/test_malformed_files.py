"""Every text file wiseft reads, when it is not UTF-8, not the expected format, or damaged: the documented error.

Profiles, dataset YAML, checkpoint sidecars, class-name and template files, ImageNet label files and devkits,
ObjectNet mappings, EMA and training-state metadata: a file that is binary junk, not UTF-8, or holds values of
the wrong type must raise the error type of its module (ProfileError, DatasetError, CheckpointError,
WiseftError) naming the file, never UnicodeDecodeError, KeyError or TypeError from deep inside. (Results files
and done-markers are fuzzed in ``test_faults.py``, checkpoint sidecars field by field in
``test_checkpoint_corruption.py``.)
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wiseft.errors import CheckpointError, DatasetError, ProfileError, WiseftError

JUNK = [b"\xff\xfe\x80\x81 not utf-8\n", b"\x00\x01\x02\x03", b"\x89PNG\r\n\x1a\n\x00\x00", "é".encode("latin1")]
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.mark.parametrize("junk", JUNK)
def test_profile_file(tmp_path, junk):
    from wiseft.profile import load_profile

    path = tmp_path / "p.yaml"
    path.write_bytes(junk)
    with pytest.raises(ProfileError, match="p.yaml"):
        load_profile(path, check_references=False)


@pytest.mark.parametrize("junk", JUNK)
def test_dataset_config(tmp_path, junk, clean_registry):
    from wiseft.datasets import add_dataset_config

    path = tmp_path / "sets.yaml"
    path.write_bytes(junk)
    with pytest.raises(DatasetError, match="sets.yaml"):
        add_dataset_config(path)


@pytest.mark.parametrize("junk", JUNK)
def test_checkpoint_sidecar(make_classifier, tmp_path, junk):
    from wiseft.checkpoint import load_classifier, save_classifier

    _, js = save_classifier(make_classifier(), tmp_path / "clf", {})
    js.write_bytes(junk)
    with pytest.raises(CheckpointError, match="clf.json"):
        load_classifier(tmp_path / "clf")


@pytest.mark.parametrize("junk", JUNK)
def test_class_name_and_template_files(tmp_path, junk, clean_registry):
    from wiseft.datasets import add_dataset_config, get_classnames
    from wiseft.templates import get_templates

    (tmp_path / "names.txt").write_bytes(junk)
    (tmp_path / "templates.txt").write_bytes(junk)
    (tmp_path / "sets.yaml").write_text("s:\n  classnames: file:names.txt\n  splits: {test: {path: x}}\n")
    add_dataset_config(tmp_path / "sets.yaml")
    try:
        get_classnames("s")  # control characters are still text: odd class names, not an error
    except DatasetError as e:
        assert "names.txt" in str(e)
    with pytest.raises(WiseftError, match="templates.txt"):
        get_templates(f"file:{tmp_path / 'templates.txt'}")


@pytest.mark.parametrize("junk", JUNK)
def test_imagenet_labels_file(tmp_path, junk):
    from wiseft.datasets.imagenet_val import convert_imagenet_val

    (tmp_path / "flat").mkdir()
    (tmp_path / "labels.txt").write_bytes(junk)
    with pytest.raises(DatasetError, match="labels.txt"):
        convert_imagenet_val(tmp_path / "flat", tmp_path / "val", labels=tmp_path / "labels.txt")


@pytest.mark.parametrize("damage", ["gt_junk", "gt_unknown_id", "meta_junk", "meta_no_synsets"])
def test_imagenet_devkit(tmp_path, damage):
    import numpy as np
    import scipy.io

    from wiseft.datasets.imagenet_val import read_val_labels

    data = tmp_path / "ILSVRC2012_devkit_t12" / "data"
    data.mkdir(parents=True)
    synsets = np.array([(1, "n02119789", 0), (2, "n02100735", 0)],
                       dtype=[("ILSVRC2012_ID", object), ("WNID", object), ("num_children", object)])
    scipy.io.savemat(data / "meta.mat", {"synsets": synsets})
    (data / "ILSVRC2012_validation_ground_truth.txt").write_text("2\n1\n")
    assert read_val_labels(devkit=tmp_path)["ILSVRC2012_val_00000001.JPEG"] == "n02100735"
    if damage == "gt_junk":
        (data / "ILSVRC2012_validation_ground_truth.txt").write_bytes(JUNK[0])
    elif damage == "gt_unknown_id":
        (data / "ILSVRC2012_validation_ground_truth.txt").write_text("2\n7\n")
    elif damage == "meta_junk":
        (data / "meta.mat").write_bytes(JUNK[2] * 40)
    else:
        scipy.io.savemat(data / "meta.mat", {"other": np.zeros(2)})
    with pytest.raises(DatasetError, match="devkit|meta.mat|ground_truth"):
        read_val_labels(devkit=tmp_path)


@pytest.mark.parametrize("name", ["folder_to_objectnet_label.json", "objectnet_to_imagenet_1k.json",
                                  "pytorch_to_imagenet_2012_id.json", "imagenet_to_label_2012_v2"])
@pytest.mark.parametrize("content", [JUNK[0], b'{"a": [1, 2]}', b"[1, 2]", b'{"1": {"x": 1}}'])
def test_objectnet_mapping_files(tmp_path, name, content):
    from wiseft.datasets.objectnet import load_objectnet_mapping

    folder = tmp_path / "mappings"
    shutil.copytree(FIXTURES / "objectnet-mappings", folder)
    (folder / name).write_bytes(content)
    try:
        load_objectnet_mapping(folder)
    except DatasetError as e:
        assert name in str(e) or str(folder) in str(e) or "ObjectNet" in str(e)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(meta=st.dictionaries(st.sampled_from(["format", "mode", "decays", "num_updates", "dtypes"]),
                            st.text(max_size=12) | st.sampled_from(['{"w": "load"}', '{"w": "float32"}', "[0.9]",
                                                                    "debiased", "1", '{"w": ["x"]}']), max_size=5))
def test_ema_state_metadata(tmp_path, meta):
    from safetensors.torch import load_file, save_file

    from wiseft.baselines.ema import EMA_FORMAT, WeightEMA

    ema = WeightEMA([0.9])
    ema.update({"w": torch.ones(2)})
    path = tmp_path / "ema.safetensors"
    ema.save(path)
    tensors, good = load_file(str(path)), ema.state_dict()[1]
    save_file(tensors, str(path), metadata={**good, "format": EMA_FORMAT, **meta})
    fresh = WeightEMA([0.9])
    try:
        fresh.load(path)
    except CheckpointError as e:
        assert "EMA state" in str(e)
        return
    assert all(isinstance(d, torch.dtype) for d in fresh._dtypes.values())


def test_training_state_metadata(tmp_path):
    from wiseft.finetune.state import MARKER, TrainProgress, capture_rng, load_latest, save_train_state

    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    folder = save_train_state(tmp_path / "state", model=model, optimizer=opt, progress=TrainProgress(global_step=1),
                              rng_states=[capture_rng()], trainer={})
    for junk in (JUNK[0], b"[]", json.dumps({"files": {"model.safetensors": {"size": "x"}}}).encode()):
        (folder / MARKER).write_bytes(junk)
        assert load_latest(tmp_path / "state") is None  # skipped with a warning, training starts over
