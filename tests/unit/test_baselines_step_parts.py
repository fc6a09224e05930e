"""Small parts of the baselines step: names of checkpoints, the E2E recipe, evaluation passes, the CLI's choices."""

from __future__ import annotations

import dataclasses

from wiseft.profile import load_profile
from wiseft.steps import baselines as B


def test_checkpoint_names_and_labels_keep_every_digit():
    a, b = B._Item("ema_biased", 0.99999), B._Item("ema_biased", 0.999991)
    assert a.stem != b.stem and a.label != b.label
    assert B._Item("l2sp", 1e-4).stem == "baselines/l2sp_lambda0.0001"
    assert B._Item("distill", 0.5).label == "distill α=0.5" and B._Item("distill", 0.5).extra == {"alpha": 0.5}
    assert B._Item("lpft").stem == "baselines/lpft" and B._Item("lpft").extra == {}
    assert B._Item("lc_l2sp", 1.0).mode == "lc" and B._Item("ema", 0.9).mode == "e2e"


def test_e2e_recipe_is_the_main_one_with_the_overrides():
    profile = load_profile("cifar10-vitb32", overrides=["baselines.e2e_overrides={epochs: 1, warmup_steps: 10}"])
    cfg = B.baseline_e2e_cfg(profile)
    assert cfg.epochs == 1 and cfg.warmup_steps == 10
    main = dataclasses.asdict(profile.finetune.e2e)
    assert {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("epochs", "warmup_steps")} == {
        k: v for k, v in main.items() if k not in ("epochs", "warmup_steps")}


def test_one_evaluation_pass_unless_the_weights_would_not_fit(monkeypatch):
    todo = [(B._Item("l2sp", v), "fp") for v in (0.1, 1.0, 10.0)] + [(B._Item("lc_l2sp", 1.0), "fp")]
    assert B._passes(todo, model_bytes=1000) == [todo[3:] + todo[:3]]
    monkeypatch.setattr(B, "MAX_RESIDENT_BYTES", 2500)
    passes = B._passes(todo, model_bytes=1000)
    assert [len(p) for p in passes] == [3, 1] and passes[0][0][0].mode == "lc"
    assert B._passes(todo[3:], model_bytes=1000) == [todo[3:]]


def test_cli_offers_every_method():
    from wiseft.cli.baselines import METHODS

    assert METHODS == B.METHODS
