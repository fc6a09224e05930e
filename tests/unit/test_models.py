"""create_clip, ClassificationHead and ImageClassifier on a tiny random open_clip model (offline)."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from wiseft.errors import CheckpointError, WiseftError
from wiseft import models
from wiseft.models import (ClassificationHead, ImageClassifier, create_clip, register_pretrained_resolver,
                           resolve_pretrained)


def test_create_clip_random_bundle(tiny_model_name):
    bundle = create_clip(tiny_model_name, pretrained=None)
    assert bundle.image_size == (32, 32)
    assert len(bundle.mean) == 3 and len(bundle.std) == 3
    assert all(p.dtype == torch.float32 for p in bundle.model.parameters())
    assert not bundle.model.training
    image = Image.new("RGB", (48, 40), color=(120, 30, 200))
    assert bundle.preprocess_eval(image).shape == (3, 32, 32)
    assert bundle.preprocess_train(image).shape == (3, 32, 32)
    assert bundle.tokenizer(["a photo of a cat."]).shape[0] == 1


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_create_clip_from_local_file_casts_to_fp32(tiny_model_name, tmp_path, suffix):
    source = create_clip(tiny_model_name).model
    state = {k: v.half() for k, v in source.state_dict().items()}  # as OpenAI weights arrive on CUDA
    path = tmp_path / f"weights{suffix}"
    if suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save(state, path)
    bundle = create_clip(tiny_model_name, pretrained=str(path))
    loaded = bundle.model.state_dict()
    assert all(v.dtype == torch.float32 for v in loaded.values() if v.is_floating_point())
    for key, value in state.items():
        assert torch.equal(loaded[key], value.float()), key


def test_pt_with_pickled_object_is_refused(tiny_model_name, tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": types.SimpleNamespace(a=1)}, path)
    with pytest.raises(CheckpointError, match="weights_only=True"):
        create_clip(tiny_model_name, pretrained=str(path))


def test_classifier_checkpoint_as_pretrained_is_explained(tiny_model_name, make_classifier, tmp_path):
    path = tmp_path / "clf.safetensors"
    save_file({k: v.contiguous() for k, v in make_classifier().state_dict().items()}, str(path))
    with pytest.raises(CheckpointError, match="load_classifier"):
        create_clip(tiny_model_name, pretrained=str(path))


def test_preprocess_override(tiny_model_name):
    bundle = create_clip(tiny_model_name, preprocess_cfg={"mean": (0.5, 0.5, 0.5), "std": (0.2, 0.2, 0.2)})
    assert bundle.mean == (0.5, 0.5, 0.5) and bundle.std == (0.2, 0.2, 0.2)
    white = bundle.preprocess_eval(Image.new("RGB", (32, 32), color=(255, 255, 255)))
    assert torch.allclose(white, torch.full_like(white, 2.5), atol=1e-5)


def test_missing_file_and_unknown_model(tiny_model_name, tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        create_clip(tiny_model_name, pretrained=str(tmp_path / "nope.safetensors"))
    with pytest.raises(WiseftError, match="unknown open_clip model"):
        create_clip("ViT-B-3", pretrained=None)
    with pytest.raises(WiseftError, match="precision"):
        create_clip(tiny_model_name, precision="fp8")


def test_registered_prefix_delegates_to_its_resolver(tiny_model_name, tmp_path, monkeypatch):
    path = tmp_path / "mine.safetensors"
    save_file(create_clip(tiny_model_name).model.state_dict(), str(path))
    calls = []
    monkeypatch.setattr(models, "_PRETRAINED_RESOLVERS", dict(models._PRETRAINED_RESOLVERS))
    register_pretrained_resolver("mine", lambda tag: calls.append(tag) or path)
    assert resolve_pretrained("mine:small") == ("file", path)
    bundle = create_clip(tiny_model_name, pretrained="mine:small")
    assert calls == ["mine:small", "mine:small"]
    assert bundle.pretrained == "mine:small"
    assert resolve_pretrained("other:small") == ("tag", "other:small")  # an unregistered prefix is an open_clip tag


def test_a_resolver_module_that_is_missing_or_registers_nothing_is_named(monkeypatch):
    monkeypatch.setattr(models, "_PRETRAINED_RESOLVERS", {"gone": "wiseft_no_such_module"})
    with pytest.raises(WiseftError, match="'gone:x' needs the module wiseft_no_such_module, which is not installed"):
        resolve_pretrained("gone:x")
    monkeypatch.setattr(models, "_PRETRAINED_RESOLVERS", {"odd": "json"})
    with pytest.raises(WiseftError, match="json did not register a resolver for pretrained 'odd:' values"):
        resolve_pretrained("odd:x")


def test_models_does_not_import_the_world_which_registers_itself_when_first_needed():
    code = ("import sys, wiseft.models as m; assert 'wiseft.world' not in sys.modules; "
            "assert m._PRETRAINED_RESOLVERS['world'] == 'wiseft.world'; m.ensure_model_config('wiseft-mini-clip'); "
            "import wiseft.world as w; assert m._PRETRAINED_RESOLVERS['world'] is w.resolve_world_pretrained")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.parametrize("value, kind", [(None, "none"), ("openai", "tag"), ("laion2b_s34b_b79k", "tag")])
def test_resolve_pretrained_table(value, kind):
    assert resolve_pretrained(value)[0] == kind


def test_head_normalises_inputs_and_has_zero_bias():
    head = ClassificationHead(torch.randn(4, 8))
    x = torch.randn(3, 8)
    assert torch.equal(head.bias, torch.zeros(4))
    assert torch.allclose(head(x), head(7.0 * x), atol=1e-6)
    raw = ClassificationHead(torch.randn(4, 8), normalize=False)
    assert not torch.allclose(raw(x), raw(7.0 * x))


def test_image_classifier_keys_and_outputs(make_classifier):
    clf = make_classifier(num_classes=3)
    keys = list(clf.state_dict())
    assert {"head.weight", "head.bias"} <= set(keys)
    assert all(k.startswith(("image_encoder.", "head.")) for k in keys)
    images = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(clf(images), clf.head(clf.encode(images)))
        feats = clf.features(images)
    assert torch.allclose(feats.norm(dim=-1), torch.ones(4), atol=1e-6)
    assert clf.num_classes == 3
    assert isinstance(clf, ImageClassifier)
