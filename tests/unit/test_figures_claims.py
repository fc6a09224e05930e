"""'What this run shows': the run's numbers beside the paper's claim, and an honest sentence where they differ."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.helpers import synth_results as S
from wiseft.figures.claims import CLAIMS, headline, what_this_run_shows


@pytest.fixture(scope="module")
def df():
    return S.full_frame()


def test_fig1_states_the_runs_gain_beside_the_papers(df):
    text = what_this_run_shows(df, "fig1")
    gain_shift = 100 * (pd.Series([S.acc(d, "e2e", 0.5) - S.acc(d, "e2e", 1.0) for d in S.SHIFTS]).mean())
    assert text.startswith("What this run shows (Fig. 1):")
    assert "+0.6 pp on ImageNet, +8.3 pp averaged over 5 shifts" in text  # Table 1, ViT-L/14@336px
    assert f"{gain_shift:+.1f} pp under shift" in text
    assert "Unlike the paper" not in text.split("(E2E)")[1].split("\n")[1]


def test_an_output_space_ensemble_above_wiseft_is_named(df):
    rows = S.core_rows() + [S._row("ose", "e2e", a, d, S.acc(d, "e2e", a) + 0.02 * 4 * a * (1 - a))
                            for d in [S.REF, *S.SHIFTS] for a in S.ALPHAS]
    assert "Unlike the paper, the logit ensemble lies above WiSE-FT" in what_this_run_shows(S.frame(rows), "fig10")
    below = S.core_rows() + [S._row("ose", "e2e", a, d, S.acc(d, "e2e", a) - 0.02 * 4 * a * (1 - a))
                             for d in [S.REF, *S.SHIFTS] for a in S.ALPHAS]
    assert "Unlike the paper" not in what_this_run_shows(S.frame(below), "fig10")


def test_few_shot_lcs_beating_zero_shot_are_named(df):
    text = what_this_run_shows(df, "fig17")
    # synthetic k-shot LCs at k = 1 are 10 pp below zero-shot: as in the paper, no contradiction
    assert "LC -10.0 pp over zero-shot" in text and "Unlike the paper" not in text


def test_every_claim_runs_and_unknown_names_say_so(df):
    for name in CLAIMS:
        data = S.analyses_frame() if name == "fig5" else S.transfer_frame() if name in ("fig16", "table2") else df
        assert what_this_run_shows(data, name).startswith("What this run shows")
    assert "no claim" in what_this_run_shows(df, "fig99")
    assert "nothing yet" in what_this_run_shows(pd.DataFrame(), "fig1")
    assert any(line.startswith("E2E: fine-tuned 81.0%") for line in headline(df))


def test_the_finetune_notebook_states_the_trade_without_a_sweep():
    """03_finetune runs before any α sweep: its claim reads only the zero-shot and fine-tuned rows (no nan)."""
    rows = S.core_rows()
    text = what_this_run_shows(S.frame(rows), "03_finetune")
    ref_gain = 100 * (S.acc(S.REF, "e2e", 1.0) - S.acc(S.REF, "e2e", 0.0))
    assert text.startswith("What this run shows (Table 1):")
    assert "E2E +9.6 pp, LC +8.6 pp over zero-shot" in text  # Table 1, ViT-L/14@336px
    assert f"This run (E2E): {ref_gain:+.1f} pp on" in text
    assert "nan" not in text
    gains = S.frame([r if r["method"] != "finetuned" or r["dataset"] == S.REF else {**r, "value": 1.0} for r in rows])
    assert "does not lose robustness on average here" in what_this_run_shows(gains, "03_finetune")
