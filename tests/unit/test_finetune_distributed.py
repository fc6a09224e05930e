"""Distributed helpers in a single process (torchrun runs are in tests/integration)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wiseft.errors import WiseftError
from wiseft.finetune import distributed as D


def test_without_torchrun_everything_is_one_process(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    info = D.init_distributed("cpu")
    assert (info.rank, info.world_size, info.backend, info.is_main) == (0, 1, None, True)
    assert info.device == torch.device("cpu")
    assert not D.is_distributed() and D.get_rank() == 0 and D.get_world_size() == 1 and D.is_main_process()
    D.barrier()
    model = torch.nn.Linear(2, 2)
    assert D.wrap_ddp(model, info.device) is model and D.unwrap(model) is model


def test_malformed_torchrun_variables_are_named(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(WiseftError, match="WORLD_SIZE"):
        D.init_distributed("cpu")


def test_collectives_are_identities_when_alone():
    t = torch.tensor([1.0, 2.0])
    assert torch.equal(D.all_reduce_sum(t), t)
    assert D.all_gather_bytes(b"abc") == [b"abc"]
    assert D.all_gather_json({"a": [1, 2]}) == [{"a": [1, 2]}]


@pytest.mark.parametrize("n,world", [(10, 3), (7, 1), (2, 4)])
def test_evaluation_shards_cover_every_index_once(n, world):
    shards = [D.shard_indices(n, r, world) for r in range(world)]
    assert sorted(np.concatenate(shards).tolist()) == list(range(n))


def test_no_sync_is_only_used_when_asked():
    entered = []

    class Fake(torch.nn.Module):
        def no_sync(self):
            import contextlib

            entered.append(True)
            return contextlib.nullcontext()

    with D.maybe_no_sync(Fake(), skip_sync=False):
        pass
    with D.maybe_no_sync(Fake(), skip_sync=True):
        pass
    with D.maybe_no_sync(torch.nn.Linear(1, 1), skip_sync=True):  # not DDP: nothing to skip
        pass
    assert entered == [True]
