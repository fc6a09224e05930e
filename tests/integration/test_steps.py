"""The pipeline steps end to end on a toy task and a tiny random CLIP: zero-shot, fine-tuning (E2E, LC,
variants, k-shot), one-pass sweeps with OSE, Fisher and output-space baselines, kept checkpoints."""

from __future__ import annotations

import pytest

from wiseft.checkpoint import load_classifier
from wiseft.profile import load_profile
from wiseft.results import load_results
from wiseft.run import RunContext
from wiseft.steps import (
    evaluate_finetuned,
    run_finetune,
    run_interpolation,
    run_kshot_sweeps,
    run_variant_sweeps,
    run_zeroshot,
    summary_table,
)
from tests.helpers.toy_task import build_toy_task, toy_profile


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory, tiny_model_name):
    root = tmp_path_factory.mktemp("toy")
    build_toy_task(root)
    profile = load_profile(toy_profile(root, tiny_model_name))
    ctx = RunContext(profile, out_dir=root / "run")
    run_zeroshot(ctx)
    run_finetune(ctx)
    for mode in ("e2e", "lc"):
        evaluate_finetuned(ctx, mode)
    run_interpolation(ctx)
    run_variant_sweeps(ctx)
    run_kshot_sweeps(ctx)
    return ctx, load_results(ctx.results_path)


def _value(df, **where):
    sel = df
    for k, v in where.items():
        sel = sel[sel[k] == v] if v is not None else sel[sel[k].isna()]
    assert len(sel) == 1, (where, sel)
    return float(sel["value"].iloc[0])


def test_every_checkpoint_is_written(toy_run):
    ctx, _ = toy_run
    for stem in ("zeroshot", "finetuned_e2e", "finetuned_lc", "finetuned_e2e_short", "finetuned_lc_k2",
                 "wiseft_e2e_alpha0.50", "wiseft_lc_alpha0.50"):
        assert (ctx.checkpoints_dir / f"{stem}.safetensors").is_file(), stem
    _, meta = load_classifier(ctx.checkpoint_path("wiseft_e2e_alpha0.50"))
    assert meta["alpha"] == 0.5 and meta["provenance"]["parents"] == ["zeroshot", "finetuned_e2e"]


def test_sweep_endpoints_equal_the_separately_evaluated_models(toy_run):
    _, df = toy_run
    for dataset in ("toy", "toy-dark", "toy:heldout"):
        zs = _value(df, method="zeroshot", dataset=dataset, metric="top1", mode=None)
        for mode in ("e2e", "lc"):
            ft = _value(df, method="finetuned", mode=mode, dataset=dataset, metric="top1")
            assert _value(df, method="wiseft", mode=mode, alpha=0.0, dataset=dataset, metric="top1") == zs
            assert _value(df, method="wiseft", mode=mode, alpha=1.0, dataset=dataset, metric="top1") == ft


def test_fine_tuning_learns_the_toy_task(toy_run):
    _, df = toy_run
    zs = _value(df, method="zeroshot", dataset="toy", metric="top1", mode=None)
    e2e = _value(df, method="finetuned", mode="e2e", dataset="toy", metric="top1")
    lc = _value(df, method="finetuned", mode="lc", dataset="toy", metric="top1")
    assert e2e >= 0.9 and lc >= 0.9 and e2e > zs


def test_output_space_and_fisher_rows_share_the_pass(toy_run):
    _, df = toy_run
    for method in ("ose", "fisher"):
        got = df[(df.method == method) & (df["mode"] == "e2e")]
        assert sorted(got.alpha.unique()) == [0.0, 0.5, 1.0]
    # an output-space ensemble at an endpoint is that endpoint
    assert _value(df, method="ose", mode="e2e", alpha=1.0, dataset="toy", metric="top1") == _value(
        df, method="finetuned", mode="e2e", dataset="toy", metric="top1")
    for method in ("ose_prob", "random_interp"):
        assert set(df[df.method == method]["mode"]) == {"e2e", "lc"}


def test_variant_and_kshot_sweeps_carry_their_knobs(toy_run):
    _, df = toy_run
    variant = df[df.method == "variant"]
    assert sorted(variant.alpha.unique()) == [0.0, 1.0]
    assert {e["name"] for e in variant.extra} == {"short"} and {e["epochs"] for e in variant.extra} == {1}
    kshot = df[df.method == "kshot"]
    assert {e["shots"] for e in kshot.extra} == {2} and set(kshot["mode"]) == {"lc"}


def test_summary_table_has_the_papers_layout(toy_run):
    _, df = toy_run
    sweep = df[(df.method == "wiseft") & (df["mode"] == "e2e")].copy()
    table = summary_table(sweep.assign(setting=sweep.alpha))
    assert list(table.columns) == ["toy", "toy-dark", "toy:heldout", "avg shifts", "avg"]
    assert table.loc[0.5, "avg"] == pytest.approx((table.loc[0.5, "toy"] + table.loc[0.5, "avg shifts"]) / 2, abs=0.1)


def test_cli_batch_entry_points_call_the_same_steps(tmp_path, tiny_model_name, capsys):
    from wiseft.cli import main

    build_toy_task(tmp_path)
    profile = str(toy_profile(tmp_path, tiny_model_name))
    common = ["--profile", profile, "--out", str(tmp_path / "cli-run"), "--set", "finetune.e2e.enabled=false",
              "--set", "finetune.lc.shots=[]", "--set", "interpolation.fisher=false"]
    assert main(["zeroshot", *common]) == 0
    assert "toy-dark" in capsys.readouterr().out
    assert main(["finetune", "--mode", "lc", *common]) == 0
    assert main(["interpolate", *common]) == 0
    out = capsys.readouterr().out
    assert "WiSE-FT (lc)" in out and "avg shifts" in out
    assert main(["evaluate", "wiseft_lc_alpha0.50", "--method", "wiseft", "--mode", "lc", *common]) == 0
    df = load_results(tmp_path / "cli-run" / "results.jsonl")
    kept = df[(df.method == "wiseft") & (df.extra.map(lambda e: e.get("setting")) == "wiseft_lc_alpha0.50")]
    swept = df[(df.method == "wiseft") & (df.alpha == 0.5) & (df.extra.map(lambda e: "checkpoint" not in e))]
    for dataset in ("toy", "toy-dark"):  # the kept α=0.5 checkpoint scores what the sweep measured at α=0.5
        a = kept[(kept.dataset == dataset) & (kept.metric == "top1")].value.iloc[0]
        b = swept[(swept.dataset == dataset) & (swept.metric == "top1")].value.iloc[0]
        assert a == pytest.approx(b, abs=1e-9)
    assert main(["evaluate", "no-such-checkpoint", *common]) == 2
