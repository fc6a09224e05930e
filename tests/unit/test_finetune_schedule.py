"""The learning-rate schedule matches the paper's code step by step."""

from __future__ import annotations

import logging
import re

import numpy as np
import pytest
import torch

from wiseft.finetune.schedule import WarmupCosine, warmup_cosine_lr

pytestmark = pytest.mark.usefixtures("one_thread")


def reference_lr(step: int, base_lr: float, warmup_length: int, steps: int) -> float:
    """A transcription of wise-ft's ``cosine_lr`` (src/models/utils.py, commit 58b7a4b)."""
    if step < warmup_length:
        return base_lr * (step + 1) / warmup_length
    e = step - warmup_length
    es = steps - warmup_length
    return 0.5 * (1 + np.cos(np.pi * e / es)) * base_lr


@pytest.mark.parametrize("base_lr,warmup,total", [(3e-5, 500, 25_020), (1e-3, 500, 2_000), (0.1, 0, 100),
                                                  (3e-5, 7, 8)])
def test_every_step_matches_the_paper(base_lr, warmup, total):
    ours = np.array([warmup_cosine_lr(s, base_lr, warmup, total) for s in range(total)])
    theirs = np.array([reference_lr(s, base_lr, warmup, total) for s in range(total)])
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0)


def test_shape_of_the_paper_schedule():
    base, warmup, total = 3e-5, 500, 5000
    lrs = [warmup_cosine_lr(s, base, warmup, total) for s in range(total)]
    assert lrs[0] == pytest.approx(base / 500)  # (step + 1) / warmup, not step / warmup
    assert lrs[499] == pytest.approx(base)  # warm-up ends at the peak
    assert lrs[500] == pytest.approx(base)  # the cosine starts at the peak
    assert all(a <= b for a, b in zip(lrs[:500], lrs[1:501]))
    assert all(a >= b for a, b in zip(lrs[500:], lrs[501:]))
    assert lrs[500 + 2250] == pytest.approx(base / 2)  # half-way through the cosine
    assert lrs[-1] < base * 1e-6


def test_a_run_shorter_than_its_warmup_holds_the_peak_instead_of_dividing_by_zero():
    assert warmup_cosine_lr(10, 1.0, 10, 10) == 1.0
    assert warmup_cosine_lr(3, 1.0, 10, 5) == pytest.approx(0.4)


def test_scheduler_sets_every_group_and_round_trips_its_state():
    params = [torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))]
    opt = torch.optim.AdamW([{"params": params[:1]}, {"params": params[1:]}], lr=123.0)
    sched = WarmupCosine(opt, 1e-3, 5, 20)
    for step in range(20):
        lr = sched.apply(step)
        assert lr == warmup_cosine_lr(step, 1e-3, 5, 20)
        assert [g["lr"] for g in opt.param_groups] == [lr, lr]
    other = WarmupCosine(opt, 1e-3, 5, 20)
    other.load_state_dict(sched.state_dict())
    assert other.last_step == 19


def test_e2e_training_applies_the_schedule_before_every_step(tmp_path, caplog):
    from wiseft.finetune import finetune_e2e
    from wiseft.profile import E2ECfg

    torch.manual_seed(0)
    ds = torch.utils.data.TensorDataset(torch.randn(40, 5), torch.randint(0, 3, (40,)))
    cfg = E2ECfg(epochs=3, batch_size=8, lr=0.01, warmup_steps=4, num_workers=0, log_every_steps=1)
    with caplog.at_level(logging.INFO, logger="wiseft.finetune.e2e"):
        finetune_e2e(torch.nn.Linear(5, 3), ds, cfg, tmp_path, seed=0)
    logged = [float(m.group(1)) for r in caplog.records if (m := re.search(r" lr (\S+) ", r.getMessage()))]
    assert len(logged) == 15
    for step, lr in enumerate(logged):
        assert lr == pytest.approx(reference_lr(step, 0.01, 4, 15), rel=5e-3)  # logged with 3 digits
