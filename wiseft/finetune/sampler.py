"""Deterministic data order for training: one global permutation per epoch, cut into global batches.

The order depends on ``(seed, epoch)`` only, never on the number of processes, data-loader workers or the step
a run was resumed from:

* epoch ``e`` visits ``permutation(seed, e)``; the last incomplete global batch is dropped;
* global batch ``s`` is ``perm[s·B : (s+1)·B]`` with ``B = micro batch × world size × accumulation steps``;
* rank ``r`` takes the contiguous block ``r`` of ``B / world size`` samples and feeds it as ``accumulation``
  micro-batches.

So one process with accumulation and several processes without it see the same global batches, and a resumed
run starts at global batch ``s`` by skipping indices, without reading a single skipped image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from ..errors import WiseftError

__all__ = ["derive_seed", "epoch_permutation", "BatchPlan", "MicroBatchSampler"]

_MASK64 = (1 << 64) - 1
# Streams of random numbers derived from one seed; distinct tags keep data order and augmentation independent.
ORDER_STREAM = 0x0D0E
AUGMENT_STREAM = 0xA0C5


def derive_seed(*parts: int) -> int:
    """A 63-bit seed derived from integers (``seed``, ``epoch``, ``index`` …) through NumPy's ``SeedSequence``.

    The result is the same on every machine and process and fits ``torch.manual_seed``.
    """
    entropy = [int(p) & _MASK64 for p in parts]
    state = np.random.SeedSequence(entropy).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & ((1 << 63) - 1)


def epoch_permutation(num_samples: int, seed: int, epoch: int) -> np.ndarray:
    """The order in which epoch ``epoch`` visits the ``num_samples`` indices (int64)."""
    rng = np.random.default_rng(derive_seed(ORDER_STREAM, seed, epoch))
    return rng.permutation(num_samples).astype(np.int64)


@dataclass(frozen=True)
class BatchPlan:
    """How a global batch is split over processes and accumulation steps.

    Attributes:
        num_samples: size of the training set.
        global_batch: samples per optimizer step, summed over processes and accumulation steps.
        micro_batch: samples per forward pass on one process.
        world_size: number of processes.
        rank: this process.
        seed: the run's seed; the order of epoch ``e`` is ``epoch_permutation(num_samples, seed, e)``.

    Raises:
        WiseftError: if the global batch is not a multiple of ``micro_batch × world_size`` or the training set
            holds fewer samples than one global batch.
    """

    num_samples: int
    global_batch: int
    micro_batch: int
    world_size: int = 1
    rank: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        per_forward = self.micro_batch * self.world_size
        if self.micro_batch <= 0 or self.global_batch <= 0 or self.global_batch % per_forward:
            raise WiseftError(
                f"global batch {self.global_batch} (finetune.e2e.batch_size) is not a multiple of micro batch "
                f"{self.micro_batch} (finetune.e2e.micro_batch_size) × {self.world_size} processes; pick a micro "
                f"batch that divides {self.global_batch // max(self.world_size, 1)}")
        if not 0 <= self.rank < self.world_size:
            raise WiseftError(f"rank {self.rank} outside a world of {self.world_size} processes")
        if self.num_samples < self.global_batch:
            raise WiseftError(
                f"the training set holds {self.num_samples} samples, fewer than one global batch of "
                f"{self.global_batch}; lower finetune.e2e.batch_size")

    @property
    def accum_steps(self) -> int:
        """Micro-batches per optimizer step on each process."""
        return self.global_batch // (self.micro_batch * self.world_size)

    @property
    def steps_per_epoch(self) -> int:
        """Optimizer steps per epoch (the last incomplete global batch is dropped)."""
        return self.num_samples // self.global_batch

    def global_batch_indices(self, epoch: int, step: int) -> np.ndarray:
        """The dataset indices of global batch ``step`` of epoch ``epoch``, over all processes."""
        return self._global(epoch_permutation(self.num_samples, self.seed, epoch), step)

    def _global(self, perm: np.ndarray, step: int) -> np.ndarray:
        if not 0 <= step < self.steps_per_epoch:
            raise IndexError(f"step {step} outside an epoch of {self.steps_per_epoch} steps")
        return perm[step * self.global_batch:(step + 1) * self.global_batch]

    def rank_micro_batches(self, epoch: int, step: int) -> list[np.ndarray]:
        """This rank's micro-batches (``accum_steps`` arrays of ``micro_batch`` indices) of one global batch."""
        return self._rank_micro(self.global_batch_indices(epoch, step))

    def _rank_micro(self, batch: np.ndarray) -> list[np.ndarray]:
        per_rank = self.global_batch // self.world_size
        block = batch[self.rank * per_rank:(self.rank + 1) * per_rank]
        return [block[j * self.micro_batch:(j + 1) * self.micro_batch] for j in range(self.accum_steps)]

    def iter_micro_batches(self, epoch: int, start_step: int = 0) -> Iterator[np.ndarray]:
        """This rank's micro-batches of epoch ``epoch`` from global batch ``start_step`` on, in order."""
        perm = epoch_permutation(self.num_samples, self.seed, epoch)
        for step in range(start_step, self.steps_per_epoch):
            yield from self._rank_micro(self._global(perm, step))


class MicroBatchSampler:
    """A ``batch_sampler`` for :class:`torch.utils.data.DataLoader` yielding ``(epoch, index)`` pairs.

    The dataset is expected to accept such pairs (see :class:`wiseft.finetune.augment.SeededDataset`), so that a
    sample's augmentation depends on the epoch and its index only, whichever worker loads it.

    Args:
        plan: the batch plan of this process.
        epoch: the epoch to iterate.
        start_step: the first global batch (skipped ones are never loaded).
    """

    def __init__(self, plan: BatchPlan, epoch: int, start_step: int = 0):
        self.plan, self.epoch, self.start_step = plan, epoch, start_step

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for micro in self.plan.iter_micro_batches(self.epoch, self.start_step):
            yield [(self.epoch, int(i)) for i in micro]

    def __len__(self) -> int:
        return max(self.plan.steps_per_epoch - self.start_step, 0) * self.plan.accum_steps
