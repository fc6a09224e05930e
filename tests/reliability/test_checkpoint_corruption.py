"""Checkpoints from strangers: any truncation, any flipped byte, any edited sidecar field, another architecture.

The unit tests (``tests/unit/test_checkpoint.py``) show one example of each refusal; here hypothesis drives the
same readers over many damaged files and asserts the contract: a damaged checkpoint is refused with
:class:`CheckpointError` naming the file, and never loads, crashes with another exception, or yields weights that
differ from what was saved.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import open_clip
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wiseft.checkpoint import checkpoint_paths, load_classifier, read_sidecar, read_state_dict, save_classifier
from wiseft.errors import CheckpointError, IncompatibleStateError
from wiseft.interpolation import check_compatible, clone_state_dict

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
HYP = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                      HealthCheck.too_slow])


@pytest.fixture(scope="module")
def saved(tmp_path_factory, tiny_model_name):
    """One good checkpoint (bytes of both files), reused by every example."""
    from wiseft.models import ClassificationHead, ClassifierInfo, ImageClassifier

    torch.manual_seed(0)
    clip = open_clip.create_model(tiny_model_name, pretrained=None)
    info = ClassifierInfo(model_name=tiny_model_name, pretrained=None, classnames=["a", "b", "c"],
                          template_set="simple", mean=(0.5,) * 3, std=(0.25,) * 3, image_size=(32, 32))
    clf = ImageClassifier(clip.visual, ClassificationHead(torch.randn(3, 16)), info=info).eval()
    folder = tmp_path_factory.mktemp("ckpt")
    st_path, js_path = save_classifier(clf, folder / "good", {"alpha": 0.5})
    return {"st": st_path.read_bytes(), "js": js_path.read_bytes(), "state": clone_state_dict(clf)}


def _write(folder: Path, st_bytes: bytes, js_bytes: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    st_path, js_path = checkpoint_paths(folder / "ckpt")
    st_path.write_bytes(st_bytes)
    js_path.write_bytes(js_bytes)
    return st_path


def _refused(path: Path) -> None:
    with pytest.raises(CheckpointError) as info:
        load_classifier(path)
    assert "ckpt." in str(info.value)  # names the file (tensors or sidecar)


@HYP
@given(cut=st.integers(min_value=0))
def test_any_truncation_is_refused(saved, tmp_path, cut):
    data = saved["st"]
    st_path = _write(tmp_path / "t", data[: cut % len(data)], saved["js"])
    _refused(st_path)
    with pytest.raises(CheckpointError, match="ckpt.safetensors"):
        read_state_dict(st_path)


@HYP
@given(flips=st.lists(st.tuples(st.integers(min_value=0), st.integers(1, 255)), min_size=1, max_size=4))
def test_any_flipped_byte_is_refused(saved, tmp_path, flips):
    data = bytearray(saved["st"])
    for pos, xor in flips:
        data[pos % len(data)] ^= xor
    if bytes(data) == saved["st"]:  # two flips of the same byte can cancel out
        return
    st_path = _write(tmp_path / "f", bytes(data), saved["js"])
    _refused(st_path)  # a flip in the header is unreadable; one in the data fails the sidecar's sha256
    try:
        state = read_state_dict(st_path)  # without the sidecar, a header flip is still caught
    except CheckpointError:
        return
    assert isinstance(state, dict)


@HYP
@given(data=st.binary(max_size=300))
def test_random_bytes_are_refused(tmp_path, data, saved):
    st_path = _write(tmp_path / "r", data, saved["js"])
    _refused(st_path)


_scalar = st.none() | st.booleans() | st.integers(-3, 300) | st.floats(allow_nan=False) | st.text(max_size=6)
_json = st.recursive(_scalar, lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=6)
_FIELDS = ["format", "model_name", "pretrained", "classnames", "classnames_sha256", "template_set", "normalization",
           "image_size", "alpha", "provenance", "tensors_sha256", "extra"]


@HYP
@given(edits=st.dictionaries(st.sampled_from(_FIELDS), _json, min_size=1, max_size=3),
       drop=st.lists(st.sampled_from(_FIELDS), max_size=2))
def test_edited_sidecars_are_refused_or_harmless(saved, tmp_path, edits, drop):
    meta = json.loads(saved["js"])
    meta.update(edits)
    for key in drop:
        meta.pop(key, None)
    st_path = _write(tmp_path / "s", saved["st"], json.dumps(meta).encode())
    try:
        clf, loaded = load_classifier(st_path)
    except CheckpointError as e:
        assert "ckpt." in str(e)
        return
    # Only fields the loader does not depend on were changed: the weights are exactly the saved ones.
    for key, value in saved["state"].items():
        assert torch.equal(clf.state_dict()[key], value), key


@pytest.mark.parametrize("text", ["[]", "42", '"x"', "null", "{", ""])
def test_sidecar_that_is_not_an_object(saved, tmp_path, text):
    st_path = _write(tmp_path / "n", saved["st"], text.encode())
    with pytest.raises(CheckpointError, match="ckpt.json"):
        read_sidecar(st_path)


# ----------------------------------------------------------------------------------- other architectures
@pytest.fixture(scope="module")
def wide_model_name(tmp_path_factory, tiny_model_name):
    """The tiny config with a wider vision tower: same key names, other shapes."""
    name = "wiseft-test-tiny-wide"
    if name not in open_clip.list_models():
        cfg = json.loads((FIXTURES / f"{tiny_model_name}.json").read_text())
        cfg["vision_cfg"]["width"] = 48
        path = tmp_path_factory.mktemp("cfg") / f"{name}.json"
        path.write_text(json.dumps(cfg))
        open_clip.add_model_config(path)
    return name


def _classifier(model_name: str, seed: int):
    from wiseft.models import ClassificationHead, ClassifierInfo, ImageClassifier

    torch.manual_seed(seed)
    clip = open_clip.create_model(model_name, pretrained=None)
    info = ClassifierInfo(model_name=model_name, pretrained=None, classnames=["a", "b", "c"], template_set="simple",
                          mean=(0.5,) * 3, std=(0.25,) * 3, image_size=(32, 32))
    return ImageClassifier(clip.visual, ClassificationHead(torch.randn(3, 16)), info=info).eval()


def test_two_checkpoints_of_different_architectures_are_not_interpolated(tmp_path, tiny_model_name,
                                                                         wide_model_name):
    from wiseft.evaluation import lerp_settings

    save_classifier(_classifier(tiny_model_name, 0), tmp_path / "zeroshot", {})
    save_classifier(_classifier(wide_model_name, 1), tmp_path / "finetuned", {})
    a, _ = load_classifier(tmp_path / "zeroshot")
    b, _ = load_classifier(tmp_path / "finetuned")
    theta0, theta1 = clone_state_dict(a), clone_state_dict(b)
    with pytest.raises(IncompatibleStateError, match=r"key 'image_encoder\.[^']+': shape"):
        check_compatible(theta0, theta1)
    with pytest.raises(IncompatibleStateError, match="different model size"):
        lerp_settings(theta0, theta1, [0.0, 0.5, 1.0])


def test_a_different_number_of_classes_is_named(tmp_path, tiny_model_name):
    from wiseft.models import ClassificationHead

    a = _classifier(tiny_model_name, 0)
    b = _classifier(tiny_model_name, 0)
    b.head = ClassificationHead(torch.randn(5, 16))
    with pytest.raises(IncompatibleStateError, match="'head.weight'.*number of classes"):
        check_compatible(clone_state_dict(a), clone_state_dict(b))


def test_tensors_of_another_architecture_behind_a_matching_sidecar(tmp_path, tiny_model_name, wide_model_name):
    """A forger copies the wide model's tensors under the tiny model's sidecar and fixes the hash."""
    from wiseft.io import sha256_file

    save_classifier(_classifier(tiny_model_name, 0), tmp_path / "a", {})
    save_classifier(_classifier(wide_model_name, 0), tmp_path / "b", {})
    st_a, js_a = checkpoint_paths(tmp_path / "a")
    shutil.copyfile(checkpoint_paths(tmp_path / "b")[0], st_a)
    meta = json.loads(js_a.read_text())
    meta["tensors_sha256"] = sha256_file(st_a)
    js_a.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"a.safetensors: key 'image_encoder\.[^']+' has shape"):
        load_classifier(tmp_path / "a")
