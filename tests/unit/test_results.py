"""The results store: validated rows, atomic concurrent appends, a loader that survives a torn last line."""

from __future__ import annotations

import json
import multiprocessing

import pytest

from wiseft.errors import WiseftError
from wiseft.results import ROW_FIELDS, ResultRow, ResultsStore, load_results

ROWS_PER_PROCESS = 500


def _row(**overrides) -> ResultRow:
    fields = dict(run_id="run", profile="mini", model="tiny", pretrained=None, method="wiseft", mode="e2e",
                  alpha=0.5, dataset="world-print", role="reference", metric="top1", value=0.75, n=100)
    fields.update(overrides)
    return ResultRow(**fields)


def _append_many(path: str, writer: int) -> None:
    store = ResultsStore(path)
    for i in range(ROWS_PER_PROCESS):
        # a long extra makes each line several kilobytes, so torn or interleaved writes would show
        store.append([_row(run_id=f"w{writer}", n=i, extra={"pad": "x" * 3000, "writer": writer, "i": i})])


def test_two_processes_appending_lose_no_row(tmp_path):
    path = tmp_path / "results.jsonl"
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    procs = [ctx.Process(target=_append_many, args=(str(path), w)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2 * ROWS_PER_PROCESS
    records = [json.loads(line) for line in lines]  # every line is whole JSON: nothing interleaved
    for w in range(2):
        got = sorted(r["n"] for r in records if r["run_id"] == f"w{w}")
        assert got == list(range(ROWS_PER_PROCESS))
    frame = load_results(path)
    assert len(frame) == 2 * ROWS_PER_PROCESS and list(frame.columns) == list(ROW_FIELDS)


def test_torn_last_line_is_skipped_with_a_warning(tmp_path, caplog):
    store = ResultsStore(tmp_path / "results.jsonl")
    store.append([_row(), _row(alpha=1.0, method="finetuned")])
    with open(store.path, "a", encoding="utf-8") as fh:
        fh.write('{"run_id": "run", "profile": "mi')  # a power cut mid-write
    frame = store.load()
    assert len(frame) == 2 and frame["value"].dtype == float
    assert "results.jsonl:3" in caplog.text


def test_missing_file_gives_empty_frame(tmp_path):
    frame = load_results(tmp_path / "nope.jsonl")
    assert frame.empty and list(frame.columns) == list(ROW_FIELDS)


@pytest.mark.parametrize("overrides, message", [
    ({"method": "magic"}, "unknown method"), ({"mode": "full"}, "unknown mode"), ({"role": "ood"}, "unknown role"),
    ({"value": 75.0}, "not a fraction"), ({"value": float("nan")}, "not a fraction"), ({"alpha": 1.5}, "alpha"),
])
def test_invalid_rows_are_refused_before_writing(tmp_path, overrides, message):
    store = ResultsStore(tmp_path / "results.jsonl")
    with pytest.raises(WiseftError, match=message):
        store.append([_row(), _row(**overrides)])
    assert not store.path.exists() or store.path.read_text() == ""  # nothing half-written


def test_dict_rows_and_round_trip(tmp_path):
    store = ResultsStore(tmp_path / "results.jsonl")
    assert store.append([dict(vars(_row(alpha=None, mode=None, extra={"lr": 1e-5})))]) == 1
    assert store.append([]) == 0
    frame = store.load()
    assert frame.loc[0, "extra"] == {"lr": 1e-5} and frame["alpha"].isna().all()
