"""Classifier checkpoints: a safetensors state dict plus a JSON sidecar. Never pickle.

``<stem>.safetensors`` holds the state dict of an :class:`~wiseft.models.ImageClassifier` (``image_encoder.*``,
``head.weight``, ``head.bias``). ``<stem>.json`` says how to rebuild and feed it: the open_clip model name and
pretrained tag, class names (and their sha256), template set, normalisation, image size, α, provenance (git
commit, time, parent checkpoints) and the sha256 of the tensor file. Both are written atomically, tensors first,
so a sidecar always describes a complete tensor file.

Loading rebuilds the architecture with ``open_clip.create_model(model_name, pretrained=None)`` and loads the
tensors strictly; nothing is unpickled. A pickle (``torch.save``) file is refused with instructions to convert it.

Example:
    >>> save_classifier(clf, "runs/mini/checkpoints/zeroshot", {"alpha": 0.0})      # doctest: +SKIP
    >>> clf, meta = load_classifier("runs/mini/checkpoints/zeroshot", device="cpu")  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Mapping

import torch

from .errors import CheckpointError, WiseftError
from .io import atomic_path, atomic_write_json, git_commit, sha256_file
from .models import ClassificationHead, ClassifierInfo, ImageClassifier, ensure_model_config
from .weights import no_random_init_warning, read_state_dict, read_weights_file

log = logging.getLogger(__name__)

__all__ = ["FORMAT", "save_classifier", "load_classifier", "read_state_dict", "read_sidecar", "checkpoint_paths",
           "classnames_sha256", "convert_to_safetensors"]

#: Sidecar format tag; bump the number when a field changes meaning.
FORMAT = "wiseft-classifier/1"

_REQUIRED = ("model_name", "pretrained", "classnames", "template_set", "normalization", "image_size", "alpha",
             "provenance")


def checkpoint_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """``(<stem>.safetensors, <stem>.json)`` for a stem or either file's path."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in (".safetensors", ".json") else path
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")


def classnames_sha256(classnames: list[str]) -> str:
    """SHA-256 of the class names joined by newlines (order matters: labels index into them)."""
    return hashlib.sha256("\n".join(classnames).encode("utf-8")).hexdigest()


# ------------------------------------------------------------------------------------------------ read
def read_sidecar(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check a sidecar JSON (format and required fields)."""
    _, json_path = checkpoint_paths(path)
    if not json_path.is_file():
        raise CheckpointError(f"checkpoint sidecar {str(json_path)!r} does not exist; a wiseft checkpoint is "
                              f"<stem>.safetensors plus <stem>.json")
    try:
        meta = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:  # ValueError: not JSON, or not UTF-8 at all
        raise CheckpointError(f"{json_path}: not valid JSON ({e})") from e
    if not isinstance(meta, dict):
        raise CheckpointError(f"{json_path}: expected a JSON object, got {type(meta).__name__}")
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{json_path}: format {meta.get('format')!r} is not {FORMAT!r}")
    missing = [k for k in _REQUIRED if k not in meta]
    if missing:
        raise CheckpointError(f"{json_path}: missing field(s) {', '.join(missing)}")
    for key, ok, expected in _FIELD_CHECKS:
        if not ok(meta[key]):
            raise CheckpointError(f"{json_path}: field {key!r} is {meta[key]!r}, expected {expected} (the sidecar "
                                  f"was edited or belongs to another program; re-create the checkpoint)")
    return meta


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _numbers(v: Any, n: int | None = None) -> bool:
    return isinstance(v, list) and bool(v) and (n is None or len(v) == n) and all(_is_number(x) for x in v)


#: Types of the sidecar fields a loader relies on (a sidecar is JSON from anywhere; check before use).
_FIELD_CHECKS: tuple[tuple[str, Any, str], ...] = (
    ("model_name", lambda v: isinstance(v, str) and bool(v), "a model name"),
    ("pretrained", lambda v: v is None or isinstance(v, str), "a string or null"),
    ("classnames", lambda v: isinstance(v, list) and bool(v) and all(isinstance(c, str) for c in v),
     "a non-empty list of strings"),
    ("template_set", lambda v: v is None or isinstance(v, str), "a string or null"),
    ("normalization", lambda v: isinstance(v, dict) and _numbers(v.get("mean")) and _numbers(v.get("std"))
     and len(v["mean"]) == len(v["std"]), "{mean: [numbers], std: [numbers]} of equal length"),
    ("image_size", lambda v: _numbers(v, 2) and all(isinstance(x, int) and x > 0 for x in v),
     "[height, width] in pixels"),
    ("alpha", lambda v: v is None or (_is_number(v) and 0.0 <= v <= 1.0), "null or a number in [0, 1]"),
    ("provenance", lambda v: isinstance(v, dict), "a mapping"),
)


# ----------------------------------------------------------------------------------------------- write
def _default_provenance() -> dict[str, Any]:
    return {"git_commit": git_commit(), "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "parents": []}


def save_classifier(classifier: ImageClassifier, path_stem: str | os.PathLike,
                    meta: Mapping[str, Any] | None = None) -> tuple[Path, Path]:
    """Write ``<stem>.safetensors`` and its ``<stem>.json`` sidecar, both atomically.

    Args:
        classifier: the classifier; its ``info`` supplies model name, pretrained, classes, templates,
            normalisation and image size unless ``meta`` overrides them.
        path_stem: the path without suffix (a ``.safetensors``/``.json`` suffix is stripped).
        meta: sidecar fields: ``alpha`` (``None`` when not an interpolation), ``provenance``
            (``{git_commit, time, parents}``; filled in when absent; a ``RunContext.provenance()`` fits), and
            any of the info fields. Extra keys are kept under ``extra``.

    Returns:
        The two paths written.

    Raises:
        CheckpointError: when a required field is known neither from ``classifier.info`` nor from ``meta``.
    """
    from safetensors.torch import save_file

    st_path, json_path = checkpoint_paths(path_stem)
    meta = dict(meta or {})
    info = classifier.info
    fields: dict[str, Any] = {}
    if info is not None:
        fields.update(model_name=info.model_name, pretrained=info.pretrained, classnames=list(info.classnames),
                      template_set=info.template_set,
                      normalization={"mean": list(info.mean), "std": list(info.std)},
                      image_size=list(info.image_size))
    for key in _REQUIRED:
        if key in meta:
            fields[key] = meta.pop(key)
    fields.setdefault("alpha", None)
    fields["provenance"] = {**_default_provenance(), **(fields.get("provenance") or {})}
    missing = [k for k in _REQUIRED if k not in fields]
    if missing:
        raise CheckpointError(f"cannot save {st_path}: {', '.join(missing)} unknown (the classifier has no info; "
                              f"pass them in meta)")
    if len(fields["classnames"]) != classifier.num_classes:
        raise CheckpointError(f"cannot save {st_path}: {len(fields['classnames'])} class names for a head with "
                              f"{classifier.num_classes} outputs")

    tensors = {k: v.detach().to("cpu").contiguous() for k, v in classifier.state_dict().items()}
    with atomic_path(st_path) as tmp:
        save_file(tensors, str(tmp), metadata={"format": FORMAT})
        digest = sha256_file(tmp)
    sidecar = {"format": FORMAT, **fields, "classnames_sha256": classnames_sha256(fields["classnames"]),
               "tensors_sha256": digest, "extra": meta}
    atomic_write_json(json_path, sidecar)
    log.info("saved classifier checkpoint %s", st_path)
    return st_path, json_path


# ------------------------------------------------------------------------------------------------ load
def load_classifier(path: str | os.PathLike, device: str | torch.device = "cpu", verify: bool = True
                    ) -> tuple[ImageClassifier, dict[str, Any]]:
    """Rebuild a classifier from ``<stem>.safetensors`` + ``<stem>.json`` (float32, eval mode).

    Args:
        path: the stem, or the path of either file.
        device: where to put the classifier.
        verify: check the tensor file against the sidecar's sha256 (reads the file once more).

    Returns:
        ``(classifier, sidecar dict)``.

    Raises:
        CheckpointError: pickle, truncated file, hash mismatch, or tensors that do not fit the architecture
            (naming the first offending key).
    """
    import open_clip

    st_path, json_path = checkpoint_paths(path)
    meta = read_sidecar(json_path)
    state = read_state_dict(st_path)
    if verify and sha256_file(st_path) != meta.get("tensors_sha256"):
        raise CheckpointError(f"{st_path} does not match its sidecar {json_path} (sha256 differs): the tensors "
                              f"were replaced or the sidecar belongs to another checkpoint")
    if classnames_sha256(meta["classnames"]) != meta.get("classnames_sha256"):
        raise CheckpointError(f"{json_path}: classnames do not match classnames_sha256 (the sidecar was edited)")
    try:
        ensure_model_config(meta["model_name"])
        with no_random_init_warning():  # the checkpoint's weights replace the random ones below
            clip = open_clip.create_model(meta["model_name"], pretrained=None, device="cpu")
    except (RuntimeError, WiseftError) as e:
        raise CheckpointError(f"{json_path}: open_clip cannot build model {meta['model_name']!r} ({e})") from e
    for key in ("head.weight", "head.bias"):
        if key not in state:
            raise CheckpointError(f"{st_path}: key {key!r} missing; not a wiseft classifier checkpoint")
    head = ClassificationHead(state["head.weight"].float(), state["head.bias"].float())
    norm = meta["normalization"]
    info = ClassifierInfo(model_name=meta["model_name"], pretrained=meta["pretrained"],
                          classnames=list(meta["classnames"]), template_set=meta["template_set"],
                          mean=tuple(norm["mean"]), std=tuple(norm["std"]), image_size=tuple(meta["image_size"]))
    classifier = ImageClassifier(clip.visual, head, info=info)
    del clip
    _load_strict(classifier, state, st_path)
    return classifier.float().to(device).eval(), meta


def _load_strict(classifier: ImageClassifier, state: Mapping[str, torch.Tensor], path: Path) -> None:
    expected = classifier.state_dict()
    for key, ref in expected.items():
        if key not in state:
            raise CheckpointError(f"{path}: key {key!r} is missing (the checkpoint does not fit the architecture "
                                  f"named in its sidecar)")
        if tuple(state[key].shape) != tuple(ref.shape):
            raise CheckpointError(f"{path}: key {key!r} has shape {tuple(state[key].shape)}, the architecture "
                                  f"expects {tuple(ref.shape)}")
    extra = [k for k in state if k not in expected]
    if extra:
        raise CheckpointError(f"{path}: unexpected key {extra[0]!r} ({len(extra)} in all)")
    classifier.load_state_dict(state, strict=True)


def convert_to_safetensors(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Convert a trusted torch state-dict file (read with ``weights_only=True``) to safetensors, atomically."""
    from safetensors.torch import save_file

    state = read_weights_file(src)
    with atomic_path(dst) as tmp:
        save_file({k: v.contiguous() for k, v in state.items()}, str(tmp))
    return Path(dst)
