"""End-to-end fine-tuning on a tiny model: determinism, resume, accumulation, numerics, options."""

from __future__ import annotations

import json

import pytest
import torch

from wiseft.errors import CheckpointError, NumericsError
from wiseft.finetune import finetune_e2e
from wiseft.finetune.sampler import BatchPlan
from wiseft.finetune.state import latest_state, list_states, load_train_state
from wiseft.profile import E2ECfg
from tests.helpers import finetune_worker as worker

pytestmark = pytest.mark.usefixtures("one_thread")


CFG = dict(epochs=3, batch_size=8, micro_batch_size=4, lr=1e-2, warmup_steps=3, num_workers=0, log_every_steps=100)


def weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_bitwise(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def run(out, seed=0, model=None, train_set=None, **overrides):
    cfg = E2ECfg(**{**CFG, **overrides.pop("cfg", {})})
    return finetune_e2e(model or worker.tiny_model(), train_set or worker.tiny_train_set(), cfg, out, seed=seed,
                        **overrides)


def test_same_seed_gives_bitwise_identical_weights(tmp_path):
    a = weights(run(tmp_path / "a").model)
    b = weights(run(tmp_path / "b").model)
    assert_bitwise(a, b)
    c = weights(run(tmp_path / "c", seed=1).model)
    assert any(not torch.equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize("fail_at", [30, 77])  # mid-epoch 1 and mid-epoch 2 (48 samples per epoch)
def test_crashed_run_resumes_to_bitwise_identical_weights(tmp_path, fail_at):
    reference = weights(run(tmp_path / "ref").model)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(tmp_path / "x", train_set=worker.CrashingImages(fail_at), cfg={"checkpoint_every_steps": 2})
    assert list_states(tmp_path / "x" / "state")
    result = run(tmp_path / "x", resume=True, cfg={"checkpoint_every_steps": 2})
    assert result.resumed_from is not None
    assert_bitwise(reference, weights(result.model))
    assert [h["epoch"] for h in result.history] == [1, 2, 3]


def test_gradient_accumulation_matches_one_big_batch(tmp_path):
    big = weights(run(tmp_path / "a", model=worker.tiny_model(0.0), cfg={"micro_batch_size": 8}).model)
    small = weights(run(tmp_path / "b", model=worker.tiny_model(0.0), cfg={"micro_batch_size": 2}).model)
    for k in big:
        torch.testing.assert_close(big[k], small[k], rtol=1e-5, atol=1e-6)


def test_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    torch.manual_seed(0)
    x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))
    plan = BatchPlan(32, 8, 8, seed=0)
    bad = int(plan.global_batch_indices(epoch=1, step=2)[0])  # first met at step 4 + 2 = 6
    first = min(e * 4 + s for e in range(2) for s in range(4) if bad in plan.global_batch_indices(e, s))
    x[bad, 0] = float("nan")
    cfg = {"micro_batch_size": 8, "checkpoint_every_steps": 1, "epochs": 2}
    with pytest.raises(NumericsError, match=f"optimizer step {first} ") as err:
        run(tmp_path, model=torch.nn.Linear(6, 3), train_set=torch.utils.data.TensorDataset(x, y), cfg=cfg)
    assert "Last good checkpoint" in str(err.value)
    last = load_train_state(latest_state(tmp_path / "state"))
    assert last.progress.global_step == first
    assert all(torch.isfinite(t).all() for t in last.model.values())


def test_resuming_a_finished_run_returns_its_weights_without_training(tmp_path):
    done = run(tmp_path)
    again = run(tmp_path, resume=True)
    assert again.resumed_from == latest_state(tmp_path / "state")
    assert again.global_step == done.global_step == 18
    assert_bitwise(weights(done.model), weights(again.model))


def test_resume_refuses_changed_settings(tmp_path):
    run(tmp_path, cfg={"max_steps": 4})
    with pytest.raises(CheckpointError, match="lr"):
        run(tmp_path, resume=True, cfg={"max_steps": 4, "lr": 0.5})
    # Settings that do not change the computation may differ.
    run(tmp_path, resume=True, cfg={"max_steps": 4, "log_every_steps": 1, "num_workers": 0})


def test_without_resume_a_new_run_starts_over(tmp_path):
    run(tmp_path, cfg={"max_steps": 5})
    fresh = run(tmp_path)
    assert fresh.resumed_from is None and fresh.global_step == 18
    assert_bitwise(weights(fresh.model), weights(run(tmp_path / "other").model))


def test_max_steps_stops_mid_epoch(tmp_path):
    result = run(tmp_path, cfg={"max_steps": 7})
    assert result.global_step == 7
    state = load_train_state(result.state_dir)
    assert state.progress.done and state.progress.step_in_epoch == 1


def test_eval_callback_runs_after_every_epoch_in_eval_mode(tmp_path):
    calls = []

    def evaluate(model, epoch):
        calls.append((epoch, model.training))
        return {"top1": 0.25 * epoch}

    result = run(tmp_path, eval_fn=evaluate, cfg={"eval_every_epoch": True})
    assert calls == [(1, False), (2, False), (3, False)]
    assert [h["eval"]["top1"] for h in result.history] == [0.25, 0.5, 0.75]
    assert result.model.training


def test_grad_checkpointing_is_switched_on_when_the_model_has_it(tmp_path):
    class Checkpointable(torch.nn.Sequential):
        enabled = None

        def set_grad_checkpointing(self, enable=True):
            self.enabled = enable

    model = Checkpointable(*worker.tiny_model())
    run(tmp_path, model=model, cfg={"grad_checkpointing": True, "max_steps": 1})
    assert model.enabled is True


@pytest.mark.parametrize("precision", ["amp_bf16", "amp_fp16"])
def test_mixed_precision_runs_and_fp16_keeps_its_loss_scale(tmp_path, precision):
    result = run(tmp_path, model=torch.nn.Linear(6, 3),
                 train_set=torch.utils.data.TensorDataset(torch.randn(16, 6), torch.randint(0, 3, (16,))),
                 cfg={"precision": precision, "max_steps": 3})
    assert result.global_step == 3
    trainer = json.loads((result.state_dir / "trainer.json").read_text())
    assert (trainer["scaler"] is not None) == (precision == "amp_fp16")


def test_tensorboard_logs_are_written_when_asked(tmp_path):
    pytest.importorskip("tensorboard")
    run(tmp_path, cfg={"tensorboard": True, "max_steps": 2})
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_open_clip_gradient_checkpointing_trains_the_same_weights(tmp_path):
    def train(flag):
        model = worker.TinyClipClassifier()
        cfg = {"grad_checkpointing": flag, "max_steps": 3, "epochs": 1}
        return weights(run(tmp_path / str(flag), model=model, train_set=worker.tiny_train_set(image_size=32),
                           cfg=cfg).model)

    plain, checkpointed = train(False), train(True)
    for k in plain:
        torch.testing.assert_close(plain[k], checkpointed[k], rtol=1e-5, atol=1e-6)
    assert any(not torch.equal(plain[k], worker.TinyClipClassifier().state_dict()[k]) for k in plain)
