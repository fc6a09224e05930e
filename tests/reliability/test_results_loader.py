"""The results loader keeps every good row whatever a bad line holds (issue 19, item 5): bad lines are skipped
with a warning naming file:line and why, never raised, never let through with a wrong type."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict

import pytest

from wiseft.results import ResultRow, ResultsStore, load_results


def _row(dataset: str, value: float) -> dict:
    return asdict(ResultRow(run_id="r", profile="p", model="m", pretrained=None, method="wiseft", mode="e2e",
                            alpha=0.5, dataset=dataset, role="reference", metric="top1", value=value, n=10))


def _write(path, *middle: bytes) -> None:
    good = [json.dumps(_row(f"d{i}", 0.1 * (i + 1))).encode() for i in range(3)]
    path.write_bytes(b"\n".join([good[0], *middle, good[1], good[2]]) + b"\n")


def _loaded(path, caplog):
    with caplog.at_level(logging.WARNING, logger="wiseft.results"):
        frame = load_results(path)
    assert list(frame["dataset"]) == ["d0", "d1", "d2"]
    assert frame["value"].tolist() == pytest.approx([0.1, 0.2, 0.3])
    return [r.getMessage() for r in caplog.records]


def test_a_line_that_is_not_utf8_loses_no_good_row(tmp_path, caplog):
    path = tmp_path / "results.jsonl"
    _write(path, b'{"method": "wiseft", "dataset": "caf\xe9\xff", "metric": "top1", "value": 0.5}')
    warnings = _loaded(path, caplog)
    assert any(f"{path}:2:" in w and "UTF-8" in w for w in warnings), warnings


def test_a_deeply_nested_line_is_skipped(tmp_path, caplog):
    path = tmp_path / "results.jsonl"
    deep = {"a": 1}
    for _ in range(40):  # parses, but nests deeper than any row wiseft writes
        deep = {"a": deep}
    _write(path, b"[" * 100_000 + b"]" * 100_000, json.dumps({**_row("x", 0.5), "extra": deep}).encode())
    warnings = _loaded(path, caplog)
    assert sum("nested deeper" in w for w in warnings) == 2, warnings
    assert any(f"{path}:2:" in w for w in warnings) and any(f"{path}:3:" in w for w in warnings)


@pytest.mark.parametrize("field, value", [("dataset", 5), ("metric", ["a"]), ("n", "lots"), ("n", -3),
                                          ("n", True), ("method", None), ("alpha", 1.5), ("alpha", "0.5"),
                                          ("extra", [1, 2]), ("role", 7), ("value", float("nan"))])
def test_rows_of_the_wrong_type_never_reach_the_frame(tmp_path, caplog, field, value):
    path = tmp_path / "results.jsonl"
    _write(path, json.dumps({**_row("bad", 0.5), field: value}).encode())
    warnings = _loaded(path, caplog)
    assert any(f"{path}:2:" in w and field in w for w in warnings), warnings


def test_rows_the_store_writes_all_load(tmp_path):
    store = ResultsStore(tmp_path / "results.jsonl")
    rows = [_row(f"d{i}", i / 10) for i in range(5)]
    rows[2].update(alpha=None, mode=None, n=0, extra={"setting": "x", "lr": 1e-5})
    store.append(rows)
    assert len(store.load()) == 5
