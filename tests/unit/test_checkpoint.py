"""safetensors + sidecar checkpoints: bit-exact round trip, pickle refusal, clear errors on mismatch."""

from __future__ import annotations

import json
import pickle

import pytest
import torch
from safetensors.torch import save_file

from wiseft.checkpoint import (FORMAT, checkpoint_paths, convert_to_safetensors, load_classifier, read_state_dict,
                               save_classifier)
from wiseft.errors import CheckpointError
from wiseft.io import sha256_file


def test_round_trip_is_bit_exact(make_classifier, tmp_path):
    clf = make_classifier(num_classes=4, seed=3)
    st, js = save_classifier(clf, tmp_path / "ckpt" / "zeroshot",
                             {"alpha": 0.5, "provenance": {"parents": ["a.safetensors"]}, "lr": 3e-5})
    assert st.name == "zeroshot.safetensors" and js.name == "zeroshot.json"
    assert sorted(p.name for p in st.parent.iterdir()) == ["zeroshot.json", "zeroshot.safetensors"]  # no temp files
    loaded, meta = load_classifier(tmp_path / "ckpt" / "zeroshot.safetensors")
    for key, value in clf.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    images = torch.randn(6, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(images), clf(images))
    assert meta["format"] == FORMAT and meta["alpha"] == 0.5
    assert meta["classnames"] == clf.info.classnames and len(meta["classnames_sha256"]) == 64
    assert meta["tensors_sha256"] == sha256_file(st)
    assert meta["normalization"] == {"mean": [0.5] * 3, "std": [0.25] * 3} and meta["image_size"] == [32, 32]
    assert set(meta["provenance"]) >= {"git_commit", "time", "parents"}
    assert meta["provenance"]["parents"] == ["a.safetensors"]
    assert meta["extra"] == {"lr": 3e-5}
    assert loaded.info.classnames == clf.info.classnames


@pytest.mark.parametrize("kind", ["torch_save", "raw_pickle"])
def test_pickles_are_refused_with_conversion_hint(make_classifier, tmp_path, kind):
    path = tmp_path / "model.safetensors"
    state = make_classifier().state_dict()
    if kind == "torch_save":
        torch.save(state, path)
    else:
        path.write_bytes(pickle.dumps({k: v.numpy() for k, v in state.items()}, protocol=4))
    with pytest.raises(CheckpointError, match="weights_only=True") as info:
        read_state_dict(path)
    assert str(path) in str(info.value) and "safetensors" in str(info.value)


def test_truncated_file_names_the_file(make_classifier, tmp_path):
    st, _ = save_classifier(make_classifier(), tmp_path / "clf", {})
    data = st.read_bytes()
    st.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="clf.safetensors"):
        read_state_dict(st)
    st.write_bytes(data[:5])
    with pytest.raises(CheckpointError, match="truncated"):
        read_state_dict(st)


def test_sidecar_that_does_not_match_the_tensors(make_classifier, tmp_path):
    save_classifier(make_classifier(seed=0), tmp_path / "a", {})
    st_b, _ = save_classifier(make_classifier(seed=1), tmp_path / "b", {})
    st_a, js_a = checkpoint_paths(tmp_path / "a")
    st_a.write_bytes(st_b.read_bytes())
    with pytest.raises(CheckpointError, match="sha256"):
        load_classifier(tmp_path / "a")


def test_mismatched_architecture_names_the_key(make_classifier, tmp_path):
    clf = make_classifier()
    st, js = save_classifier(clf, tmp_path / "clf", {})
    state = {k: v.contiguous() for k, v in clf.state_dict().items() if k != "image_encoder.proj"}
    save_file(state, str(st))
    meta = json.loads(js.read_text())
    meta["tensors_sha256"] = sha256_file(st)
    js.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="'image_encoder.proj' is missing"):
        load_classifier(st)
    state = dict(clf.state_dict(), **{"image_encoder.proj": torch.zeros(32, 8)})
    save_file({k: v.contiguous() for k, v in state.items()}, str(st))
    meta["tensors_sha256"] = sha256_file(st)
    js.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="'image_encoder.proj' has shape"):
        load_classifier(st)


def test_missing_sidecar_and_fields(make_classifier, tmp_path):
    clf = make_classifier()
    st, js = save_classifier(clf, tmp_path / "clf", {})
    js.unlink()
    with pytest.raises(CheckpointError, match="sidecar"):
        load_classifier(st)
    clf.info = None
    with pytest.raises(CheckpointError, match="model_name"):
        save_classifier(clf, tmp_path / "bare", {"alpha": 0.0})


def test_convert_trusted_state_dict(make_classifier, tmp_path):
    state = make_classifier().state_dict()
    torch.save(state, tmp_path / "old.pt")
    out = convert_to_safetensors(tmp_path / "old.pt", tmp_path / "new.safetensors")
    back = read_state_dict(out)
    assert all(torch.equal(back[k], v) for k, v in state.items())


@pytest.mark.parametrize("first_bytes,length", [(b"\x80", 0x0E80), (b"PK", 0x4B50)])
def test_a_safetensors_file_whose_header_length_looks_like_a_pickle_is_read(tmp_path, first_bytes, length):
    # The 8-byte header length comes first: 0x..80 or 0x..4b50 ("PK") is an ordinary length, not a pickle.
    path = tmp_path / "w.safetensors"
    tensors = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3)}
    save_file(tensors, str(path), metadata={"pad": ""})
    base = int.from_bytes(path.read_bytes()[:8], "little")
    for pad in range(length - base - 16, length - base + 16):  # the header is padded to a multiple of 8 bytes
        save_file(tensors, str(path), metadata={"pad": "x" * pad})
        if path.read_bytes()[: len(first_bytes)] == first_bytes:
            break
    assert path.read_bytes()[: len(first_bytes)] == first_bytes
    assert torch.equal(read_state_dict(path)["w"], tensors["w"])
