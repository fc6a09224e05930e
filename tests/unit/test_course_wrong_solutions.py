"""The course checks catch real mistakes: a student's wrong solutions are each flagged, most specific hint first
(issue 17). Wrong solutions: reversed α, mixing only the head, averaging accuracies, the wrong Task 3 answers and an
α chosen with the shift data."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

from tests.helpers import synth_results as S  # noqa: E402
from wiseft.course import (MAX_DETAIL, check_alpha_choice, check_interpolation, check_sweep, check_task3,  # noqa: E402
                           losing_shifts, plot_sweep)

torch.manual_seed(0)
THETA_0 = {"visual.conv.weight": torch.randn(4, 3), "visual.ln.bias": torch.randn(4), "head.weight": torch.randn(10, 4),
           "head.bias": torch.randn(10)}
THETA_1 = {k: v + torch.randn_like(v) for k, v in THETA_0.items()}


def right(t0, t1, a):
    return {k: (1 - a) * t0[k] + a * t1[k] for k in t0}


def reversed_alpha(t0, t1, a):
    return {k: a * t0[k] + (1 - a) * t1[k] for k in t0}


def head_only(t0, t1, a):
    return {k: (1 - a) * t0[k] + a * t1[k] if k.startswith("head") else t0[k] for k in t0}


def test_right_interpolation_passes_at_asymmetric_alphas():
    check = check_interpolation(right, THETA_0, THETA_1)
    assert check.ok and "α = 0, 0.25, 0.5, 0.8, 1" in str(check)


def test_reversed_alpha_fails_task_1_though_it_is_right_at_one_half():
    assert check_interpolation(reversed_alpha(THETA_0, THETA_1, 0.5), THETA_0, THETA_1, 0.5).ok  # invisible at 0.5
    check = check_interpolation(reversed_alpha, THETA_0, THETA_1)
    assert not check.ok
    assert str(check).splitlines()[0].startswith("Hint: the mixing is reversed")


def test_mixing_only_the_head_is_named():
    check = check_interpolation(head_only, THETA_0, THETA_1)
    assert not check.ok
    assert str(check).splitlines()[0].startswith("Hint: only the head was mixed")


def test_averaged_accuracies_are_flagged_hint_first_with_at_most_five_lines_of_detail():
    alphas = [round(0.1 * i, 1) for i in range(11)]
    reference = S.frame([r for r in S.core_rows([S.REF, *S.SHIFTS], alphas) if r["model"] == "ViT-B-16"])
    student = {a: {d: (1 - a) * S.acc(d, "e2e", 0) + a * S.acc(d, "e2e", 1) for d in [S.REF, *S.SHIFTS]}
               for a in alphas}
    lines = str(check_sweep(student, reference)).splitlines()
    assert lines[0].startswith("Hint: your numbers lie on the straight line between the endpoints' accuracies")
    details = [line for line in lines if line.startswith("- ")]
    assert len(details) == MAX_DETAIL + 1 and details[-1].startswith("- … and ")


SWEEP = {a: {d: S.acc(d, "e2e", a) for d in ("imagenet", "imagenet-r", "imagenet-a")}
         for a in (0.0, 0.25, 0.5, 0.75, 1.0)}


def _task3(**answers):
    kw = dict(best_alpha_reference=1.0, best_alpha_shifts=0.25, above_line=["imagenet", "imagenet-r", "imagenet-a"])
    kw.update(answers)
    return check_task3(SWEEP, reference_set="imagenet", shifts=["imagenet-r", "imagenet-a"], **kw)


def test_task3_right_answers_pass_and_wrong_ones_are_explained():
    assert _task3().ok, str(_task3())
    wrong_shift = _task3(best_alpha_shifts=1.0)
    assert not wrong_shift.ok and "the average over the shifts peaks at α = 0.25" in str(wrong_shift)
    wrong_line = _task3(above_line=["imagenet"])
    assert not wrong_line.ok and str(wrong_line).startswith("Hint: compare θ_0.5's accuracy")


def _with_heldout():
    rows = [r for r in S.core_rows([S.REF, *S.SHIFTS]) if r["model"] == "ViT-B-16"]
    for a in S.ALPHAS:
        r = S._row("wiseft", "e2e", a, "imagenet:heldout", S.acc(S.REF, "e2e", a))
        r["role"] = "heldout"
        rows.append(r)
    return S.frame(rows)


def test_alpha_chosen_with_shift_data_is_flagged():
    results = _with_heldout()
    held = max(S.ALPHAS, key=lambda a: (round(S.acc(S.REF, "e2e", a), 9), -a))
    assert check_alpha_choice(held, results).ok
    from wiseft.figures import data as D

    shift_best, _ = D.optimal_alpha(D.sweep(D.settings_table(results), "e2e"), D.AVG_SHIFTS)
    assert shift_best != held
    check = check_alpha_choice(shift_best, results)
    assert not check.ok and str(check).startswith("Hint: you chose the α that is best under shift")
    assert "held-out choice" in str(check) and "paper default" in str(check)


def test_losing_shifts_and_the_plot_in_percent():
    results = S.frame(S.core_rows([S.REF, *S.SHIFTS]))
    # fine-tuning (E2E) loses on ImageNet-R, Sketch, ObjectNet and -A in the synthetic data; -A loses most
    assert losing_shifts(results, n=2) == ["imagenet-a", "imagenet-r"]
    fig = plot_sweep(SWEEP, SWEEP, "imagenet", ["imagenet-r", "imagenet-a"])
    assert [ax.get_ylabel() for ax in fig.axes] == ["accuracy (%)"] * 4
    assert max(fig.axes[0].lines[0].get_ydata()) > 1.0  # drawn in %, not fractions


@pytest.mark.parametrize("fn", [right, reversed_alpha, head_only])
def test_a_state_dict_at_one_alpha_still_works(fn):
    check = check_interpolation(fn(THETA_0, THETA_1, 0.25), THETA_0, THETA_1, 0.25)
    assert check.ok == (fn is right)


def test_losing_shifts_falls_back_to_the_profiles_shifts_when_none_lose():
    rows = [r for r in S.core_rows([S.REF, "imagenet-v2"]) if r["model"] == "ViT-B-16"]  # fine-tuning helps on V2
    assert losing_shifts(S.frame(rows)) == ["imagenet-v2"]
    assert losing_shifts(S.frame([r for r in rows if r["dataset"] == S.REF])) == []
