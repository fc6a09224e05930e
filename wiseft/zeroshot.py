"""Zero-shot classifiers: a linear head built from prompt templates, as in the paper (App. D.1).

For each class, every template is encoded by the text tower and L2-normalised, the embeddings are averaged
and re-normalised (``open_clip.build_zero_shot_classifier``); the class vectors are stacked and multiplied by
``logit_scale.exp()`` so that the temperature lives in the head, and the bias is zero. Image features are
L2-normalised by the head. The text tower is dropped once the head exists.

Example:
    >>> from wiseft.zeroshot import build_zeroshot_classifier, imagenet_classnames
    >>> clf = build_zeroshot_classifier("ViT-B-16", "openai", imagenet_classnames(),
    ...                                 "openai_imagenet")          # doctest: +SKIP
"""

from __future__ import annotations

import logging
from typing import Sequence

import torch

from .errors import WiseftError
from .models import ClassificationHead, ClassifierInfo, ClipBundle, ImageClassifier, create_clip
from .templates import get_templates, validate_template

log = logging.getLogger(__name__)

__all__ = ["imagenet_classnames", "zeroshot_head", "classifier_from_clip", "build_zeroshot_classifier"]


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
                  device: str | torch.device = "cpu", num_classes_per_batch: int | None = 10) -> ClassificationHead:
    """The zero-shot head of a CLIP model: normalised mean text embeddings × ``logit_scale.exp()``, bias 0.

    Args:
        model: an open_clip CLIP model (text tower present), on ``device``.
        tokenizer: its tokenizer.
        classnames: the class names, in label order.
        templates: ``{}`` template strings.
        device: where the text is encoded.
        num_classes_per_batch: classes encoded per forward pass (memory vs speed).

    Returns:
        A :class:`~wiseft.models.ClassificationHead` with weights ``[num_classes, dim]`` in float32.
    """
    import open_clip

    if not classnames:
        raise WiseftError("no class names given for the zero-shot head")
    was_training = model.training
    model.eval()
    weights = open_clip.build_zero_shot_classifier(model, tokenizer, list(classnames), list(templates),
                                                   num_classes_per_batch=num_classes_per_batch, device=device)
    model.train(was_training)
    weights = (weights.T * model.logit_scale.exp()).float()  # [C, D]; temperature folded into W
    return ClassificationHead(weights, bias=None, normalize=True)


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
