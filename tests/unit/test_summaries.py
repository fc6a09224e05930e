"""The pipeline notebooks' short summaries: fine-tuning hyperparameters, baselines, diversity (issue 17)."""

from __future__ import annotations

import json

from tests.helpers import synth_results as S
from wiseft.summaries import analyses_summary, baselines_summary, finetune_table


def test_finetune_table_reads_every_sidecar(tmp_path):
    ck = tmp_path / "checkpoints"
    ck.mkdir()
    (ck / "finetuned_e2e.json").write_text(json.dumps({"extra": {"finetune": {
        "optimizer": "adamw", "lr": 3e-4, "epochs": 3, "batch_size": 128, "weight_decay": 0.1},
        "history": [{"loss": 0.5}, {"loss": 0.0743}], "mode": "e2e"}}))
    (ck / "finetuned_lc_k5.json").write_text(json.dumps({"extra": {"lc": {
        "heldout_acc": None, "hparams": {"batch_size": 64, "epochs": 17, "lr": 0.1168, "weight_decay": 0.0},
        "regularizer": "l1", "shots": 5}, "mode": "lc"}}))
    table = finetune_table(tmp_path)
    assert table.loc["e2e", "lr"] == "0.0003" and table.loc["e2e", "last loss / held-out acc."] == "loss 0.074"
    assert table.loc["lc_k5", "shots"] == 5 and table.loc["lc_k5", "regularizer"] == "l1"
    assert table.loc["lc_k5", "last loss / held-out acc."] == "held-out —"


def test_baselines_summary_is_one_row_per_baseline_in_percent():
    table = baselines_summary(S.full_frame())
    assert len(table) == len(set(table.index)) and "Distillation from the zero-shot model" in table.index
    distill = table.loc["Distillation from the zero-shot model"]
    best = max(sum(S.acc(d, "lc", 1 - a / 2) for d in S.SHIFTS) / len(S.SHIFTS) for a in (0.25, 0.75))
    assert distill["settings"] == 2 and distill["best shift avg. (%)"] == round(100 * best, 1)


def test_analyses_summary_in_percent_with_the_control_named():
    table = analyses_summary(S.analyses_frame())
    assert table.loc["prediction diversity (%)", "zero-shot vs. fine-tuned (E2E)"] == 20.0
    assert table.loc["prediction diversity (%)", "control: two LCs on random halves"] == 10.0
    assert table.loc["KL divergence (nats)", "zero-shot vs. fine-tuned (E2E)"] == 0.8
