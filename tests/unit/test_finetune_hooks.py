"""The fine-tuning engines' hooks for the baselines: an extra loss term (L2-SP), a loss override (distillation),
a per-step callback (EMA) whose state is saved with every checkpoint and restored bitwise on resume; and the
evaluation engine's features for CKA."""

from __future__ import annotations

import copy
import json

import pytest
import torch
import torch.nn.functional as F

from wiseft.baselines import DistillationLoss, WeightEMA, l2sp_penalty, lc_l2sp_penalty
from wiseft.errors import CheckpointError, WiseftError
from wiseft.evaluation import WeightSetting, evaluate_settings, lerp_settings
from wiseft.finetune import LCHparams, LinearHead, finetune_e2e, train_linear
from wiseft.finetune.state import MARKER, latest_state, list_states, load_train_state
from wiseft.profile import E2ECfg
from tests.helpers import finetune_worker as worker


CFG = dict(epochs=2, batch_size=8, micro_batch_size=8, lr=1e-2, warmup_steps=2, num_workers=0, log_every_steps=100)


def weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def run(out, model=None, train_set=None, cfg=None, **kw):
    return finetune_e2e(model or worker.tiny_model(0.0), train_set or worker.tiny_train_set(),
                        E2ECfg(**{**CFG, **(cfg or {})}), out, seed=0, **kw)


def distance(a, b):
    return sum(float((a[k].float() - b[k].float()).pow(2).sum()) for k in a)


# ----------------------------------------------------------------------------------------------- E2E
def test_extra_loss_is_added_once_per_global_batch(tmp_path):
    start = weights(worker.tiny_model(0.0))
    plain = weights(run(tmp_path / "plain").model)
    zero = weights(run(tmp_path / "zero", extra_loss=l2sp_penalty(start, 0.0)).model)
    assert all(torch.equal(plain[k], zero[k]) for k in plain)  # λ = 0 changes nothing, bit for bit
    strong = run(tmp_path / "strong", extra_loss=l2sp_penalty(start, 10.0))
    assert distance(weights(strong.model), start) < 0.1 * distance(plain, start)
    # the same penalty with 4 micro-batches per global batch: counted once, not four times
    accum = run(tmp_path / "accum", cfg={"micro_batch_size": 2}, extra_loss=l2sp_penalty(start, 10.0))
    for k in start:
        torch.testing.assert_close(weights(accum.model)[k], weights(strong.model)[k], rtol=1e-4, atol=1e-5)


def test_loss_fn_replaces_the_cross_entropy_and_sees_the_images(tmp_path):
    seen = []

    def ce(logits, labels, images):
        seen.append(tuple(images.shape))
        return F.cross_entropy(logits, labels)

    a = weights(run(tmp_path / "a").model)
    b = weights(run(tmp_path / "b", loss_fn=ce).model)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert seen and all(s == (8, 3, 8, 8) for s in seen)


def test_on_step_runs_after_every_optimizer_step(tmp_path):
    calls = []
    result = run(tmp_path, on_step=lambda model, step: calls.append((step, torch.is_grad_enabled())))
    assert calls == [(s, False) for s in range(1, result.global_step + 1)]


def test_ema_state_is_checkpointed_and_resumes_bitwise(tmp_path):
    model = worker.tiny_model(0.1)
    hooks, reference = worker.ema_hooks(model)
    done = run(tmp_path / "ref", model=model, cfg={"checkpoint_every_steps": 2, "epochs": 3}, **hooks)
    assert reference["ema"].num_updates == done.global_step == 18

    crashed_model = worker.tiny_model(0.1)
    hooks, _ = worker.ema_hooks(crashed_model)
    with pytest.raises(RuntimeError, match="simulated crash"):  # mid-epoch 2, after checkpoints at steps 2…8
        run(tmp_path / "x", model=crashed_model, train_set=worker.CrashingImages(77),
            cfg={"checkpoint_every_steps": 2, "epochs": 3}, **hooks)
    last = latest_state(tmp_path / "x" / "state")
    files = json.loads((last / MARKER).read_text())["files"]
    assert {"extra.ema.safetensors", "extra.ema_biased.safetensors"} <= set(files)  # hashed like the rest
    saved = load_train_state(last)
    assert int(saved.extra["ema"][1]["num_updates"]) == saved.progress.global_step < 18

    resumed_model = worker.tiny_model(0.1)
    hooks, resumed = worker.ema_hooks(resumed_model)
    result = run(tmp_path / "x", model=resumed_model, cfg={"checkpoint_every_steps": 2, "epochs": 3}, resume=True,
                 **hooks)
    assert result.resumed_from is not None
    for name in ("ema", "ema_biased"):
        for decay in reference[name].decays:
            a, b = reference[name].state_dict_for(decay), resumed[name].state_dict_for(decay)
            assert all(torch.equal(a[k], b[k]) for k in a), (name, decay)
    assert all(torch.equal(v, weights(result.model)[k]) for k, v in weights(done.model).items())


def test_resume_refuses_other_hooks_or_missing_callback_state(tmp_path):
    hooks, _ = worker.ema_hooks(worker.tiny_model(0.0))
    run(tmp_path, cfg={"max_steps": 3}, **hooks)
    with pytest.raises(CheckpointError, match="tag"):
        run(tmp_path, cfg={"max_steps": 3}, resume=True, tag={"l2sp": 0.1})
    with pytest.raises(CheckpointError, match="no state for the callback"):
        run(tmp_path, cfg={"max_steps": 3}, resume=True, tag=hooks["tag"],
            callback_state={"other": WeightEMA([0.5])})
    with pytest.raises(CheckpointError, match="letters, digits"):
        run(tmp_path / "bad", cfg={"max_steps": 1}, callback_state={"../x": WeightEMA([0.5])})


def test_ema_limits_final_weights_and_zero_shot(tmp_path):
    model = worker.tiny_model(0.0)
    start = weights(model)
    emas = {"d": WeightEMA([1e-9], mode="debiased"), "b": WeightEMA([1 - 1e-12], mode="biased", init_state=start)}
    result = run(tmp_path, model=model, on_step=lambda m, s: [e.update(m) for e in emas.values()],
                 callback_state=emas)
    final = weights(result.model)
    last = emas["d"].state_dict_for(1e-9)
    assert all(torch.equal(last[k], final[k]) for k in final)
    near_zs = emas["b"].state_dict_for(1 - 1e-12)
    for k in start:
        torch.testing.assert_close(near_zs[k], start[k], rtol=0, atol=1e-8)


# ------------------------------------------------------------------------------------------------ LC
def _blobs(n_per_class=30, classes=3, dim=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, dim, generator=g) * 2
    y = torch.arange(classes).repeat_interleave(n_per_class)
    return centres[y] + 0.6 * torch.randn(len(y), dim, generator=g), y


def test_lc_l2sp_pulls_toward_the_zero_shot_head_and_lambda_zero_is_plain():
    x, y = _blobs()
    g = torch.Generator().manual_seed(3)
    init = (torch.randn(3, 8, generator=g), torch.zeros(3))
    hp = LCHparams(lr=0.05, epochs=5, batch_size=16)
    plain = train_linear(x, y, hp, init=init)
    zero = train_linear(x, y, hp, init=init, extra_loss=lc_l2sp_penalty(init[0], 0.0, weight_name="weight"))
    assert torch.equal(plain.weight, zero.weight)
    strong = train_linear(x, y, hp, init=init, extra_loss=lc_l2sp_penalty(init[0], 100.0, weight_name="weight"))
    assert (strong.weight - init[0]).norm() < 0.1 * (plain.weight - init[0]).norm()


def test_lc_distillation_follows_the_teacher_as_alpha_grows():
    x, y = _blobs()
    g = torch.Generator().manual_seed(4)
    init = (torch.randn(3, 8, generator=g) * 3, torch.zeros(3))
    teacher = LinearHead(*init).eval().requires_grad_(False)
    hp = LCHparams(lr=0.05, epochs=8, batch_size=16)
    plain = train_linear(x, y, hp, init=init)
    assert torch.equal(plain.weight, train_linear(x, y, hp, init=init, loss_fn=DistillationLoss(teacher, alpha=0.0)).weight)
    distilled = train_linear(x, y, hp, init=init, loss_fn=DistillationLoss(teacher, alpha=1.0))
    with torch.no_grad():
        agree = lambda head: float((head(x).argmax(1) == teacher(x).argmax(1)).float().mean())  # noqa: E731
    assert agree(distilled) > agree(plain) and agree(distilled) > 0.9


# ------------------------------------------------------------------------------------- evaluation
def test_evaluation_returns_normalised_features_from_the_same_pass(make_classifier, counting_dataset):
    from wiseft.datasets.base import EvalSet, Protocol

    model = make_classifier(4, seed=0)
    other = copy.deepcopy(model)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.05 * torch.randn_like(p))
    theta0, theta1 = weights(model), weights(other)
    head_only = {**theta0, "head.weight": theta1["head.weight"], "head.bias": theta1["head.bias"]}
    data = counting_dataset(19, 4, seed=1)
    eval_set = EvalSet("s", data, ["a", "b", "c", "d"], Protocol(), role="reference")
    settings = [WeightSetting("ft", "finetuned", None, lambda m: m.load_state_dict(theta1))]
    settings += lerp_settings(theta0, head_only, [1.0], method="wiseft", mode="lc")
    labels = [s.label for s in settings]
    result = evaluate_settings(copy.deepcopy(model), settings, [eval_set], batch_size=8, chunk_images=8,
                               keep_logits_for=labels, keep_features_for=labels)
    assert data.calls == 19
    res = result.sets["s"]
    with torch.no_grad():
        for label, m in (("ft", other), ("wiseft α=1", model)):
            expected = m.features(data.images)
            assert res.features[label].shape == expected.shape
            torch.testing.assert_close(res.features[label], expected, rtol=1e-5, atol=1e-6)
        assert torch.equal(res.logits["ft"], torch.cat([other(x) for x in data.images.split(8)]))
    with pytest.raises(WiseftError, match="not weight settings"):
        evaluate_settings(model, settings, [eval_set], keep_features_for=["nope"])


def test_heads_on_one_encoder_share_its_pass(make_classifier, counting_dataset):
    from wiseft.datasets.base import EvalSet, Protocol
    from wiseft.evaluation import head_setting

    model = make_classifier(4, seed=0)
    theta0 = weights(model)
    g = torch.Generator().manual_seed(5)
    heads = [(torch.randn(4, 16, generator=g) * 5, torch.randn(4, generator=g)) for _ in range(3)]
    settings = [head_setting(theta0, w, b, label=f"head {i}", method="lc_l2sp", extra={"lambda": i})
                for i, (w, b) in enumerate(heads)]
    data = counting_dataset(21, 4, seed=2)
    eval_set = EvalSet("s", data, ["a", "b", "c", "d"], Protocol(), role="reference")
    calls = []
    working = copy.deepcopy(model)
    working.image_encoder.register_forward_hook(lambda *a: calls.append(1))
    result = evaluate_settings(working, settings, [eval_set], batch_size=8, chunk_images=16,
                               keep_logits_for=[s.label for s in settings])
    assert len(calls) == 3  # one encoder pass over the 3 batches, for all three heads
    for s, (w, b) in zip(settings, heads):
        other = copy.deepcopy(model)
        other.head.load_state_dict({"weight": w, "bias": b})
        with torch.no_grad():
            assert torch.equal(result.sets["s"].logits[s.label], torch.cat([other(x) for x in data.images.split(8)]))
        assert s.alpha is None
    rows = result.to_frame()
    assert rows.alpha.isna().all() and set(rows.method) == {"lc_l2sp"}
