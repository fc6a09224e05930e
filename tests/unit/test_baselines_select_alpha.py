"""Choosing alpha on the reference set's held-out split, beside the paper's default 0.5."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from wiseft.baselines.select_alpha import select_alpha, select_alpha_from_results
from wiseft.errors import WiseftError
from wiseft.results import ROW_FIELDS

ALPHAS = [round(0.1 * i, 1) for i in range(11)]
# shaped like the paper's E2E ImageNet column (Table 4): flat top, tied at 0.6 and 0.7
HELDOUT_E2E = [0.766, 0.804, 0.832, 0.851, 0.862, 0.868, 0.871, 0.871, 0.869, 0.867, 0.862]
HELDOUT_LC = [0.766, 0.784, 0.800, 0.815, 0.827, 0.837, 0.844, 0.850, 0.853, 0.853, 0.852]


def _frame() -> pd.DataFrame:
    rows = []

    def add(method, mode, alpha, role, dataset, value, metric="top1"):
        rows.append(dict(run_id="r1", profile="mini", model="m", pretrained="world:mini", method=method, mode=mode,
                         alpha=alpha, dataset=dataset, role=role, metric=metric, value=value, n=1000,
                         time="t", git_commit=None, extra={}))

    for a, e2e, lc in zip(ALPHAS, HELDOUT_E2E, HELDOUT_LC):
        add("wiseft", "e2e", a, "heldout", "ref-heldout", e2e)
        add("wiseft", "lc", a, "heldout", "ref-heldout", lc)
        add("wiseft", "e2e", a, "shift", "shift-a", 0.9 - abs(a - 0.3))  # must be ignored: shifted data
        add("wiseft", "e2e", a, "reference", "ref", 0.99 - abs(a - 0.2))  # must be ignored: the test split
    add("zeroshot", "e2e", None, "heldout", "ref-heldout", 0.766)  # no alpha: ignored
    return pd.DataFrame.from_records(rows, columns=list(ROW_FIELDS))


def test_selects_the_heldout_maximum_with_ties_to_the_smaller_alpha():
    choice = select_alpha_from_results(_frame(), mode="e2e")
    assert choice.alpha == pytest.approx(0.6) and choice.value == pytest.approx(0.871)
    assert choice.default_alpha == 0.5 and choice.default_value == pytest.approx(0.868)
    assert (choice.metric, choice.dataset, choice.mode) == ("top1", "ref-heldout", "e2e")
    assert len(choice.curve) == 11 and choice.to_dict()["curve"][0] == [0.0, 0.766]

    lc = select_alpha_from_results(_frame(), mode="lc")
    assert lc.alpha == pytest.approx(0.8) and lc.default_value == pytest.approx(0.837)


def test_tolerance_prefers_the_smallest_alpha_within_it():
    choice = select_alpha(ALPHAS, HELDOUT_E2E, tol=0.0035)  # 0.868 at 0.5 is within 0.0035 of 0.871
    assert choice.alpha == pytest.approx(0.5)
    # unsorted input gives the same answer
    order = np.random.default_rng(0).permutation(11)
    assert select_alpha(np.array(ALPHAS)[order], np.array(HELDOUT_E2E)[order]).alpha == pytest.approx(0.6)


def test_ambiguous_or_empty_selections_are_errors_that_say_what_to_filter():
    with pytest.raises(WiseftError, match="mode"):
        select_alpha_from_results(_frame())  # two curves: e2e and lc
    with pytest.raises(WiseftError, match="no rows"):
        select_alpha_from_results(_frame(), mode="e2e", metric="macro_f1")
    with pytest.raises(WiseftError, match="columns"):
        select_alpha_from_results(pd.DataFrame({"alpha": [0.5]}))


def test_array_inputs_are_validated():
    assert select_alpha([0.0, 1.0], [0.5, 0.7]).default_value is None  # 0.5 not evaluated
    with pytest.raises(WiseftError, match="duplicate"):
        select_alpha([0.5, 0.5], [0.1, 0.2])
    with pytest.raises(WiseftError, match="one value per alpha"):
        select_alpha([0.5], [0.1, 0.2])
    with pytest.raises(WiseftError, match=r"\[0, 1\]"):
        select_alpha([1.5], [0.1])
    with pytest.raises(WiseftError, match="tol"):
        select_alpha([0.5], [0.1], tol=-1)

