"""Tables the notebooks print list their rows in a declared order, whatever order the results file holds them in
(a step re-executed on an existing run must not reorder a table)."""

from __future__ import annotations

import pandas as pd

from wiseft.steps.common import summary_table


def _frame() -> pd.DataFrame:
    settings = [("l2sp", "e2e", "l2sp λ=10"), ("l2sp", "e2e", "l2sp λ=0.1"), ("ema", "e2e", "ema β=0.99"),
                ("lc_l2sp", "lc", "lc_l2sp λ=1"), ("l2sp", "e2e", "l2sp λ=0.01"), ("ema", "e2e", "ema β=0.9"),
                ("zeroshot", None, "zeroshot"), ("finetuned", "lc", "finetuned lc"),
                ("finetuned", "e2e", "finetuned e2e"), ("lpft", "e2e", "lpft")]
    rows = []
    for i, (method, mode, label) in enumerate(settings):
        for dataset, role in (("ref", "reference"), ("shift-a", "shift"), ("shift-b", "shift")):
            rows.append(dict(method=method, mode=mode, alpha=None, dataset=dataset, role=role, metric="top1",
                             value=0.5 + i / 100, extra={"setting": label}))
    return pd.DataFrame(rows)


def test_summary_rows_follow_method_mode_and_knob_not_the_file():
    frame = _frame()
    table = summary_table(frame)
    assert list(table.index) == ["zeroshot", "finetuned e2e", "finetuned lc", "l2sp λ=0.01", "l2sp λ=0.1",
                                 "l2sp λ=10", "ema β=0.9", "ema β=0.99", "lpft", "lc_l2sp λ=1"]
    labels = frame["extra"].map(lambda e: e["setting"])
    for seed in range(3):  # the same rows, their settings written in another order (a step run again later)
        order = pd.Series(labels.unique()).sample(frac=1.0, random_state=seed).tolist()
        shuffled = pd.concat([frame[labels == label] for label in order], ignore_index=True)
        pd.testing.assert_frame_equal(summary_table(shuffled), table)
    assert list(table.columns) == ["ref", "shift-a", "shift-b", "avg shifts", "avg"]
