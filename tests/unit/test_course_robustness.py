"""Assignment 1, Task 3: the shifts that lose under fine-tuning, the student's table in % with the shift average,
the best α per curve, and the plot beside wiseft's curves. wiseft's numbers here are the `mini` run's (rounded),
so the shapes are the real ones: world-fonts gains under fine-tuning, handwriting and rotations lose."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from wiseft.course import MAX_DETAIL, SHIFT_AVERAGE, check_robustness, losing_shifts, plot_sweep, wiseft_curves

ALPHAS = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
CURVES = {  # % at ALPHAS, from runs/mini
    ("world-print", "reference"): [80.2, 87.8, 95.6, 98.9, 99.4, 99.7],
    ("world-handwritten", "shift"): [58.7, 59.2, 57.5, 55.1, 51.7, 48.9],
    ("world-fonts", "shift"): [79.2, 83.6, 87.7, 89.9, 90.4, 89.3],
    ("world-rotation", "shift"): [63.2, 61.8, 60.7, 56.0, 52.6, 49.3],
    ("world-noise", "shift"): [72.0, 73.0, 71.3, 67.6, 63.7, 58.9],
}
SHOWN = ["world-handwritten", "world-rotation"]
SHIFTS = ["world-handwritten", "world-fonts", "world-rotation", "world-noise"]


@pytest.fixture
def reference():
    return pd.DataFrame([{"alpha": a, "dataset": d, "role": role, "value": v / 100}
                         for (d, role), values in CURVES.items() for a, v in zip(ALPHAS, values)])


def answer(table_fn=None, best_fn=None):
    table = pd.DataFrame({d: v for (d, _), v in CURVES.items()}, index=ALPHAS)
    table[SHIFT_AVERAGE] = table[SHIFTS].mean(axis=1) if table_fn is None else table_fn(table)
    names = ["world-print", *SHOWN, SHIFT_AVERAGE]
    best = {n: float(table[n].idxmax()) for n in names} if best_fn is None else {n: best_fn(table[n]) for n in names}
    return table, best


def test_losing_shifts_prefers_handwriting_and_rotation_and_never_a_shift_that_gains(reference):
    assert losing_shifts(reference) == SHOWN
    assert losing_shifts(reference, prefer=(), count=3) == ["world-rotation", "world-noise", "world-handwritten"]
    assert "world-fonts" not in losing_shifts(reference, count=10)


def test_the_right_answer_passes(reference):
    check = check_robustness(*answer(), reference, SHOWN)
    assert check.ok and "match wiseft's (4 curves" in str(check)
    assert wiseft_curves(reference).loc[0.2, SHIFT_AVERAGE] == pytest.approx(np.mean([59.2, 83.6, 61.8, 73.0]))


@pytest.mark.parametrize("table_fn, best_fn, hint", [
    (lambda t: t[["world-print", *SHIFTS]].mean(axis=1), None, "your average includes the reference set (world-print)"),
    (lambda t: t[SHOWN].mean(axis=1), None, "you averaged only world-handwritten and world-rotation: the shift average "
                                            "is the mean over all 4 shifts"),
    (None, lambda c: float(c.max()), "is an accuracy, not an α"),
    (None, lambda c: float(c.idxmin()), "is where that curve is lowest"),
])
def test_wrong_answers_get_the_specific_hint_first(reference, table_fn, best_fn, hint):
    check = check_robustness(*answer(table_fn, best_fn), reference, SHOWN)
    lines = str(check).splitlines()
    assert not check.ok and lines[0].startswith("Hint: ") and hint in lines[0], str(check)
    assert len(lines) <= 2 + MAX_DETAIL


def test_a_best_alpha_between_wiseft_s_grid_points_is_judged_by_the_students_checked_numbers(reference):
    coarse = reference[reference["alpha"].isin([0.0, 0.6, 1.0])]
    table, best = answer()
    assert best[SHIFT_AVERAGE] == 0.2 and check_robustness(table, best, coarse, SHOWN).ok
    low = dict(best, **{SHIFT_AVERAGE: 0.8})  # 64.6 %, below wiseft's best (68.3 % at α = 0)
    assert "your α = 0.8" in str(check_robustness(table, low, coarse, SHOWN))


def test_fractions_and_missing_entries_are_named(reference):
    table, best = answer()
    check = check_robustness(table / 100, best, reference, SHOWN)
    assert "your table is in fractions" in str(check).splitlines()[0]
    del best["world-rotation"]
    check = check_robustness(table.drop(columns=[SHIFT_AVERAGE]), best, reference, SHOWN)
    assert "no column 'shift average'" in str(check) and "`best` has no entry 'world-rotation'" in str(check)
    wrong_alpha = dict(answer()[1], **{SHIFT_AVERAGE: 0.8})
    assert "shift average: wiseft's best α is 0.2 (69.4%); your α = 0.8 gives 64.6%" in str(
        check_robustness(table, wrong_alpha, reference, SHOWN))


def test_plot_draws_the_students_curves_over_wiseft_s_in_percent(reference):
    import matplotlib.pyplot as plt

    table, _ = answer()
    fig = plot_sweep(table / 100, reference, ["world-print", *SHOWN, SHIFT_AVERAGE])
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert len(labels) == 8 and len(set(labels)) == 8 and "world-rotation (wiseft)" in labels
    yours = next(line for line in ax.get_lines() if line.get_label() == "world-print (yours)")
    assert list(yours.get_ydata()) == CURVES[("world-print", "reference")]  # fractions turned into %
    assert ax.get_ylabel() == "top-1 accuracy (%)"
    plt.close(fig)
