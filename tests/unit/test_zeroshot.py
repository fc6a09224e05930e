"""The zero-shot head equals a hand computation from encode_text, as in the paper (App. D.1)."""

from __future__ import annotations

import open_clip
import pytest
import torch

from wiseft.errors import WiseftError
from wiseft.models import ImageClassifier, create_clip
from wiseft.zeroshot import (_prompt_lengths, build_zeroshot_classifier, classifier_from_clip, encode_prompts,
                             imagenet_classnames, zeroshot_head)

CLASSES = ["cat", "dog", "airplane", "orange"]
TEMPLATES = ["a photo of a {}.", "a blurry photo of the {}.", "art of a {}."]


def _hand_head(model, tokenizer, classnames, templates):
    rows = []
    with torch.no_grad():
        for c in classnames:
            emb = model.encode_text(tokenizer([t.format(c) for t in templates]))
            emb = emb / emb.norm(dim=-1, keepdim=True)
            mean = emb.mean(dim=0)
            rows.append(mean / mean.norm())
        return torch.stack(rows) * model.logit_scale.exp()


def test_head_equals_hand_computation(tiny_model_name):
    torch.manual_seed(0)
    bundle = create_clip(tiny_model_name)
    expected = _hand_head(bundle.model, bundle.tokenizer, CLASSES, TEMPLATES)
    head = zeroshot_head(bundle.model, bundle.tokenizer, CLASSES, TEMPLATES, num_classes_per_batch=3)
    assert head.weight.shape == (len(CLASSES), bundle.model.visual.output_dim)
    assert torch.allclose(head.weight, expected, rtol=1e-5, atol=1e-6)
    assert torch.equal(head.bias, torch.zeros(len(CLASSES)))
    assert head.normalize


def test_classifier_logits_are_scaled_cosines_and_text_tower_is_dropped(tiny_model_name):
    torch.manual_seed(1)
    bundle = create_clip(tiny_model_name)
    images = torch.randn(5, 3, 32, 32)
    with torch.no_grad():
        img = bundle.model.encode_image(images, normalize=True)
        expected = img @ _hand_head(bundle.model, bundle.tokenizer, CLASSES, TEMPLATES).T
    clf = classifier_from_clip(bundle, CLASSES, TEMPLATES)
    assert isinstance(clf, ImageClassifier)
    with torch.no_grad():
        assert torch.allclose(clf(images), expected, rtol=1e-4, atol=1e-4)
    assert not hasattr(bundle.model, "transformer") and not hasattr(bundle.model, "token_embedding")
    assert not any("token_embedding" in k or "text_projection" in k for k in clf.state_dict())
    assert clf.info.classnames == CLASSES and clf.info.template_set is None


def test_build_from_named_set_records_it(tiny_model_name):
    torch.manual_seed(2)
    clf = build_zeroshot_classifier(tiny_model_name, None, ["airport", "dam"], "fmow")
    assert clf.info.template_set == "fmow" and clf.info.model_name == tiny_model_name
    assert clf.num_classes == 2


def test_errors(tiny_model_name):
    bundle = create_clip(tiny_model_name)
    with pytest.raises(WiseftError, match="exactly one"):
        classifier_from_clip(bundle, CLASSES, ["no slot"])
    with pytest.raises(WiseftError, match="no class names"):
        zeroshot_head(bundle.model, bundle.tokenizer, [], TEMPLATES)


def test_imagenet_classnames_come_from_open_clip():
    names = imagenet_classnames()
    assert len(names) == 1000 and names == list(open_clip.IMAGENET_CLASSNAMES)


PROMPTS = ["a photo of a cat.", "itap of my extremely large and very fluffy dog.", "art.", "a dam", "x " * 30]


def test_encode_prompts_cut_to_length_equals_encode_text_in_order(tiny_model_name):
    torch.manual_seed(3)
    bundle = create_clip(tiny_model_name)
    model, tok = bundle.model, bundle.tokenizer
    lengths = _prompt_lengths(model, tok(PROMPTS))
    assert lengths is not None and len(set(lengths.tolist())) > 2  # the prompts are cut to different lengths
    with torch.no_grad():
        expected = torch.nn.functional.normalize(model.encode_text(tok(PROMPTS)), dim=-1)
    for batch_size in (1, 2, 16):
        got = encode_prompts(model, tok, PROMPTS, batch_size=batch_size)
        assert not got.is_inference()
        assert torch.allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_encode_prompts_full_length_when_attention_is_not_causal(tiny_model_name):
    torch.manual_seed(4)
    bundle = create_clip(tiny_model_name)
    model, tok = bundle.model, bundle.tokenizer
    model.attn_mask = torch.zeros_like(model.attn_mask)  # every token sees the padding: cutting would change it
    assert _prompt_lengths(model, tok(PROMPTS)) is None
    with torch.no_grad():
        expected = torch.nn.functional.normalize(model.encode_text(tok(PROMPTS)), dim=-1)
    assert torch.allclose(encode_prompts(model, tok, PROMPTS, batch_size=2), expected, rtol=1e-5, atol=1e-6)


def test_head_equals_open_clip_builder_with_callable_templates(tiny_model_name):
    torch.manual_seed(5)
    bundle = create_clip(tiny_model_name)
    templates = list(open_clip.OPENAI_IMAGENET_TEMPLATES[:7])  # lambdas, as open_clip ships them
    ref = open_clip.build_zero_shot_classifier(bundle.model, bundle.tokenizer, CLASSES, templates).T
    head = zeroshot_head(bundle.model, bundle.tokenizer, CLASSES, templates, num_classes_per_batch=None)
    assert torch.allclose(head.weight, ref * bundle.model.logit_scale.exp(), rtol=1e-5, atol=1e-6)
