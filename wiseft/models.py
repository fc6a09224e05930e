"""CLIP models from open_clip, and the image classifier WiSE-FT interpolates.

:func:`create_clip` is the one front door for a CLIP model: it resolves ``pretrained`` (an open_clip tag, a
local weights file, or ``world:<name>`` for the embedded offline world), builds the model through open_clip,
loads weights without ever unpickling arbitrary objects, and casts to float32 so that interpolation never
mixes fp16 (OpenAI weights arrive in fp16 on CUDA) with fp32.

An :class:`ImageClassifier` is the image tower plus a linear :class:`ClassificationHead`; its state dict has
the keys ``image_encoder.*``, ``head.weight`` and ``head.bias``, which is what checkpoints store and what the
interpolation code mixes.

Example:
    >>> bundle = create_clip("ViT-B-32", pretrained="openai", device="cpu")   # doctest: +SKIP
    >>> bundle.preprocess_eval                                                # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .device import dtype_for, resolve_device
from .errors import CheckpointError, WiseftError
from .weights import looks_like_path, no_random_init_warning, read_weights_file

log = logging.getLogger(__name__)

__all__ = [
    "ClipBundle",
    "ClassifierInfo",
    "ClassificationHead",
    "ImageClassifier",
    "create_clip",
    "ensure_model_config",
    "register_pretrained_resolver",
    "resolve_pretrained",
    "is_open_clip_tag",
    "eval_transform",
]

@dataclass
class ClipBundle:
    """A CLIP model with everything needed to feed it.

    Attributes:
        model: the open_clip model (image and text towers), float32, in eval mode.
        model_name: the open_clip model name.
        pretrained: the ``pretrained`` value it was created from (tag, path or ``world:<name>``), or ``None``.
        preprocess_train: training transform (open_clip's: RandomResizedCrop, scale 0.9–1, bicubic).
        preprocess_eval: evaluation transform (resize, centre crop, normalise).
        tokenizer: the model's tokenizer.
        mean: normalisation mean per channel.
        std: normalisation std per channel.
        image_size: input size ``(height, width)``.
    """

    model: nn.Module
    model_name: str
    pretrained: str | None
    preprocess_train: Callable
    preprocess_eval: Callable
    tokenizer: Callable
    mean: tuple[float, ...]
    std: tuple[float, ...]
    image_size: tuple[int, int]


@dataclass
class ClassifierInfo:
    """What a classifier was built from; travels with it into the checkpoint sidecar.

    Not part of the state dict: two classifiers with different info can still be interpolated.
    """

    model_name: str
    pretrained: str | None
    classnames: list[str]
    template_set: str | None
    mean: tuple[float, ...]
    std: tuple[float, ...]
    image_size: tuple[int, int]
    extra: dict[str, Any] = field(default_factory=dict)


class ClassificationHead(nn.Linear):
    """A linear layer that L2-normalises its inputs first (the zero-shot head's form).

    Args:
        weights: ``[num_classes, dim]`` initial weights (copied).
        bias: ``[num_classes]`` initial bias (copied); zeros when omitted, as for a zero-shot head.
        normalize: L2-normalise the inputs (keep ``True`` for CLIP heads: the temperature is in the weights).
    """

    def __init__(self, weights: torch.Tensor, bias: torch.Tensor | None = None, normalize: bool = True):
        num_classes, dim = weights.shape
        super().__init__(dim, num_classes, device=weights.device, dtype=weights.dtype)
        self.normalize = normalize
        with torch.no_grad():
            self.weight.copy_(weights)
            self.bias.copy_(bias if bias is not None else torch.zeros(num_classes))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.normalize:
            inputs = F.normalize(inputs, dim=-1)
        return super().forward(inputs)


class ImageClassifier(nn.Module):
    """Image encoder followed by a linear head.

    Args:
        image_encoder: maps ``[N, 3, H, W]`` images to ``[N, D]`` features (an open_clip ``model.visual``).
        head: the classification head.
        info: where the classifier came from (model, classes, normalisation); kept for checkpoints.
    """

    def __init__(self, image_encoder: nn.Module, head: ClassificationHead, info: ClassifierInfo | None = None):
        super().__init__()
        self.image_encoder = image_encoder
        self.head = head
        self.info = info

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits ``[N, num_classes]``."""
        return self.head(self.image_encoder(images))

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Raw (unnormalised) image features ``[N, D]``; ``head(encode(x))`` equals ``forward(x)`` bit for bit."""
        return self.image_encoder(images)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """L2-normalised image features ``[N, D]``."""
        return F.normalize(self.image_encoder(images), dim=-1)

    @property
    def num_classes(self) -> int:
        return self.head.out_features


# ------------------------------------------------------------------------------------------- pretrained
#: Packages that extend open_clip, by ``pretrained`` prefix: ``world:<name>`` is the embedded offline world's
#: CLIP. A package registers itself with :func:`register_pretrained_resolver` when it is imported; until then its
#: entry is the name of the module to import (on first use only), so that this module imports none of them.
_PRETRAINED_RESOLVERS: dict[str, str | Callable[[str], str | Path]] = {"world": "wiseft.world"}
_MODEL_CONFIG_HOOKS: dict[str, Callable[[], None]] = {}


def register_pretrained_resolver(prefix: str, resolve: Callable[[str], str | Path],
                                 model_configs: Callable[[], None] | None = None) -> None:
    """Resolve ``pretrained: <prefix>:<name>`` with ``resolve(value)`` (a weights file); ``model_configs()``,
    if given, registers the package's model configs with open_clip when :func:`ensure_model_config` meets a
    name open_clip does not know."""
    _PRETRAINED_RESOLVERS[prefix] = resolve
    if model_configs is not None:
        _MODEL_CONFIG_HOOKS[prefix] = model_configs


def _import_resolvers() -> None:
    """Import the packages still named by module in the table; each registers itself on import."""
    for prefix, entry in list(_PRETRAINED_RESOLVERS.items()):
        if not isinstance(entry, str):
            continue
        try:
            importlib.import_module(entry)
        except ModuleNotFoundError as e:
            if e.name != entry:  # a broken import is a real error; only an absent package is fine
                raise
            continue
        if isinstance(_PRETRAINED_RESOLVERS[prefix], str):
            raise WiseftError(f"{entry} did not register a resolver for pretrained '{prefix}:' values on import")


def is_open_clip_tag(pretrained: str | None) -> bool:
    """Whether ``pretrained`` is an open_clip tag (not empty, not ``<prefix>:<name>``, not a file); resolves
    nothing, so it is cheap and has no side effects."""
    if not pretrained:
        return False
    prefix, colon, _ = pretrained.partition(":")
    if colon and prefix in _PRETRAINED_RESOLVERS:
        return False
    return not (looks_like_path(pretrained) or Path(pretrained).expanduser().is_file())


def resolve_pretrained(pretrained: str | None) -> tuple[str, str | Path | None]:
    """Classify a ``pretrained`` value as ``("none", None)``, ``("file", path)`` or ``("tag", tag)``.

    ``<prefix>:<name>`` with a registered prefix is resolved to a file by that package's resolver:
    ``world:<name>`` by :func:`wiseft.world.resolve_world_pretrained` (imported lazily: the world is only built
    when asked for).

    Raises:
        CheckpointError: for a path-like value whose file does not exist.
    """
    if pretrained is None or pretrained == "":
        return "none", None
    prefix, colon, _ = pretrained.partition(":")
    if colon and prefix in _PRETRAINED_RESOLVERS:
        _import_resolvers()
        resolve = _PRETRAINED_RESOLVERS[prefix]
        if isinstance(resolve, str):
            raise WiseftError(f"pretrained {pretrained!r} needs the module {resolve}, which is not installed")
        return "file", Path(resolve(pretrained))
    path = Path(pretrained).expanduser()
    if path.is_file():
        return "file", path
    if looks_like_path(pretrained):
        raise CheckpointError(f"pretrained weights file {str(path)!r} does not exist; give an existing "
                              f".safetensors/.pt file or an open_clip pretrained tag")
    return "tag", pretrained


def _load_clip_weights(model: nn.Module, state_dict: dict[str, torch.Tensor], path: Path) -> None:
    """Load a CLIP state dict the way open_clip's ``load_checkpoint`` does, but from tensors already read."""
    from open_clip.convert import convert_state_dict
    from open_clip.model import convert_to_custom_text_state_dict, resize_pos_embed, resize_text_pos_embed

    if any(k.startswith("image_encoder.") for k in state_dict):
        raise CheckpointError(f"{path}: this is a wiseft classifier checkpoint, not CLIP weights; load it with "
                              f"wiseft.checkpoint.load_classifier")
    state_dict = convert_state_dict(model, dict(state_dict))
    if "positional_embedding" in state_dict and not hasattr(model, "positional_embedding"):
        state_dict = convert_to_custom_text_state_dict(state_dict)
    if "logit_scale" in state_dict and model.logit_scale.ndim != state_dict["logit_scale"].ndim:
        state_dict["logit_scale"] = state_dict["logit_scale"].reshape(model.logit_scale.shape)
    resize_pos_embed(state_dict, model)
    resize_text_pos_embed(state_dict, model)
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not fit the model architecture: {e}") from e


def ensure_model_config(model_name: str) -> None:
    """Make sure open_clip knows ``model_name``, registering the configs of registered packages (the offline
    world's) if needed.

    Raises:
        WiseftError: for an unknown name, suggesting close matches.
    """
    import open_clip

    if open_clip.get_model_config(model_name) is not None:
        return
    from .twins import register_twin

    if register_twin(model_name):  # ``rehearsal-<model>``: a reduced twin for rehearsals (wiseft.rehearsal)
        return
    _import_resolvers()
    for register in _MODEL_CONFIG_HOOKS.values():  # e.g. the embedded world's small CLIP configs
        register()
    if open_clip.get_model_config(model_name) is None:
        import difflib

        close = difflib.get_close_matches(model_name, open_clip.list_models(), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise WiseftError(f"unknown open_clip model {model_name!r}{hint}")


def create_clip(model_name: str, pretrained: str | None = None, device: str | torch.device = "cpu",
                precision: str = "fp32", cache_dir: str | None = None,
                preprocess_cfg: dict[str, Any] | None = None) -> ClipBundle:
    """Create an open_clip model with its transforms and tokenizer, in float32.

    Args:
        model_name: open_clip model name (``"ViT-B-16"``) or a config registered with ``open_clip.add_model_config``.
        pretrained: an open_clip tag (downloads on first use), a ``.safetensors``/``.pt``/``.bin``/``.pth``
            weights file, ``world:<name>``, or ``None`` for random weights.
        device: where the model lives.
        precision: ``fp32``, ``amp_bf16`` or ``amp_fp16``. Weights always stay float32 (interpolation and
            fine-tuning need them); mixed precision is applied at run time by :func:`wiseft.device.autocast`.
        cache_dir: weights cache for tags (default ``<cache>/weights``, see :mod:`wiseft.weights_cache`).
        preprocess_cfg: overrides of open_clip's preprocessing (``mean``, ``std``, ``size``, ``interpolation``,
            ``resize_mode``), e.g. for a weights file trained with other normalisation than OpenAI's.

    Returns:
        A :class:`ClipBundle`.

    Raises:
        WiseftError: unknown model name or precision.
        CheckpointError: unreadable, unsafe or mismatched weights file.
        WeightsUnavailable: a tag's weights are not cached and cannot be downloaded from here (one line with
            the ways out).
    """
    import open_clip

    dtype_for(precision)  # validates the name
    dev = resolve_device(device)
    ensure_model_config(model_name)
    kind, value = resolve_pretrained(pretrained)
    force = dict(preprocess_cfg or {}) or None
    if kind == "tag":  # a cached file (or one fetched now, or one clear error), loaded as a weights file
        from .weights_cache import ensure_weights, tag_preprocess_cfg

        tag = str(value)
        kind, value = "file", ensure_weights(model_name, tag, cache_dir)
        force = {**tag_preprocess_cfg(model_name, tag), **(force or {})}
        _warn_quick_gelu(model_name, tag)
    with no_random_init_warning(kind == "file"):  # the file's weights replace the random ones just below
        model = open_clip.create_model(model_name, pretrained=None, device="cpu", force_preprocess_cfg=force)
    if kind == "file":
        _load_clip_weights(model, read_weights_file(value), Path(value))
        log.info("loaded %s weights from %s", model_name, value)
    model = model.float().to(dev).eval()  # float32 before anything is interpolated

    cfg = open_clip.get_model_preprocess_cfg(model)
    pp = open_clip.transform.PreprocessCfg(**open_clip.transform.merge_preprocess_dict({}, cfg))
    size = pp.size if isinstance(pp.size, (tuple, list)) else (pp.size, pp.size)
    return ClipBundle(
        model=model, model_name=model_name, pretrained=pretrained,
        preprocess_train=open_clip.transform.image_transform_v2(pp, is_train=True),
        preprocess_eval=open_clip.transform.image_transform_v2(pp, is_train=False),
        tokenizer=open_clip.get_tokenizer(model_name),
        mean=tuple(float(m) for m in pp.mean), std=tuple(float(s) for s in pp.std),
        image_size=(int(size[0]), int(size[1])),
    )


def _warn_quick_gelu(model_name: str, tag: str) -> None:
    """open_clip's check for tags: weights trained with QuickGELU in a GELU model (or the reverse) score lower."""
    import open_clip
    from open_clip import pretrained as oc_pretrained

    trained = bool(oc_pretrained.get_pretrained_cfg(model_name, tag).get("quick_gelu", False))
    built = bool((open_clip.get_model_config(model_name) or {}).get("quick_gelu", False))
    if trained != built:
        log.warning("the %r weights of %s were trained with %s but the model uses %s; %s matches them", tag,
                    model_name, "QuickGELU" if trained else "GELU", "QuickGELU" if built else "GELU",
                    f"{model_name}-quickgelu" if trained else model_name.removesuffix("-quickgelu"))


def eval_transform(image_size: int | Sequence[int], mean: Sequence[float], std: Sequence[float],
                   interpolation: str = "bicubic") -> Callable:
    """open_clip's evaluation transform (resize the shorter side, centre crop, RGB, normalise).

    The one evaluation preprocessing of the kit: the evaluation engine, the linear classifier's feature cache
    and Fisher estimation all use it, so cached features and evaluated images always match.
    """
    from open_clip import image_transform

    size = tuple(image_size) if isinstance(image_size, (tuple, list)) else (image_size, image_size)
    return image_transform(size, is_train=False, mean=tuple(mean), std=tuple(std), interpolation=interpolation)