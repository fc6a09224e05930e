"""Pretrained weights like data: wiseft's cache (``$WISEFT_CACHE/weights``), no network for a cached tag, and one
fast line with the ways out when a tag is neither cached nor reachable. The network is blocked in every test
(an unreachable proxy); a fake tag of the tiny test model stands in for a real open_clip tag."""

from __future__ import annotations

import time

import pytest
import torch
from safetensors.torch import save_file

from wiseft.cli import main
from wiseft.models import create_clip
from wiseft.weights_cache import WeightsUnavailable, ensure_weights, find_cached, weights_dir, weights_source

FAKE_REPO = "wiseft-tests/tiny-clip"
FAKE_TAG = "fake_tag"


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No network (every proxy points at a closed port), an empty wiseft cache and an empty Hugging Face cache."""
    from huggingface_hub import constants

    for var in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy", "ALL_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    for var in ("NO_PROXY", "no_proxy", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WISEFT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-hub"))
    return tmp_path


@pytest.fixture
def fake_tag(tiny_model_name, monkeypatch):
    """Register ``fake_tag`` for the tiny model, published on the hub as ``wiseft-tests/tiny-clip``, trained with
    its own normalisation (so the test can see the tag's preprocessing applied)."""
    from open_clip import pretrained

    entry = {FAKE_TAG: {"hf_hub": f"{FAKE_REPO}/", "mean": (0.1, 0.2, 0.3), "std": (0.4, 0.5, 0.6),
                        "interpolation": "bicubic", "resize_mode": "shortest"}}
    monkeypatch.setitem(pretrained._PRETRAINED, tiny_model_name, entry)
    return tiny_model_name


def _put_in_hub_cache(folder, model_name, seed: int = 3):
    """Write the tiny model's weights where the hub client would have put ``open_clip_model.safetensors``."""
    import open_clip

    torch.manual_seed(seed)
    state = open_clip.create_model(model_name, pretrained=None).state_dict()
    repo = folder / ("models--" + FAKE_REPO.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    snap = repo / "snapshots" / ("0" * 40)
    snap.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in state.items()}, snap / "open_clip_model.safetensors")
    return snap / "open_clip_model.safetensors", state


def test_the_cache_follows_wiseft_cache(offline):
    assert weights_dir() == offline / "cache" / "weights"


def test_a_cached_tag_loads_without_the_network_and_with_the_tags_preprocessing(offline, fake_tag):
    path, state = _put_in_hub_cache(weights_dir(), fake_tag)
    assert find_cached(fake_tag, FAKE_TAG) == path
    bundle = create_clip(fake_tag, pretrained=FAKE_TAG)
    assert bundle.pretrained == FAKE_TAG
    assert bundle.mean == pytest.approx((0.1, 0.2, 0.3)) and bundle.std == pytest.approx((0.4, 0.5, 0.6))
    loaded = bundle.model.state_dict()
    assert all(torch.equal(loaded[k].float(), v.float()) for k, v in state.items())


def test_a_hugging_face_cache_elsewhere_is_used_too(offline, fake_tag):
    from huggingface_hub import constants

    path, _ = _put_in_hub_cache(offline / "hf-hub", fake_tag)
    assert constants.HF_HUB_CACHE == str(offline / "hf-hub")
    assert find_cached(fake_tag, FAKE_TAG) == path


@pytest.mark.parametrize("hub_offline", [False, True])
def test_a_missing_tag_fails_fast_in_one_line_with_the_ways_out(offline, fake_tag, monkeypatch, hub_offline):
    if hub_offline:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(WeightsUnavailable) as e:
        create_clip(fake_tag, pretrained=FAKE_TAG)
    assert time.monotonic() - start < 5
    msg = str(e.value)
    assert "\n" not in msg
    for needle in (repr(fake_tag), repr(FAKE_TAG), str(weights_dir()), str(offline / "hf-hub"),
                   f"wiseft models download {fake_tag} {FAKE_TAG}", "HF_HUB_OFFLINE=1",
                   "model.pretrained=/path/file.safetensors"):
        assert needle in msg, needle
    assert ("HF_HUB_OFFLINE is set" in msg) == hub_offline
    assert ("cannot be reached" in msg) != hub_offline


def test_an_unknown_tag_lists_the_known_ones(fake_tag):
    with pytest.raises(Exception, match=f"no pretrained weights 'nope'.*{FAKE_TAG}"):
        weights_source(fake_tag, "nope")


def test_models_download_uses_the_cache_and_says_where(offline, fake_tag, capsys):
    path, _ = _put_in_hub_cache(weights_dir(), fake_tag)
    assert ensure_weights(fake_tag, FAKE_TAG) == path
    assert main(["models", "download", fake_tag, FAKE_TAG]) == 0
    assert str(path) in capsys.readouterr().out


def test_models_download_offline_is_one_error_line(offline, fake_tag, capsys):
    assert main(["models", "download", fake_tag, FAKE_TAG]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot be reached" in err


def test_models_list_names_every_profiles_model_and_its_cache_state(offline, capsys):
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    for needle in ("ViT-B-16", "ViT-L-14-336", "ViT-B-32", "openai", "imagenet-vitb16", "cifar10-vitb32",
                   "not cached", "offline world", str(weights_dir())):
        assert needle in out, needle


def test_a_quick_gelu_mismatch_is_still_reported(caplog):
    """open_clip warned about it when it loaded tags itself; loading the cached file must not lose that."""
    import logging

    from wiseft.models import _warn_quick_gelu

    with caplog.at_level(logging.WARNING, logger="wiseft.models"):
        _warn_quick_gelu("ViT-B-32", "openai")
        _warn_quick_gelu("ViT-B-32-quickgelu", "openai")
    assert len(caplog.records) == 1 and "ViT-B-32-quickgelu matches them" in caplog.text
