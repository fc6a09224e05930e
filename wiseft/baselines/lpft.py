"""LP-FT: fine-tune end to end starting from a trained linear probe's head (Kumar et al., ICLR 2022).

Kumar et al. argue that fine-tuning distorts the pre-trained features most when the head starts far from a
good classifier, because early large gradients flow through the encoder; training a linear probe first (LP) and
then fine-tuning everything from it (FT) keeps the features and improves robustness under shift. The WiSE-FT
paper only discusses LP-FT (its ref. [55]): its own E2E fine-tuning already starts from a classifier, the
zero-shot head. LP-FT therefore differs from the kit's standard E2E run in one thing only: the head at step 0 is
the trained LC (``finetuned_lc``) instead of the zero-shot head. The encoder stays the zero-shot encoder.

Example:
    >>> start = lpft_init(zeroshot_classifier, lc_head, classnames=names, probe_classnames=lc_names)  # doctest: +SKIP
    >>> finetune_e2e(start, ...)                                                                        # doctest: +SKIP
"""

from __future__ import annotations

import copy
import logging
from typing import Mapping, Sequence

import torch

from ..errors import IncompatibleStateError, WiseftError

log = logging.getLogger(__name__)

__all__ = ["lpft_init"]


def _probe_tensors(
    probe_head: torch.nn.Module | Mapping[str, torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(weight, bias) of a head module or of a ``{weight, bias}`` / ``{head.weight, head.bias}`` state dict."""
    if isinstance(probe_head, torch.nn.Module):
        weight, bias = getattr(probe_head, "weight", None), getattr(probe_head, "bias", None)
    elif isinstance(probe_head, Mapping):
        weight = probe_head.get("weight", probe_head.get("head.weight"))
        bias = probe_head.get("bias", probe_head.get("head.bias"))
    else:
        raise WiseftError(
            f"lpft_init: probe_head must be a head module or a state dict, got {type(probe_head).__name__}")
    if not isinstance(weight, torch.Tensor) or weight.ndim != 2:
        raise IncompatibleStateError("lpft_init: the probe has no [classes, dim] 'weight'; pass the trained linear "
                                     "classifier's head (or its state dict with 'weight' and 'bias')")
    return weight.detach(), (bias.detach() if isinstance(bias, torch.Tensor) else None)


def _check_classnames(classnames: Sequence[str] | None, probe_classnames: Sequence[str] | None) -> None:
    if classnames is None or probe_classnames is None:
        log.warning("lpft_init: class names not given for both heads; only shapes are checked, so a probe "
                    "trained on another class order would go unnoticed")
        return
    if list(classnames) != list(probe_classnames):
        if len(classnames) != len(probe_classnames):
            raise IncompatibleStateError(f"lpft_init: the classifier has {len(classnames)} classes but the probe "
                                         f"was trained on {len(probe_classnames)}")
        i = next(i for i, (a, b) in enumerate(zip(classnames, probe_classnames)) if a != b)
        raise IncompatibleStateError(
            f"lpft_init: class {i} is {classnames[i]!r} in the classifier but {probe_classnames[i]!r} in the probe; "
            "the probe must be trained on the same classes in the same order")


def lpft_init(classifier: torch.nn.Module, probe_head: torch.nn.Module | Mapping[str, torch.Tensor], *,
              classnames: Sequence[str] | None = None, probe_classnames: Sequence[str] | None = None,
              head_attr: str = "head", inplace: bool = False) -> torch.nn.Module:
    """The image classifier with its head replaced by the trained linear probe's, ready for E2E fine-tuning.

    The probe's weight and bias are copied into the classifier's existing head module, so the head keeps its
    class and behaviour (e.g. ``ClassificationHead(normalize=True)`` still L2-normalises features, as it did when
    the probe was trained on normalised cached features). The head's parameters are made trainable; the
    encoder's ``requires_grad`` flags are left as they are (the E2E engine sets them).

    Args:
        classifier: an ``ImageClassifier`` (zero-shot encoder plus head) or any module with a linear head at
            ``head_attr``.
        probe_head: the trained LC's head module, or its state dict (``weight``/``bias`` or
            ``head.weight``/``head.bias``).
        classnames: the classifier's classes, in order (taken from ``classifier.classnames`` when absent).
        probe_classnames: the classes the probe was trained on (from ``probe_head.classnames`` when absent).
        head_attr: attribute of ``classifier`` holding the head.
        inplace: modify ``classifier`` itself; by default a deep copy is returned and the zero-shot model,
            which WiSE-FT later interpolates with, is left untouched.

    Returns:
        The classifier (a copy unless ``inplace``) whose ``head.weight``/``head.bias`` equal the probe's.

    Raises:
        IncompatibleStateError: if shapes, class names, the presence of a bias, or the heads' ``normalize`` flags
            differ.
    """
    head = getattr(classifier, head_attr, None)
    if not isinstance(head, torch.nn.Module) or not isinstance(getattr(head, "weight", None), torch.Tensor):
        raise WiseftError(f"lpft_init: {type(classifier).__name__} has no linear head at '.{head_attr}'")
    weight, bias = _probe_tensors(probe_head)
    if tuple(weight.shape) != tuple(head.weight.shape):
        raise IncompatibleStateError(
            f"lpft_init: probe weight {tuple(weight.shape)} vs classifier head {tuple(head.weight.shape)} "
            "([classes, feature dim]); the probe must be trained on this encoder's features for the same classes")
    head_bias = getattr(head, "bias", None)
    if bias is not None and head_bias is None:
        raise IncompatibleStateError("lpft_init: the probe has a bias but the classifier's head has none")
    if bias is not None and tuple(bias.shape) != tuple(head_bias.shape):
        raise IncompatibleStateError(f"lpft_init: probe bias {tuple(bias.shape)} vs head bias {tuple(head_bias.shape)}")
    head_norm = getattr(head, "normalize", None)
    probe_norm = getattr(probe_head, "normalize", None) if isinstance(probe_head, torch.nn.Module) else None
    if head_norm is not None and probe_norm is not None and bool(head_norm) != bool(probe_norm):
        raise IncompatibleStateError(
            f"lpft_init: the probe head has normalize={probe_norm} but the classifier's head normalize={head_norm}; "
            "the probe's weights only fit features normalised the way it was trained")
    _check_classnames(classnames if classnames is not None else getattr(classifier, "classnames", None),
                      probe_classnames if probe_classnames is not None else getattr(probe_head, "classnames", None))

    model = classifier if inplace else copy.deepcopy(classifier)
    target = getattr(model, head_attr)
    with torch.no_grad():
        target.weight.copy_(weight)
        target_bias = getattr(target, "bias", None)
        if target_bias is not None:
            # A probe without a bias is the same linear map as a zero bias.
            target_bias.copy_(bias if bias is not None else torch.zeros_like(target_bias))
    for p in target.parameters():  # the encoder's flags are the fine-tuning engine's business
        p.requires_grad_(True)
    log.info("LP-FT: head of %s set from the linear probe (%d classes x %d dims)",
             type(model).__name__, weight.shape[0], weight.shape[1])
    return model
