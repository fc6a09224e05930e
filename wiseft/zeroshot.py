"""Zero-shot classifiers: a linear head built from prompt templates, as in the paper (App. D.1).

For each class, every template is encoded by the text tower and L2-normalised, the embeddings are averaged
and re-normalised (what ``open_clip.build_zero_shot_classifier`` computes); the class vectors are stacked and
multiplied by ``logit_scale.exp()`` so that the temperature lives in the head, and the bias is zero. Image
features are L2-normalised by the head. The text tower is dropped once the head exists.

:func:`encode_prompts` encodes all class × template prompts at once, in large batches, under
``torch.inference_mode``. For open_clip's ``CLIP`` text tower (causal attention, features read at the
end-of-text token) it also cuts every batch to its longest prompt: the tokens after the end-of-text token are
padding that, under a causal mask, no earlier token attends to, so the features are unchanged while the work
drops by the ratio of the context length (77) to the prompt length (≈10 tokens for ImageNet's prompts). Prompts
are sorted by length so that each batch is cut as short as it can be. The first batch is checked once against
``model.encode_text`` on full-length tokens; any other text tower is encoded at full length.

Example:
    >>> from wiseft.zeroshot import build_zeroshot_classifier, imagenet_classnames
    >>> clf = build_zeroshot_classifier("ViT-B-16", "openai", imagenet_classnames(),
    ...                                 "openai_imagenet")          # doctest: +SKIP
"""

from __future__ import annotations

import logging
from typing import Sequence

import torch
import torch.nn.functional as F

from .device import autocast, resolve_device
from .errors import WiseftError
from .models import ClassificationHead, ClassifierInfo, ClipBundle, ImageClassifier, create_clip
from .templates import get_templates, validate_template

log = logging.getLogger(__name__)

__all__ = ["imagenet_classnames", "zeroshot_head", "encode_prompts", "classifier_from_clip",
           "build_zeroshot_classifier"]


def imagenet_classnames() -> list[str]:
    """The 1000 OpenAI ImageNet class names, from open_clip (``IMAGENET_CLASSNAMES``)."""
    import open_clip

    return list(open_clip.IMAGENET_CLASSNAMES)


def _resolve_templates(templates: str | Sequence[str]) -> tuple[list[str], str | None]:
    if isinstance(templates, str):
        return get_templates(templates), templates
    items = [validate_template(t, f"templates[{i}]") for i, t in enumerate(templates)]
    if not items:
        raise WiseftError("no templates given; pass a template set name (see wiseft.templates.list_templates())")
    return items, None


@torch.no_grad()
def zeroshot_head(model: torch.nn.Module, tokenizer, classnames: Sequence[str], templates: Sequence[str],
                  device: str | torch.device = "cpu", num_classes_per_batch: int | None = 10,
                  precision: str = "fp32") -> ClassificationHead:
    """The zero-shot head of a CLIP model: normalised mean text embeddings × ``logit_scale.exp()``, bias 0.

    Args:
        model: an open_clip CLIP model (text tower present), on ``device``.
        tokenizer: its tokenizer.
        classnames: the class names, in label order.
        templates: ``{}`` template strings (or callables ``f(classname) -> str``).
        device: where the text is encoded.
        num_classes_per_batch: bounds a forward pass to ``num_classes_per_batch × len(templates)`` prompts
            (memory vs speed); ``None`` encodes every prompt in one pass.
        precision: ``fp32``, ``amp_bf16`` or ``amp_fp16`` (autocast while encoding; the head is float32).

    Returns:
        A :class:`~wiseft.models.ClassificationHead` with weights ``[num_classes, dim]`` in float32.
    """
    if not classnames:
        raise WiseftError("no class names given for the zero-shot head")
    templates = list(templates)
    if not templates:
        raise WiseftError("no templates given for the zero-shot head")
    texts = [t(c) if callable(t) else t.format(c) for c in classnames for t in templates]
    batch = len(texts) if num_classes_per_batch is None else max(1, num_classes_per_batch * len(templates))
    was_training = model.training
    model.eval()
    try:
        emb = encode_prompts(model, tokenizer, texts, device=device, batch_size=batch, precision=precision)
    finally:
        model.train(was_training)
    emb = F.normalize(emb.view(len(classnames), len(templates), -1).mean(dim=1), dim=-1)
    weights = (emb * model.logit_scale.exp().to(emb.device)).float()  # [C, D]; temperature folded into W
    return ClassificationHead(weights, bias=None, normalize=True)


def encode_prompts(model: torch.nn.Module, tokenizer, texts: Sequence[str], *, device: str | torch.device = "cpu",
                   batch_size: int = 1024, precision: str = "fp32") -> torch.Tensor:
    """L2-normalised text features ``[len(texts), dim]`` (float32, on ``device``), in the order of ``texts``.

    Prompts are encoded ``batch_size`` at a time under ``torch.inference_mode``; for open_clip's ``CLIP`` text
    tower each batch is cut to its longest prompt (see the module docstring), with the prompts sorted by length.

    Args:
        model: an open_clip model with a text tower, on ``device``, in eval mode.
        tokenizer: its tokenizer.
        texts: the prompts.
        device: where to encode.
        batch_size: prompts per forward pass.
        precision: ``fp32``, ``amp_bf16`` or ``amp_fp16``.
    """
    dev = resolve_device(device)
    tokens = tokenizer(list(texts))
    lengths = _prompt_lengths(model, tokens)
    order = torch.argsort(lengths, stable=True) if lengths is not None else torch.arange(len(tokens))
    out: torch.Tensor | None = None
    with torch.inference_mode():
        if lengths is not None and not _truncation_matches(model, tokens[order[:2]].to(dev)):
            log.warning("%s: the text features of cut prompts differ from encode_text's; encoding at full length",
                        type(model).__name__)
            lengths = None
        for start in range(0, len(tokens), max(1, int(batch_size))):
            idx = order[start:start + batch_size]
            batch = tokens[idx]
            if lengths is not None:
                batch = batch[:, :int(lengths[idx].max())]
            with autocast(precision, dev):
                feats = _encode_text(model, batch.to(dev), cut=lengths is not None)
            feats = F.normalize(feats.float(), dim=-1)
            if out is None:
                out = torch.empty(len(tokens), feats.shape[-1], device=dev)
            out[idx.to(dev)] = feats
    return out.clone()  # a normal tensor, usable outside inference mode


def _prompt_lengths(model: torch.nn.Module, tokens: torch.Tensor) -> torch.Tensor | None:
    """Tokens each prompt needs (up to its end-of-text token), or ``None`` when cutting is not exact."""
    needed = ("token_embedding", "positional_embedding", "transformer", "ln_final", "attn_mask", "text_pool_type")
    if not all(hasattr(model, name) for name in needed) or model.text_pool_type not in ("argmax", "eos", "first"):
        return None
    mask = model.attn_mask
    if mask is None or mask.shape != (tokens.shape[1], tokens.shape[1]):
        return None
    causal = torch.ones(mask.shape, dtype=torch.bool, device=mask.device).triu(1)
    if not (torch.equal(torch.isneginf(mask), causal) and bool((mask[~causal] == 0).all())):
        return None  # features read at the end token see the padding unless the mask is causal
    end = tokens.argmax(dim=-1)  # CLIP's end-of-text token has the highest id
    eos = getattr(model, "text_eos_id", None)
    if model.text_pool_type == "eos" and eos is not None:
        end = torch.maximum(end, (tokens == eos).int().argmax(dim=-1))
    return end + 1


def _encode_text(model: torch.nn.Module, tokens: torch.Tensor, cut: bool) -> torch.Tensor:
    """``model.encode_text(tokens)``; with ``cut``, for tokens shorter than the context (open_clip's
    ``CLIP.encode_text`` with the positional embedding and causal mask cut to the tokens' length)."""
    if not cut:
        return model.encode_text(tokens)
    n = tokens.shape[1]
    cast_dtype = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens).to(cast_dtype) + model.positional_embedding[:n].to(cast_dtype)
    x = model.ln_final(model.transformer(x, attn_mask=model.attn_mask[:n, :n]))
    rows = torch.arange(x.shape[0], device=x.device)
    if model.text_pool_type == "first":
        x = x[:, 0]
    elif model.text_pool_type == "eos" and getattr(model, "text_eos_id", None) is not None:
        x = x[rows, (tokens == model.text_eos_id).int().argmax(dim=-1)]
    else:
        x = x[rows, tokens.argmax(dim=-1)]
    proj = model.text_projection
    if proj is None:
        return x
    return proj(x) if isinstance(proj, torch.nn.Module) else x @ proj


def _truncation_matches(model: torch.nn.Module, tokens: torch.Tensor) -> bool:
    """Whether cut prompts give ``encode_text``'s features (a once-per-call guard against open_clip changes)."""
    lengths = _prompt_lengths(model, tokens.cpu())
    full = F.normalize(model.encode_text(tokens).float(), dim=-1)
    cut = F.normalize(_encode_text(model, tokens[:, :int(lengths.max())], cut=True).float(), dim=-1)
    return bool(torch.allclose(full, cut, rtol=1e-4, atol=1e-5))


def classifier_from_clip(bundle: ClipBundle, classnames: Sequence[str], templates: str | Sequence[str],
                         device: str | torch.device | None = None) -> ImageClassifier:
    """Build the zero-shot :class:`ImageClassifier` from a loaded CLIP bundle; the text tower is dropped.

    The bundle's model gives up its image tower to the classifier (no copy), so do not reuse the bundle's
    model afterwards.
    """
    items, set_name = _resolve_templates(templates)
    model = bundle.model
    device = device if device is not None else next(model.parameters()).device
    head = zeroshot_head(model, bundle.tokenizer, classnames, items, device=device)
    info = ClassifierInfo(model_name=bundle.model_name, pretrained=bundle.pretrained, classnames=list(classnames),
                          template_set=set_name, mean=bundle.mean, std=bundle.std, image_size=bundle.image_size)
    classifier = ImageClassifier(model.visual, head.to(device), info=info)
    _drop_text_tower(model)
    return classifier.eval()


def _drop_text_tower(model: torch.nn.Module) -> None:
    """Free the text tower's memory: the classifier only needs the image tower."""
    for name in ("transformer", "token_embedding", "ln_final", "text"):
        if hasattr(model, name):
            delattr(model, name)


def build_zeroshot_classifier(model_name: str, pretrained: str | None, classnames: Sequence[str],
                              templates: str | Sequence[str], device: str | torch.device = "cpu"
                              ) -> ImageClassifier:
    """Create a CLIP model and return its zero-shot image classifier (float32, eval mode).

    Args:
        model_name: open_clip model name.
        pretrained: open_clip tag, weights file, ``world:<name>`` or ``None`` (random weights; tests).
        classnames: class names in label order (:func:`imagenet_classnames` for ImageNet).
        templates: a template set name (``"openai_imagenet"``, ``"file:prompts.txt"``) or a list of templates.
        device: where to build the classifier.
    """
    bundle = create_clip(model_name, pretrained=pretrained, device=device)
    return classifier_from_clip(bundle, classnames, templates, device=device)
