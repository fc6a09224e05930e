"""Assignment 2 (choose α without shift data): the held-out rule, its check against wrong choices, the outcome
table and its plot. wiseft's numbers are the `mini` run's (rounded): the held-out curve is flat near α = 1, the
shift average peaks at α = 0.3."""

from __future__ import annotations

import pandas as pd
import pytest

from wiseft.baselines.select_alpha import select_alpha
from wiseft.course import (MAX_DETAIL, OUTCOME_ROWS, SHIFT_AVERAGE, check_choice, check_outcome, heldout_choice,
                           plot_choice, wiseft_curves)

ALPHAS = [round(0.1 * i, 1) for i in range(11)]
CURVES = {  # % at ALPHAS, from runs/mini
    ("world-print", "reference"): [80.2, 83.5, 87.8, 91.9, 95.6, 98.1, 98.9, 99.5, 99.4, 99.7, 99.7],
    ("world-print:heldout", "heldout"): [81.1, 84.1, 87.5, 91.7, 95.2, 97.8, 98.7, 99.2, 99.5, 99.5, 99.6],
    ("world-handwritten", "shift"): [58.7, 59.5, 59.2, 58.4, 57.5, 56.7, 55.1, 53.9, 51.7, 50.3, 48.9],
    ("world-fonts", "shift"): [79.2, 81.5, 83.6, 85.7, 87.7, 89.0, 89.9, 90.5, 90.4, 89.6, 89.3],
    ("world-rotation", "shift"): [63.2, 63.2, 61.8, 61.3, 60.7, 58.6, 56.0, 54.7, 52.6, 50.1, 49.3],
}
HELD = "world-print:heldout"


@pytest.fixture
def reference():
    return pd.DataFrame([{"alpha": a, "dataset": d, "role": role, "value": v / 100, "n": 1000}
                         for (d, role), values in CURVES.items() for a, v in zip(ALPHAS, values)])


def test_the_rule_is_select_alpha_with_one_standard_error(reference):
    choice = heldout_choice(reference, HELD)
    assert choice.tol == pytest.approx((0.996 * 0.004 / 1000) ** 0.5)
    assert choice.alpha == 0.8  # 99.5 is within 0.2 pp of 99.6 (α = 1); the smallest tied α wins
    assert choice == select_alpha(ALPHAS, [v / 100 for v in CURVES[(HELD, "heldout")]], tol=choice.tol)
    check = check_choice(0.8, reference, HELD)
    assert check.ok and str(check).startswith("Right: α = 0.8 (held-out 99.5%")


@pytest.mark.parametrize("chosen, hint", [
    (1.0, "α = 1 is one of the αs within one standard error (0.2 pp) of the best held-out accuracy (0.8, 0.9, 1): "
          "the split cannot tell them apart, so take the smallest"),
    (0.9, "α = 0.9 is one of the αs within one standard error"),
    (0.4, "α = 0.4 is the best α on the shift average: you used shift data"),
    (0.5, "α = 0.5 is the paper's default, not a choice made on the held-out split"),
    (99.6, "99.6 is an accuracy, not an α"),
    (0.0, "α = 0 is where the held-out curve is lowest"),
])
def test_wrong_choices_get_the_specific_hint_first(reference, chosen, hint):
    check = check_choice(chosen, reference, HELD)
    lines = str(check).splitlines()
    assert not check.ok and lines[0].startswith("Hint: ") and hint in lines[0], str(check)
    assert "The rule gives α = 0.8 (held-out 99.5%)" in lines[1] and len(lines) <= 2 + MAX_DETAIL


def test_choosing_on_the_reference_test_set_is_named():
    curves = dict(CURVES)
    curves[("world-print", "reference")] = [*CURVES[("world-print", "reference")][:6], 99.9, 99.5, 99.4, 99.7, 99.7]
    frame = pd.DataFrame([{"alpha": a, "dataset": d, "role": role, "value": v / 100, "n": 1000}
                          for (d, role), values in curves.items() for a, v in zip(ALPHAS, values)])
    check = check_choice(0.6, frame, HELD)
    assert str(check).startswith("Hint: α = 0.6 is the best α on the reference *test* set (world-print)")
    assert check_choice("0.8?", frame, HELD).summary.startswith("`chosen` must be a number")


def outcome_table(reference, average=None, scale=100.0, chosen=0.8):
    wc = wiseft_curves(reference)
    shifts = [d for (d, role) in CURVES if role == "shift"]
    rows = {}
    for name, alpha in OUTCOME_ROWS.items():
        a = chosen if alpha is None else alpha
        avg = wc.loc[a, shifts].mean() if average is None else average(wc.loc[a])
        rows[name] = {"alpha": a, "world-print": wc.loc[a, "world-print"] * scale / 100,
                      SHIFT_AVERAGE: avg * scale / 100}
    return pd.DataFrame(rows).T


def test_the_right_outcome_passes_and_plots(reference):
    import matplotlib.pyplot as plt

    table = outcome_table(reference)
    assert check_outcome(table, 0.8, reference).ok
    assert table.loc["α = 0.5", SHIFT_AVERAGE] == pytest.approx((56.7 + 89.0 + 58.6) / 3)
    fig = plot_choice(table, reference)
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert labels[0].startswith("WiSE-FT, α from 0 to 1") and "held-out choice (α = 0.8, yours)" in labels
    assert len(labels) == 5
    plt.close(fig)


@pytest.mark.parametrize("kwargs, hint", [
    (dict(average=lambda row: row[["world-print", "world-handwritten", "world-fonts", "world-rotation"]].mean()),
     "your average includes the reference set (world-print)"),
    (dict(scale=1.0), "your table is in fractions"),
])
def test_wrong_outcomes_get_the_specific_hint_first(reference, kwargs, hint):
    check = check_outcome(outcome_table(reference, **kwargs), 0.8, reference)
    assert not check.ok and hint in str(check).splitlines()[0], str(check)


def test_an_outcome_at_the_wrong_alpha_or_without_rows_is_named(reference):
    check = check_outcome(outcome_table(reference, chosen=1.0), 0.8, reference)
    assert "held-out choice: α should be 0.8, your table says 1" in str(check)
    check = check_outcome(outcome_table(reference).drop(index="fine-tuned"), 0.8, reference)
    assert "`outcome` has no row 'fine-tuned'" in str(check)
