"""torch.distributed under torchrun: initialisation, rank helpers, DDP, and pickle-free collectives.

torchrun (or ``srun`` → ``torchrun``, see ``docs/slurm.md``) sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and
``MASTER_ADDR``/``MASTER_PORT``. Without them everything runs as a single process and every helper here is a
cheap no-op. The backend is gloo on the CPU and nccl on CUDA. Only rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch
import torch.distributed as dist

from ..device import resolve_device
from ..errors import WiseftError

log = logging.getLogger(__name__)

__all__ = ["DistInfo", "init_distributed", "is_distributed", "get_rank", "get_world_size", "is_main_process",
           "barrier", "wrap_ddp", "unwrap", "maybe_no_sync", "all_reduce_sum", "all_gather_bytes", "all_gather_json",
           "shard_indices", "cleanup"]


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: rank, world size, its device and the backend (``None`` when alone)."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str | None

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError as e:
        raise WiseftError(f"environment variable {name}={value!r} is not an integer (set by torchrun)") from e


def init_distributed(device: str | torch.device = "auto", timeout_s: float = 1800.0) -> DistInfo:
    """Join the process group described by torchrun's environment variables (once per process).

    Args:
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``; on CUDA each process takes ``cuda:LOCAL_RANK``.
        timeout_s: collective timeout.

    Returns:
        This process's :class:`DistInfo`; a single-process one when ``WORLD_SIZE`` is unset or 1.
    """
    world = _env_int("WORLD_SIZE", 1)
    rank, local_rank = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    dev = resolve_device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", local_rank if world > 1 else torch.cuda.current_device())
    if world <= 1:
        return DistInfo(0, 1, 0, dev, None)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        import datetime

        dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout_s))
        log.info("joined process group: rank %d of %d (%s, %s)", rank, world, backend, dev)
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, dev, backend)


def is_distributed() -> bool:
    """Whether a process group with more than one process is active."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    """Rank 0, the only process that writes files."""
    return get_rank() == 0


def barrier() -> None:
    """Wait for every process (a no-op when alone)."""
    if is_distributed():
        dist.barrier()


def wrap_ddp(model: torch.nn.Module, device: torch.device, **kwargs: Any) -> torch.nn.Module:
    """Wrap ``model`` in DistributedDataParallel when distributed; return it unchanged otherwise."""
    if not is_distributed():
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids, **kwargs)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside a DDP wrapper (or the module itself)."""
    return getattr(model, "module", model)


@contextlib.contextmanager
def maybe_no_sync(model: torch.nn.Module, skip_sync: bool) -> Iterator[None]:
    """``model.no_sync()`` when ``skip_sync`` and ``model`` is DDP: gradients accumulate locally until the last
    micro-batch, whose backward pass averages them over processes."""
    if skip_sync and hasattr(model, "no_sync"):
        with model.no_sync():
            yield
    else:
        yield


def _collective_device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over processes (in place, on a copy on the backend's device); returns the sum."""
    if not is_distributed():
        return tensor
    work = tensor.detach().to(_collective_device())
    dist.all_reduce(work, op=dist.ReduceOp.SUM)
    return work.to(tensor.device)


def all_gather_bytes(data: bytes) -> list[bytes]:
    """Every process's ``data``, in rank order, sent as uint8 tensors (no pickle, unlike ``all_gather_object``)."""
    if not is_distributed():
        return [bytes(data)]
    device = _collective_device()
    size = torch.tensor([len(data)], dtype=torch.int64, device=device)
    sizes = [torch.zeros_like(size) for _ in range(get_world_size())]
    dist.all_gather(sizes, size)
    longest = int(max(int(s.item()) for s in sizes))
    buf = torch.zeros(longest, dtype=torch.uint8, device=device)
    if data:
        buf[:len(data)] = torch.from_numpy(np.frombuffer(data, dtype=np.uint8).copy()).to(device)
    bufs = [torch.zeros_like(buf) for _ in sizes]
    dist.all_gather(bufs, buf)
    return [b[:int(s.item())].cpu().numpy().tobytes() for b, s in zip(bufs, sizes)]


def all_gather_json(obj: Any) -> list[Any]:
    """Every process's JSON-able ``obj``, in rank order."""
    return [json.loads(b.decode("utf-8")) for b in all_gather_bytes(json.dumps(obj).encode("utf-8"))]


def shard_indices(num: int, rank: int | None = None, world_size: int | None = None) -> np.ndarray:
    """The indices of ``range(num)`` this rank evaluates: a strided shard, so counts can be summed over ranks.

    Unlike ``DistributedSampler`` nothing is padded, so no sample is counted twice.
    """
    rank = get_rank() if rank is None else rank
    world_size = get_world_size() if world_size is None else world_size
    return np.arange(rank, num, world_size, dtype=np.int64)


def cleanup() -> None:
    """Leave the process group (call once at the end of a torchrun script)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
