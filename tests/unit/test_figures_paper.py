"""The paper's numbers as package data, spot-checked against the digest, and the run-vs-paper comparison."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.helpers import synth_results as S
from wiseft.errors import WiseftError
from wiseft.figures.paper import (compare_with_paper, format_comparison, list_paper_tables, load_paper_numbers,
                                  paper_tables_for)

IN = ["imagenet", "imagenet-v2", "imagenet-r", "imagenet-sketch", "objectnet", "imagenet-a"]


def _value(table, method, dataset, mode="", alpha=None, source="paper", metric=None):
    f = load_paper_numbers(table, source=source)
    sel = (f["method"] == method) & (f["dataset"] == dataset) & (f["mode"] == mode)
    sel &= f["alpha"].isna() if alpha is None else np.isclose(f["alpha"].fillna(-1), alpha)
    if metric:
        sel &= f["metric"] == metric
    assert sel.sum() == 1, (table, method, dataset, mode, alpha)
    return float(f.loc[sel, "value"].iloc[0])


@pytest.mark.parametrize("table, method, dataset, mode, alpha, source, expected", [
    ("table1_vitl14_336", "zeroshot", "imagenet", "", None, "radford", 76.2),
    ("table1_vitl14_336", "zeroshot", "objectnet", "", None, "paper", 69.1),
    ("table1_vitl14_336", "wiseft_opt", "imagenet", "e2e", None, "paper", 87.1),
    ("table1_vitl14_336", "wiseft", "avg_shifts", "e2e", 0.5, "paper", 76.9),
    ("table1_vitl14_336", "finetuned", "imagenet-a", "lc", None, "paper", 76.1),
    ("table4_vitl14_336", "wiseft", "avg", "lc", 0.7, "paper", 80.2),
    ("table4_vitl14_336", "wiseft", "objectnet", "e2e", 0.0, "paper", 68.5),
    ("table5_vitb16", "wiseft", "imagenet", "e2e", 0.5, "paper", 81.7),
    ("table5_vitb16", "wiseft", "imagenet-a", "e2e", 0.35, "paper", 54.3),
    ("table5_vitb16", "wiseft", "imagenet-a", "lc", 1.0, "paper", 46.4),
    ("table2_transfer", "wiseft_opt", "dtd", "e2e", None, "paper", 85.2),
    ("table2_transfer", "finetuned", "food101", "e2e", None, "paper", 94.4),
])
def test_spot_values_match_the_digest(table, method, dataset, mode, alpha, source, expected):
    assert _value(table, method, dataset, mode, alpha, source) == pytest.approx(expected)


def test_table6_metrics_and_modes():
    assert _value("table6", "wiseft_opt", "iwildcam-ood", "e2e", metric="macro_f1") == pytest.approx(46.4)
    assert _value("table6", "wiseft", "fmow-ood", "e2e", 0.5, metric="worst_region_acc") == pytest.approx(49.5)
    assert _value("table6", "finetuned", "ytbb-robust", "lc", metric="pm0") == pytest.approx(66.5)


def test_tables_are_complete():
    assert list_paper_tables() == ["table1_vitl14_336", "table4_vitl14_336", "table5_vitb16", "table6",
                                   "table2_transfer"]
    t5 = load_paper_numbers("table5_vitb16")
    assert t5[t5["mode"] == "e2e"]["alpha"].nunique() == 21
    assert t5[t5["mode"] == "lc"]["alpha"].nunique() == 11
    assert len(load_paper_numbers("table1_vitl14_336", source=None)) == 9 * 8
    # The paper's Avg column is (ref + AvgShifts) / 2 up to rounding: a consistency check of the transcription.
    wide = t5.pivot_table(index=["mode", "alpha"], columns="dataset", values="value")
    assert np.allclose(wide[IN[1:]].mean(axis=1), wide["avg_shifts"], atol=0.11)
    assert np.allclose((wide["imagenet"] + wide["avg_shifts"]) / 2, wide["avg"], atol=0.11)


def test_unknown_names_list_the_known_ones():
    with pytest.raises(WiseftError, match="table5_vitb16"):
        load_paper_numbers("table99")
    with pytest.raises(WiseftError, match="table2_transfer"):
        paper_tables_for("nope")


def test_a_run_equal_to_the_paper_compares_with_zero_difference():
    paper = load_paper_numbers("table5_vitb16")
    rows = []
    for r in paper[paper["dataset"].isin(IN)].itertuples():
        rows.append(S._row("wiseft", r.mode, r.alpha, r.dataset, r.value / 100))
    cmp = compare_with_paper(S.frame(rows), "table5_vitb16")
    assert len(cmp) == len(paper)
    per_dataset = cmp[cmp["dataset"].isin(IN)]
    assert np.allclose(per_dataset["diff"], 0, atol=1e-9)
    assert cmp["diff"].abs().max() < 0.11  # the averages differ from the printed ones by rounding only
    text = format_comparison(cmp, "table5_vitb16")
    row = next(line for line in text.splitlines() if line.startswith("| WiSE-FT E2E, α=0.5 |"))
    header = next(line for line in text.splitlines() if line.startswith("| paper row |"))
    cells = dict(zip(header.strip("|").split("|"), row.strip("|").split("|")))
    assert cells[" ImageNet "].strip() == "81.7 / 81.7 / +0.0"
    assert ";" not in text


def test_comparison_of_table1_includes_optimal_alpha_rows():
    cmp = compare_with_paper(S.full_frame(), "table1_vitl14_336")
    assert set(cmp["table"]) == {"table1_vitl14_336", "table4_vitl14_336"}
    opt = cmp[(cmp["method"] == "wiseft_opt") & (cmp["mode"] == "e2e") & (cmp["dataset"] == "imagenet")]
    assert len(opt) == 1 and opt["paper"].iloc[0] == pytest.approx(87.1)
    assert "Radford" not in " ".join(cmp["row"])


def test_empty_comparison_says_why():
    text = format_comparison(compare_with_paper(S.further_shift_frame(), "table5_vitb16"), "table5_vitb16")
    assert text.startswith("No numbers of the run match")
    assert compare_with_paper(pd.DataFrame(), "table6").empty
