"""The profile-level step and the ``wiseft finetune`` subcommand, with fakes for sibling modules.

``wiseft.zeroshot``, ``wiseft.datasets.create_train_set`` and ``wiseft.checkpoint`` are replaced by small fakes
through the adapters of :mod:`wiseft.steps.train`, so these tests check the wiring, not those modules.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from wiseft.errors import WiseftError
from wiseft.profile import load_profile
from wiseft.run import RunContext
from wiseft.steps import train as step
from tests.helpers import finetune_worker as worker

pytestmark = pytest.mark.usefixtures("one_thread")


class FakeEncoder(torch.nn.Module):
    preprocess_cfg = {"size": (8, 8), "mean": (0.5,) * 3, "std": (0.25,) * 3, "interpolation": "bicubic"}

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 6, 3, padding=1)

    def forward(self, x):
        return self.conv(x).mean(dim=(2, 3))


class FakeHead(torch.nn.Module):
    def __init__(self, weight):
        super().__init__()
        self.weight = torch.nn.Parameter(weight)
        self.bias = torch.nn.Parameter(torch.zeros(weight.shape[0]))

    def forward(self, f):
        return torch.nn.functional.linear(torch.nn.functional.normalize(f, dim=-1), self.weight, self.bias)


class FakeClassifier(torch.nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        torch.manual_seed(0)
        self.image_encoder = FakeEncoder()
        self.head = FakeHead(torch.nn.functional.normalize(torch.randn(num_classes, 6), dim=-1) * 10)

    def forward(self, x):
        return self.head(self.image_encoder(x))


@pytest.fixture
def fakes(monkeypatch, tmp_path):
    saved = {}

    def reference_set(profile):
        ds = worker.TinyImages(n=48)
        ds.classnames = ["zero", "one", "two", "three"]
        return ds

    def save(classifier, stem, meta):
        save_file({k: v.detach().clone().contiguous() for k, v in classifier.state_dict().items()},
                  f"{stem}.safetensors")
        saved[Path(stem).name] = json.loads(json.dumps(meta, default=str))

    monkeypatch.setattr(step, "_zeroshot_classifier", lambda profile, names, device: FakeClassifier(len(names)))
    monkeypatch.setattr(step, "reference_set", reference_set)
    monkeypatch.setattr(step, "_heldout_features", lambda profile, classifier, device: None)
    monkeypatch.setattr(step, "_save", save)
    monkeypatch.setenv("WISEFT_CACHE", str(tmp_path / "cache"))
    return saved


def _ctx(tmp_path, *overrides):
    profile = load_profile("mini", check_references=False, overrides=[
        "finetune.e2e.batch_size=8", "finetune.e2e.epochs=2", "finetune.e2e.warmup_steps=2",
        "finetune.lc.search_trials=1", "finetune.lc.max_epochs=2", "finetune.lc.batch_sizes=[16]",
        "finetune.lc.heldout_fraction=0.2", "finetune.lc.shots=[1,3]", *overrides])
    ctx = RunContext(profile, out_dir=tmp_path / "run", device="cpu")
    ctx.checkpoints_dir.mkdir(parents=True, exist_ok=True)
    return ctx


def test_e2e_step_fine_tunes_and_saves_the_classifier(tmp_path, fakes):
    ctx = _ctx(tmp_path)
    summary = step.run_step(ctx, "e2e")
    assert summary["checkpoint"] == "finetuned_e2e" and summary["global_step"] == 12
    assert fakes["finetuned_e2e"]["mode"] == "e2e" and len(fakes["finetuned_e2e"]["history"]) == 2
    assert (ctx.checkpoints_dir / "finetuned_e2e.safetensors").is_file()
    assert list((ctx.checkpoints_dir / "train_e2e" / "state").glob("step-*"))
    again = step.run_step(ctx, "e2e")  # a rerun resumes the finished run instead of training again
    assert again["global_step"] == 12


def test_variant_runs_go_to_their_own_checkpoint(tmp_path, fakes):
    summary = step.run_step(_ctx(tmp_path), "e2e", variant="epochs1")
    assert summary["checkpoint"] == "finetuned_e2e_epochs1" and summary["global_step"] == 6
    with pytest.raises(WiseftError, match="epochs1"):
        step.run_step(_ctx(tmp_path), "e2e", variant="nope")


def test_lc_and_kshot_steps_search_and_save(tmp_path, fakes):
    ctx = _ctx(tmp_path)
    lc = step.run_step(ctx, "lc")
    assert set(lc) == {"finetuned_lc"}
    record = json.loads((ctx.checkpoints_dir / "train_lc" / "finetuned_lc_search.json").read_text())
    assert len(record["trials"]) == 4 and record["heldout_acc"] is not None
    kshot = step.run_step(ctx, "kshot")
    assert set(kshot) == {"finetuned_lc_k1", "finetuned_lc_k3"}
    assert fakes["finetuned_lc_k3"]["lc"]["shots"] == 3 and kshot["finetuned_lc_k3"]["heldout_acc"] is not None
    assert len(list((tmp_path / "cache" / "features").iterdir())) == 1  # features computed once for both


def test_unknown_mode_is_refused(tmp_path, fakes):
    with pytest.raises(WiseftError, match="mode"):
        step.run_step(_ctx(tmp_path), "full")


def test_cli_registers_the_finetune_subcommand(monkeypatch, tmp_path):
    from wiseft.cli import finetune as cli

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["finetune", "-p", "mini", "--mode", "lc", "--no-resume", "--out", str(tmp_path),
                              "--set", "finetune.lc.search_trials=2"])
    assert (args.mode, args.resume, args.variant, args.overrides) == ("lc", False, None,
                                                                      ["finetune.lc.search_trials=2"])
    calls = []
    monkeypatch.setattr(step, "run_step", lambda ctx, mode, **kw: calls.append((ctx.profile.name, mode, kw)) or {})
    monkeypatch.setattr("wiseft.cli.common.load_profile",
                        lambda name, overrides: load_profile(name, overrides, check_references=False))
    assert args.func(args) == 0
    assert calls == [("mini", "lc", {"resume": False, "variant": None})]
