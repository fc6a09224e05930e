"""Resumable training state on disk, without pickle: one folder per checkpoint, completed by a marker.

A checkpoint ``<root>/step-000001234/`` holds

* ``model.safetensors``: the model's state dict;
* ``optimizer.safetensors`` + ``optimizer.json``: the optimizer's state tensors, and its parameter groups and
  non-tensor state;
* ``rng.safetensors`` + ``rng.json``: torch CPU/CUDA generator states (uint8 tensors) and Python/NumPy states,
  one entry per process;
* ``trainer.json``: epoch, step, data-order position, schedule, loss scaler, history and the run's settings;
* ``extra.<name>.safetensors`` (optional): the state of a training callback (e.g. the weight EMAs of the
  baselines), tensors plus string metadata in the safetensors header;
* ``COMPLETE``: written last, listing every file with its size and SHA-256.

The folder is assembled under a temporary name and renamed into place after the marker is written, so a
checkpoint is either complete or invisible. Loading verifies sizes and hashes and falls back to the previous
checkpoint when the newest is damaged.
"""

from __future__ import annotations

import logging
import os
import random
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ..errors import CheckpointError
from ..io import atomic_path, atomic_write_json, sha256_file
from ..locks import is_stale, private_name
from ..schema import loads_bounded

log = logging.getLogger(__name__)

__all__ = ["TrainProgress", "state_dict_tensors", "capture_rng", "restore_rng", "save_train_state",
           "list_states", "latest_state", "load_train_state", "load_latest", "LoadedState", "ExtraState"]

FORMAT = "wiseft-train-state/1"
MARKER = "COMPLETE"
PREFIX = "step-"
EXTRA_PREFIX, EXTRA_SUFFIX = "extra.", ".safetensors"
_EXTRA_NAME = re.compile(r"^[A-Za-z0-9_-]+$")

#: A callback's resumable state: ``(tensors, metadata)`` with string metadata values, the form
#: :meth:`wiseft.baselines.WeightEMA.state_dict` returns and ``load_state_dict`` takes.
ExtraState = tuple[dict[str, torch.Tensor], dict[str, str]]


def check_extra_name(name: str) -> str:
    """A callback-state name must be a plain file-name component (it becomes ``extra.<name>.safetensors``)."""
    if not isinstance(name, str) or not _EXTRA_NAME.match(name):
        raise CheckpointError(f"training-state name {name!r}: use letters, digits, '_' and '-' only")
    return name


@dataclass
class TrainProgress:
    """Where training stands. ``(epoch, step_in_epoch)`` is the next global batch to train on."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    done: bool = False
    #: running sum and count of step losses in the current epoch (so a resumed epoch reports the full mean).
    epoch_loss_sum: float = 0.0
    epoch_loss_steps: int = 0
    #: one record per finished epoch (mean loss, evaluation results …).
    history: list[dict[str, Any]] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------ tensors
def state_dict_tensors(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The module's state dict on the CPU, contiguous, with no two entries sharing memory (safetensors refuses
    shared storage)."""
    out, seen = {}, set()
    for key, value in module.state_dict().items():
        t = value.detach().cpu().contiguous()
        if t.numel():
            ptr = t.untyped_storage().data_ptr()
            if ptr in seen:  # tied weights or views of one buffer
                t = t.clone()
            else:
                seen.add(ptr)
        out[key] = t
    return out


def _optimizer_files(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for pid, entry in sd["state"].items():
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"state.{pid}.{key}"] = value.detach().cpu().contiguous().clone()
            else:
                scalars.setdefault(str(pid), {})[key] = value
    groups = [{k: list(v) if isinstance(v, tuple) else v for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, {"type": type(optimizer).__name__, "param_groups": groups, "scalars": scalars}


def _load_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    if meta.get("type") != type(optimizer).__name__:
        raise CheckpointError(f"the checkpoint holds a {meta.get('type')} optimizer state, but this run uses "
                              f"{type(optimizer).__name__}; resume with the same finetune.e2e.optimizer")
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        _, pid, key = name.split(".", 2)
        state.setdefault(int(pid), {})[key] = value
    for pid, entries in meta.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(entries)
    current = optimizer.state_dict()["param_groups"]
    if len(current) != len(meta["param_groups"]):
        raise CheckpointError("the checkpoint's optimizer has a different number of parameter groups")
    groups = []
    for now, saved in zip(current, meta["param_groups"]):  # JSON turned tuples (betas) into lists
        groups.append({k: tuple(v) if isinstance(now.get(k), tuple) and isinstance(v, list) else v
                       for k, v in saved.items()})
    optimizer.load_state_dict({"state": state, "param_groups": groups})


# -------------------------------------------------------------------------------------------------- RNG
def capture_rng() -> dict[str, Any]:
    """This process's random states as JSON-able data (torch states as hex strings, for transport)."""
    np_state = np.random.get_state()
    out = {
        "torch_cpu": torch.get_rng_state().numpy().tobytes().hex(),
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["torch_cuda"] = torch.cuda.get_rng_state().numpy().tobytes().hex()
    return out


def restore_rng(state: dict[str, Any]) -> None:
    """Undo :func:`capture_rng`."""
    torch.set_rng_state(torch.frombuffer(bytearray.fromhex(state["torch_cpu"]), dtype=torch.uint8))
    if "torch_cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(torch.frombuffer(bytearray.fromhex(state["torch_cuda"]), dtype=torch.uint8))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))


def _rng_files(per_rank: list[dict[str, Any]]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors, meta = {}, {"ranks": []}
    for rank, st in enumerate(per_rank):
        for key in ("torch_cpu", "torch_cuda"):
            if key in st:
                tensors[f"{key}.rank{rank}"] = torch.frombuffer(bytearray.fromhex(st[key]), dtype=torch.uint8)
        meta["ranks"].append({"python": st["python"], "numpy": st["numpy"]})
    return tensors, meta


def _rng_from_files(tensors: dict[str, torch.Tensor], meta: dict, rank: int) -> dict[str, Any]:
    st = dict(meta["ranks"][rank])
    for key in ("torch_cpu", "torch_cuda"):
        if f"{key}.rank{rank}" in tensors:
            st[key] = tensors[f"{key}.rank{rank}"].numpy().tobytes().hex()
    return st


# ------------------------------------------------------------------------------------------------- save
def _step_dir(root: Path, global_step: int) -> Path:
    return root / f"{PREFIX}{global_step:09d}"


def save_train_state(root: str | os.PathLike, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                     progress: TrainProgress, rng_states: list[dict[str, Any]], trainer: dict[str, Any],
                     keep_last: int = 2, extra: dict[str, ExtraState] | None = None) -> Path:
    """Write one complete checkpoint under ``root`` and prune older ones (call on rank 0 only).

    Args:
        root: the folder of a run's checkpoints.
        model: the (unwrapped) model.
        optimizer: its optimizer.
        progress: where training stands.
        rng_states: :func:`capture_rng` of every process, in rank order.
        trainer: JSON-able extras (schedule, loss scaler, the run's settings).
        keep_last: complete checkpoints to keep (older ones are deleted after this one is complete).
        extra: callbacks' states by name, each ``(tensors, string metadata)``; written as
            ``extra.<name>.safetensors`` and covered by the marker's hashes like every other file.

    Returns:
        The checkpoint folder.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    _remove_partial(root)
    final = _step_dir(root, progress.global_step)
    tmp = root / private_name(f".tmp-{final.name}")  # this process's alone: no other writer removes it
    tmp.mkdir()
    try:
        opt_tensors, opt_meta = _optimizer_files(optimizer)
        rng_tensors, rng_meta = _rng_files(rng_states)
        for name, tensors in (("model", state_dict_tensors(model)), ("optimizer", opt_tensors),
                              ("rng", rng_tensors)):
            with atomic_path(tmp / f"{name}.safetensors") as p:
                save_file(tensors, str(p))
        for name, (tensors, meta) in (extra or {}).items():
            with atomic_path(tmp / f"{EXTRA_PREFIX}{check_extra_name(name)}{EXTRA_SUFFIX}") as p:
                save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(p),
                          metadata={str(k): str(v) for k, v in meta.items()})
        atomic_write_json(tmp / "optimizer.json", opt_meta, indent=None)
        atomic_write_json(tmp / "rng.json", rng_meta, indent=None)
        atomic_write_json(tmp / "trainer.json", {"format": FORMAT, "progress": asdict(progress), **trainer})
        files = {p.name: {"size": p.stat().st_size, "sha256": sha256_file(p)} for p in sorted(tmp.iterdir())}
        atomic_write_json(tmp / MARKER, {"format": FORMAT, "global_step": progress.global_step, "files": files})
        if final.exists():  # the same step saved again (a resumed run); replace it only once the new one is whole
            stale = root / private_name(f".old-{final.name}")
            os.replace(final, stale)
            shutil.rmtree(stale)
        os.replace(tmp, final)
        _fsync_dir(root)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    for old in list_states(root)[:-keep_last] if keep_last > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    log.debug("saved training state %s", final)
    return final


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # not possible on every platform; the rename is still atomic
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_partial(root: Path) -> None:
    """Delete folders of checkpoints a killed process left half-written (never another live process's)."""
    for entry in root.iterdir():
        if entry.is_dir() and entry.name.startswith((".tmp-", ".old-")) and is_stale(entry.name):
            shutil.rmtree(entry, ignore_errors=True)


# ------------------------------------------------------------------------------------------------- load
def list_states(root: str | os.PathLike) -> list[Path]:
    """Complete checkpoints under ``root`` (those with a marker), oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX) and (p / MARKER).is_file()]
    return sorted(found, key=lambda p: p.name)


def latest_state(root: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint, or ``None``."""
    states = list_states(root)
    return states[-1] if states else None


def _verify(path: Path) -> dict[str, Any]:
    try:
        marker = loads_bounded((path / MARKER).read_bytes())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path / MARKER}: unreadable checkpoint marker ({e}); delete {path}") from e
    files = marker.get("files") if isinstance(marker, dict) else None
    if not (isinstance(files, dict) and files and all(
            isinstance(name, str) and "/" not in name and isinstance(info, dict) and isinstance(info.get("size"), int)
            and isinstance(info.get("sha256"), str) for name, info in files.items())):
        raise CheckpointError(f"{path / MARKER}: damaged checkpoint marker (no valid file list); delete {path}")
    for name, info in files.items():
        f = path / name
        if not f.is_file() or f.stat().st_size != info["size"] or sha256_file(f) != info["sha256"]:
            raise CheckpointError(f"{f}: missing, truncated or altered since it was written; delete {path} "
                                  f"to resume from the checkpoint before it")
    return marker


@dataclass
class LoadedState:
    """A checkpoint read back from disk (tensors on the CPU)."""

    path: Path
    progress: TrainProgress
    trainer: dict[str, Any]
    model: dict[str, torch.Tensor]
    optimizer: tuple[dict[str, torch.Tensor], dict[str, Any]]
    rng: tuple[dict[str, torch.Tensor], dict[str, Any]]
    #: callbacks' states by name (``extra.<name>.safetensors``): ``(tensors, metadata)``.
    extra: dict[str, ExtraState] = field(default_factory=dict)

    def apply(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None, rank: int = 0,
              restore_random: bool = True) -> None:
        """Load weights, optimizer state and (when ``restore_random``) this rank's random states."""
        try:
            model.load_state_dict(self.model, strict=True)
        except RuntimeError as e:
            raise CheckpointError(f"{self.path}: the weights do not fit this model ({e})") from e
        if optimizer is not None:
            _load_optimizer(optimizer, *self.optimizer)
        if restore_random:
            restore_rng(_rng_from_files(*self.rng, rank=rank))


def load_train_state(path: str | os.PathLike) -> LoadedState:
    """Read and verify one checkpoint folder.

    Raises:
        CheckpointError: if a file is missing, truncated, altered or unreadable.
    """
    path = Path(path)
    _verify(path)
    try:
        trainer = loads_bounded((path / "trainer.json").read_bytes())
        opt_meta = loads_bounded((path / "optimizer.json").read_bytes())
        rng_meta = loads_bounded((path / "rng.json").read_bytes())
        model = load_file(str(path / "model.safetensors"))
        opt_tensors = load_file(str(path / "optimizer.safetensors"))
        rng_tensors = load_file(str(path / "rng.safetensors"))
        extra = {}
        for f in sorted(path.glob(f"{EXTRA_PREFIX}*{EXTRA_SUFFIX}")):
            with safe_open(str(f), framework="pt") as fh:
                meta = dict(fh.metadata() or {})
            extra[f.name[len(EXTRA_PREFIX):-len(EXTRA_SUFFIX)]] = (load_file(str(f)), meta)
    except (OSError, ValueError, SafetensorError) as e:
        raise CheckpointError(f"{path}: cannot read the training state ({e}); delete the folder") from e
    if trainer.get("format") != FORMAT:
        raise CheckpointError(f"{path}: unknown training-state format {trainer.get('format')!r}")
    progress = TrainProgress(**trainer.pop("progress"))
    return LoadedState(path, progress, trainer, model, (opt_tensors, opt_meta), (rng_tensors, rng_meta), extra)


def load_latest(root: str | os.PathLike) -> LoadedState | None:
    """The newest checkpoint that verifies, falling back to older ones with a warning; ``None`` if none."""
    for path in reversed(list_states(root)):
        try:
            return load_train_state(path)
        except CheckpointError as e:
            log.warning("skipping damaged checkpoint: %s", e)
    return None
