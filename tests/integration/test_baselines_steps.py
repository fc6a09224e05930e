"""The baselines step end to end on the toy task: every baseline's rows and knobs, the EMA limits, LP-FT's start,
the diversity analyses, α chosen on the held-out split, idempotent reruns and the CLI."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from wiseft.checkpoint import checkpoint_paths, read_sidecar, read_state_dict
from wiseft.finetune.state import latest_state
from wiseft.profile import load_profile
from wiseft.results import duplicate_keys, load_results
from wiseft.run import RunContext
from wiseft.steps import choose_alpha, run_analyses, run_baselines, run_finetune, run_interpolation, run_zeroshot
from wiseft.steps.analyses import ANALYSIS_MEASURES
from wiseft.steps.baselines import lpft_start, tensor_sha256
from tests.helpers.toy_task import build_toy_task, toy_profile

BASELINES = """baselines:
  methods: [l2sp, ema, ema_biased, lpft, lc_l2sp, distill, ose_prob, random_interp]
  l2sp_lambdas: [0.0, 30.0]
  lc_l2sp_lambdas: [0.0, 100.0]
  ema_decays: [1.0e-9, 0.5]
  ema_biased_decays: [0.5, 0.999999999999]
  distill_alphas: [0.0, 1.0]
  e2e_overrides: {epochs: 1}
  analyses: true
  cka_max_samples: 20
"""
OVERRIDES = ["interpolation.fisher=false", "finetune.variants=[]", "finetune.lc.shots=[]"]
KNOBS = {"l2sp": ("lambda", [0.0, 30.0]), "ema": ("decay", [1e-9, 0.5]), "ema_biased": ("decay", [0.5, 0.999999999999]),
         "lc_l2sp": ("lambda", [0.0, 100.0]), "distill": ("alpha", [0.0, 1.0])}
DATASETS = {"toy", "toy-dark", "toy:heldout"}


@pytest.fixture(scope="module")
def toy(tmp_path_factory, tiny_model_name):
    root = tmp_path_factory.mktemp("toy_baselines")
    build_toy_task(root)
    path = toy_profile(root, tiny_model_name, baselines=BASELINES)
    ctx = RunContext(load_profile(path, overrides=OVERRIDES), out_dir=root / "run")
    run_zeroshot(ctx)
    run_finetune(ctx)
    run_interpolation(ctx)
    frame = run_baselines(ctx)
    analyses = run_analyses(ctx)
    return ctx, path, frame, analyses


def _state(ctx, stem):
    return read_state_dict(checkpoint_paths(ctx.checkpoint_path(stem))[0])


def _distance(a, b):
    return sum(float((a[k].float() - b[k].float()).pow(2).sum()) for k in a)


def test_every_baseline_writes_rows_with_its_method_and_knob(toy):
    ctx, _, frame, _ = toy
    for method, (knob, values) in KNOBS.items():
        rows = frame[frame.method == method]
        assert set(rows.dataset) == DATASETS, method
        assert set(rows["mode"]) == {"lc" if method in ("lc_l2sp", "distill") else "e2e"}
        assert rows.alpha.isna().all()
        assert sorted({e[knob] for e in rows.extra}) == pytest.approx(sorted(values)), method
        for v in values:
            stem = f"baselines/{method}_{knob}{v:.12g}"
            assert (ctx.checkpoints_dir / f"{stem}.safetensors").is_file(), stem
    lpft = frame[frame.method == "lpft"]
    assert set(lpft.dataset) == DATASETS and set(lpft["mode"]) == {"e2e"}
    # the output-space baselines come from the interpolation step's sweep, in both modes
    for method in ("ose_prob", "random_interp"):
        assert set(frame[frame.method == method]["mode"]) == {"e2e", "lc"}
    assert set(load_results(ctx.results_path).role) >= {"reference", "shift", "heldout"}


def test_regularisation_keeps_the_weights_near_zero_shot(toy):
    ctx, *_ = toy
    zs = _state(ctx, "zeroshot")
    assert _distance(_state(ctx, "baselines/l2sp_lambda30"), zs) < 0.2 * _distance(_state(ctx, "baselines/l2sp_lambda0"), zs)
    lc_far, lc_near = _state(ctx, "baselines/lc_l2sp_lambda0"), _state(ctx, "baselines/lc_l2sp_lambda100")
    head = ["head.weight"]
    assert _distance({k: lc_near[k] for k in head}, zs) < 0.2 * _distance({k: lc_far[k] for k in head}, zs)
    for stem in ("baselines/lc_l2sp_lambda100", "baselines/distill_alpha1"):  # LC baselines keep the encoder
        state = _state(ctx, stem)
        assert all(torch.equal(state[k], zs[k]) for k in zs if not k.startswith("head."))


def test_ema_sanity_limits(toy):
    ctx, *_ = toy
    final = load_file(str(latest_state(ctx.checkpoints_dir / "baselines" / "train_ema" / "state") / "model.safetensors"))
    last = _state(ctx, "baselines/ema_decay1e-09")
    assert all(torch.equal(last[k], final[k]) for k in final)  # decay → 0: the final fine-tuned weights
    near_zs, zs = _state(ctx, "baselines/ema_biased_decay0.999999999999"), _state(ctx, "zeroshot")
    for k in zs:  # biased EMA with decay → 1 stays at θ_zero-shot
        torch.testing.assert_close(near_zs[k], zs[k], rtol=0, atol=1e-6)
    assert not all(torch.equal(_state(ctx, "baselines/ema_decay0.5")[k], final[k]) for k in final)
    assert read_sidecar(ctx.checkpoint_path("baselines/ema_decay0.5"))["extra"]["baseline"]["steps"] == 3


def test_lpft_starts_from_the_probe_head(toy):
    ctx, *_ = toy
    probe, zs = _state(ctx, "finetuned_lc"), _state(ctx, "zeroshot")
    start = lpft_start(ctx)
    assert torch.equal(start.head.weight, probe["head.weight"]) and torch.equal(start.head.bias, probe["head.bias"])
    assert not torch.equal(probe["head.weight"], zs["head.weight"])
    encoder = start.image_encoder.state_dict()
    assert all(torch.equal(v, zs[f"image_encoder.{k}"]) for k, v in encoder.items())
    recorded = read_sidecar(ctx.checkpoint_path("baselines/lpft"))["extra"]["baseline"]["start"]
    assert recorded["head_sha256"] == tensor_sha256(probe["head.weight"], probe["head.bias"])
    assert recorded["encoder_sha256"] == tensor_sha256(*encoder.values())
    assert not torch.equal(_state(ctx, "baselines/lpft")["head.weight"], probe["head.weight"])  # then it trained


def test_analyses_have_every_measure_per_dataset(toy):
    ctx, _, _, analyses = toy
    on_disk = pd.read_csv(ctx.dir / "analyses.csv")
    assert list(on_disk.columns) == ["dataset", "measure", "value", "comparison", "n"]
    assert len(on_disk) == len(analyses)
    for comparison in ("zeroshot_vs_finetuned", "zeroshot_vs_lc", "baseline"):
        part = on_disk[on_disk.comparison == comparison]
        assert set(part.dataset) == {"toy", "toy-dark"}
        for dataset in ("toy", "toy-dark"):
            assert set(part[part.dataset == dataset].measure) == set(ANALYSIS_MEASURES), (comparison, dataset)
    assert on_disk.value.notna().all()
    fractions = on_disk[on_disk.measure.isin(["prediction_diversity", "zs_overrides", "zs_overridden"])]
    assert fractions.value.between(0, 1).all()


def test_identical_models_give_zero_diversity(toy, tmp_path):
    ctx, path, *_ = toy
    twin = RunContext(ctx.profile, out_dir=tmp_path / "twin")
    twin.checkpoints_dir.mkdir(parents=True)
    for stem in ("zeroshot", "finetuned_e2e", "finetuned_lc"):
        for src, dst in zip(checkpoint_paths(ctx.checkpoint_path("zeroshot")), checkpoint_paths(twin.checkpoint_path(stem))):
            shutil.copy(src, dst)  # both fine-tuned models replaced by θ_zero-shot itself
    frame = run_analyses(twin)
    same = frame[frame.comparison.isin(["zeroshot_vs_finetuned", "zeroshot_vs_lc"])]
    for measure in ("prediction_diversity", "kappa_complement", "kl_divergence", "zs_overrides", "zs_overridden"):
        assert (same[same.measure == measure].value == 0).all(), measure
    assert np.allclose(same[same.measure == "cka_complement"].value, 0, atol=1e-6)
    gaps = same[same.measure.str.startswith("confidence_gap")].pivot_table(
        index=["dataset", "comparison"], columns="measure", values="value")
    assert np.array_equal(gaps["confidence_gap_zs"], gaps["confidence_gap_ft"])


def test_choose_alpha_picks_the_heldout_maximum(toy):
    ctx, *_ = toy
    table = choose_alpha(ctx)
    df = load_results(ctx.results_path)
    assert set(table["mode"]) == {"e2e", "lc"}
    for mode in ("e2e", "lc"):
        held = df[(df.method == "wiseft") & (df["mode"] == mode) & (df.role == "heldout") & (df.metric == "top1")]
        best = held.value.max()
        expected = held[held.value == best].alpha.min()  # ties go to the smallest α
        chosen = table[(table["mode"] == mode) & (table.choice == "held-out")].iloc[0]
        assert chosen.alpha == expected and chosen.heldout == best and chosen.heldout_set == "toy:heldout"
        default = table[(table["mode"] == mode) & (table.choice == "default")].iloc[0]
        assert default.alpha == 0.5 and default.heldout == held[held.alpha == 0.5].value.iloc[0]
        ref = df[(df.method == "wiseft") & (df["mode"] == mode) & (df.dataset == "toy") & (df.alpha == 0.5)
                 & (df.metric == "top1")]
        assert default.reference == ref.value.iloc[0]


def test_rerun_skips_what_is_up_to_date_and_the_cli_reports(toy, capsys):
    ctx, path, frame, _ = toy
    rows_before = len(load_results(ctx.results_path))
    stamps = {p: p.stat().st_mtime_ns for p in (ctx.checkpoints_dir / "baselines").glob("*.safetensors")}
    again = run_baselines(ctx)
    assert len(load_results(ctx.results_path)) == rows_before  # nothing retrained, nothing re-evaluated
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert len(again) == len(frame)
    run_baselines(ctx, only=["ema"])  # an average does not depend on what else its run tracked: reused
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    analyses_stamp = (ctx.dir / "analyses.csv").stat().st_mtime_ns

    from wiseft.cli import main

    args = ["--profile", str(path), "--out", str(ctx.dir), *[x for o in OVERRIDES for x in ("--set", o)]]
    assert main(["baselines", *args]) == 0
    out = capsys.readouterr().out
    assert "Baselines, accuracy in %" in out and "held-out" in out and "Diversity analyses" in out
    assert len(load_results(ctx.results_path)) == rows_before
    assert (ctx.dir / "analyses.csv").stat().st_mtime_ns == analyses_stamp
    # --force on one LC method retrains and re-scores only that family; its rows replace the earlier ones in place
    before = {p: p.stat().st_mtime_ns for p in (ctx.checkpoints_dir / "baselines").glob("*.safetensors")}
    assert main(["baselines", "--only", "distill", "--force", *args]) == 0
    after = {p: p.stat().st_mtime_ns for p in before}
    retrained = {p.name for p in before if after[p] != before[p]}
    assert retrained and all("distill" in name for name in retrained), retrained
    assert len(load_results(ctx.results_path)) == rows_before
    assert duplicate_keys(ctx.results_path) == []
