"""Weights files: reading tensors without ever unpickling arbitrary objects.

The one reader of tensor files for the kit: :func:`read_state_dict` (safetensors, refusing pickles and reporting
truncation) under classifier checkpoints (:mod:`wiseft.checkpoint`), and :func:`read_weights_file` (safetensors,
or a torch file read with ``weights_only=True``) under third-party CLIP weights (:mod:`wiseft.models`). It sits
below both so that neither imports the other to read a file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
from pathlib import Path

import torch

from .errors import CheckpointError

__all__ = ["CONVERT_HINT", "looks_like_path", "read_state_dict", "read_weights_file", "no_random_init_warning"]

_WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")


def looks_like_path(text: str) -> bool:
    """Whether a ``pretrained`` value names a file rather than an open_clip tag."""
    return "/" in text or "\\" in text or text.endswith(_WEIGHT_SUFFIXES) or text.startswith(("~", "."))


#: How to turn a trusted pickle (``torch.save``) file into the safetensors file wiseft reads.
CONVERT_HINT = (
    "wiseft only reads safetensors. If you trust the file, convert it once with:\n"
    "    python -c \"import torch, safetensors.torch as st; "
    "sd = torch.load('IN.pt', map_location='cpu', weights_only=True); "
    "sd = sd.get('state_dict', sd); st.save_file({k: v.contiguous() for k, v in sd.items()}, 'OUT.safetensors')\"\n"
    "(or wiseft.checkpoint.convert_to_safetensors('IN.pt', 'OUT.safetensors')). A whole pickled module, as the "
    "wise-ft repository saves, cannot be read with weights_only=True: load it in that repository's environment "
    "and save model.state_dict() instead.")


def _refuse_pickle(path: Path, head: bytes) -> None:
    if head[8:9] == b"{":  # a safetensors JSON header: the 8 bytes before it are its length, whatever they spell
        return
    if head[:2] == b"PK" or head[:1] == b"\x80":
        kind = "a zip-format torch.save file" if head[:2] == b"PK" else "a raw pickle"
        raise CheckpointError(f"{path} is {kind}, and loading pickles can run arbitrary code.\n{CONVERT_HINT}")


def read_state_dict(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Read a safetensors file into a state dict, refusing pickles and reporting truncation.

    Raises:
        CheckpointError: naming the file when it is missing, a pickle, truncated or corrupt.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file {str(path)!r} does not exist")
    with open(path, "rb") as fh:
        head = fh.read(9)
    _refuse_pickle(path, head)
    head = head[:8]
    if len(head) < 8:
        raise CheckpointError(f"{path}: truncated ({len(head)} bytes), not a safetensors file; re-create it")
    header_len = int.from_bytes(head, "little")
    size = path.stat().st_size
    if header_len > size - 8:
        raise CheckpointError(f"{path}: truncated or not a safetensors file (header claims {header_len} bytes, "
                              f"file has {size}); re-create or re-download it")
    try:
        return load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: cannot read the safetensors file ({e}); it is truncated or corrupt, "
                              f"re-create or re-download it") from e


def read_weights_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Read third-party weights: ``.safetensors``, or a torch file with ``weights_only=True`` (no fallback).

    Raises:
        CheckpointError: naming the file when it is unreadable or holds pickled objects beyond tensors.
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        return read_state_dict(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as e:
        raise CheckpointError(
            f"{path}: cannot be read safely with torch.load(weights_only=True) ({e}). wiseft never unpickles "
            f"arbitrary objects; export a plain state dict of tensors (ideally as .safetensors) instead") from e
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: expected a state dict of tensors (or {{'state_dict': ...}}), "
                              f"found {type(obj).__name__}")
    if obj and next(iter(obj)).startswith("module."):  # saved from DistributedDataParallel
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


class _DropRandomInitWarning(logging.Filter):
    """open_clip warns on the root logger that a model built without a tag is random."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("No pretrained weights loaded")


@contextlib.contextmanager
def no_random_init_warning(active: bool = True):
    """Drop open_clip's "initialized randomly" warning while ``active``: it is false when weights are loaded
    next (a weights file, a wiseft checkpoint) and noise when random weights are the point (pretraining the
    offline world's CLIP)."""
    quiet = _DropRandomInitWarning()
    if active:
        logging.getLogger().addFilter(quiet)
    try:
        yield
    finally:
        logging.getLogger().removeFilter(quiet)
