"""The figures a reader looks at first are legible: no overlapping text, no legend over data, no look-alike
legend entries (issue 17). Drawn from synthetic results, so this runs in seconds without a pipeline run."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from tests.helpers import synth_results as S  # noqa: E402
from wiseft.figures import get_figure  # noqa: E402
from wiseft.figures.layout import defer_label, finalize  # noqa: E402
from wiseft.figures.legibility import legibility_problems  # noqa: E402


def _data(name):
    if name == "fig5":
        return S.analyses_frame()
    if name == "fig16":
        return S.transfer_frame()
    return S.full_frame()


@pytest.mark.parametrize("name", ["fig1", "fig3", "fig5", "fig7", "fig12", "fig13", "fig16"])
def test_figure_is_legible(name):
    fig = get_figure(name).draw(_data(name))
    try:
        assert legibility_problems(fig) == []
    finally:
        plt.close(fig)


def test_checker_sees_overlaps_and_look_alike_entries():
    fig, ax = plt.subplots()
    ax.scatter([0.5], [0.5], color="C0", marker="s", label="ose")
    ax.scatter([0.6], [0.6], color="C0", marker="s", label="distill")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper right", bbox_to_anchor=(0.65, 0.65))
    ax.text(0.5, 0.5, "λ=1")
    ax.text(0.5, 0.5, "λ=0.01")
    problems = " | ".join(legibility_problems(fig))
    plt.close(fig)
    assert "'ose' and 'distill' look the same" in problems
    assert "λ=1" in problems and "λ=0.01" in problems
    assert "legend covers" in problems


def test_deferred_labels_of_nearby_points_do_not_overlap():
    fig, ax = plt.subplots(figsize=(3, 3))
    ax.scatter([0.50, 0.51, 0.52], [0.5, 0.505, 0.5])
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xticks([0.25, 0.75])
    ax.set_yticks([0.25, 0.75])
    for i, x in enumerate([0.50, 0.51, 0.52]):
        defer_label(ax, f"λ={10.0 ** -i:g}", x, 0.5)
    finalize(fig)
    assert len(ax.texts) == 3
    assert legibility_problems(fig) == []
    plt.close(fig)


def test_fig1_draws_points_at_100_percent():
    """A fine-tuned model with every image right: its interval touches 100%, its point sits at the plot edge."""
    rows = S.core_rows()
    for r in rows:
        if r["method"] == "finetuned" or (r["method"] == "wiseft" and r["alpha"] >= 0.9):
            r["value"] = 1.0
    fig = get_figure("fig1").draw(S.frame(rows))
    plt.close(fig)
