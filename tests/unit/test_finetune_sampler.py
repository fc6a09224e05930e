"""Deterministic, resumable data order and its split over processes and accumulation steps."""

from __future__ import annotations

import numpy as np
import pytest

from wiseft.errors import WiseftError
from wiseft.finetune.sampler import BatchPlan, MicroBatchSampler, derive_seed, epoch_permutation


def test_permutation_depends_on_seed_and_epoch_only():
    a = epoch_permutation(100, seed=3, epoch=0)
    assert np.array_equal(a, epoch_permutation(100, seed=3, epoch=0))
    assert sorted(a.tolist()) == list(range(100))
    assert not np.array_equal(a, epoch_permutation(100, seed=3, epoch=1))
    assert not np.array_equal(a, epoch_permutation(100, seed=4, epoch=0))


def test_derive_seed_is_stable_and_fits_torch():
    assert derive_seed(1, 2, 3) == derive_seed(1, 2, 3)
    assert derive_seed(1, 2, 3) != derive_seed(1, 2, 4)
    assert 0 <= derive_seed(-1, 2**70) < 2**63


@pytest.mark.parametrize("micro,world", [(16, 1), (4, 1), (8, 2), (4, 2), (4, 4), (2, 8)])
def test_every_split_sees_the_same_global_batches(micro, world):
    n, batch = 70, 16
    reference = BatchPlan(n, batch, batch)
    for step in range(reference.steps_per_epoch):
        expected = reference.global_batch_indices(2, step)
        got = []
        for rank in range(world):
            plan = BatchPlan(n, batch, micro, world, rank, seed=0)
            micro_batches = plan.rank_micro_batches(2, step)
            assert len(micro_batches) == plan.accum_steps == batch // (micro * world)
            assert all(len(m) == micro for m in micro_batches)
            got.extend(np.concatenate(micro_batches).tolist())
        assert got == expected.tolist()  # rank blocks in rank order rebuild the global batch exactly


def test_epoch_drops_the_last_incomplete_batch_and_never_repeats():
    plan = BatchPlan(70, 16, 8, seed=5)
    assert plan.steps_per_epoch == 4
    seen = np.concatenate(list(plan.iter_micro_batches(epoch=0)))
    assert len(seen) == 64 and len(set(seen.tolist())) == 64


def test_resuming_at_a_step_skips_indices_without_changing_the_rest():
    plan = BatchPlan(100, 12, 3, world_size=2, rank=1, seed=9)
    full = [m.tolist() for m in plan.iter_micro_batches(epoch=1)]
    for start in range(plan.steps_per_epoch + 1):
        tail = [m.tolist() for m in plan.iter_micro_batches(epoch=1, start_step=start)]
        assert tail == full[start * plan.accum_steps:]


def test_micro_batch_sampler_yields_epoch_index_pairs():
    plan = BatchPlan(20, 4, 2, seed=0)
    sampler = MicroBatchSampler(plan, epoch=3, start_step=1)
    batches = list(sampler)
    assert len(batches) == len(sampler) == (5 - 1) * 2
    assert all(e == 3 for batch in batches for e, _ in batch)
    assert [i for _, i in batches[0]] == plan.rank_micro_batches(3, 1)[0].tolist()


@pytest.mark.parametrize("kwargs,match", [
    (dict(num_samples=100, global_batch=10, micro_batch=4), "not a multiple"),
    (dict(num_samples=100, global_batch=12, micro_batch=4, world_size=2), "not a multiple"),
    (dict(num_samples=5, global_batch=8, micro_batch=8), "fewer than one global batch"),
    (dict(num_samples=50, global_batch=8, micro_batch=4, world_size=2, rank=2), "rank 2"),
])
def test_bad_plans_name_the_setting_to_change(kwargs, match):
    with pytest.raises(WiseftError, match=match):
        BatchPlan(**kwargs)
