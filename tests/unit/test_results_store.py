"""The results store keeps one row per measurement: writing a step's rows again (a notebook re-executed on an
existing run) replaces them in place, byte for byte when the numbers are the same, and never duplicates them."""

from __future__ import annotations

import json
import multiprocessing

from wiseft.results import ResultRow, ResultsStore, duplicate_keys, load_results, row_key

ROUNDS = 150


def _row(**overrides) -> ResultRow:
    fields = dict(run_id="run", profile="mini", model="tiny", pretrained=None, method="wiseft", mode="e2e",
                  alpha=0.5, dataset="world-print", role="reference", metric="top1", value=0.75, n=100,
                  time="2026-01-01T00:00:00+00:00", git_commit="abc", extra={"setting": "wiseft α=0.5"})
    fields.update(overrides)
    return ResultRow(**fields)


def _sweep(value: float = 0.5, **overrides) -> list[ResultRow]:
    return [_row(alpha=a, dataset=d, value=round(value + a / 10, 6), extra={"setting": f"wiseft α={a:g}"},
                 **overrides) for a in (0.0, 0.5, 1.0) for d in ("world-print", "world-noise")]


def test_writing_the_same_rows_again_leaves_the_file_byte_for_byte(tmp_path):
    store = ResultsStore(tmp_path / "results.jsonl")
    store.append(_sweep())
    store.append([_row(method="zeroshot", alpha=None, extra={"setting": "zeroshot"})])
    before = store.path.read_bytes()
    # a re-executed step: the same numbers, written later by another commit
    assert store.append(_sweep(time="2027-06-01T12:00:00+00:00", git_commit="def")) == 6
    assert store.path.read_bytes() == before
    assert len(load_results(store.path)) == 7 and duplicate_keys(store.path) == []


def test_changed_numbers_replace_their_rows_in_place(tmp_path):
    store = ResultsStore(tmp_path / "results.jsonl")
    store.append(_sweep(0.5))
    store.append([_row(method="zeroshot", alpha=None, extra={"setting": "zeroshot"})])
    store.append(_sweep(0.6)[:2])  # a re-evaluation of α = 0 moved its numbers
    frame = load_results(store.path)
    assert len(frame) == 7 and duplicate_keys(store.path) == []
    assert list(frame["method"]) == ["wiseft"] * 6 + ["zeroshot"]  # the file keeps its order
    assert list(frame["value"][:2]) == [0.6, 0.6] and list(frame["value"][2:6]) == [0.55, 0.55, 0.6, 0.6]


def test_new_keys_are_appended_after_the_rows_already_there(tmp_path):
    store = ResultsStore(tmp_path / "results.jsonl")
    store.append(_sweep())
    before = store.path.read_bytes()
    store.append(_sweep(mode="lc"))
    after = store.path.read_bytes()
    assert after.startswith(before) and len(after.splitlines()) == 12


def test_a_file_with_duplicates_from_older_versions_is_cleaned_when_its_rows_are_written_again(tmp_path):
    path = tmp_path / "results.jsonl"
    old = [json.dumps(vars(r)) for r in _sweep()]
    path.write_text("\n".join(old + old[:3]) + "\n")  # the old store appended a re-executed step's rows
    assert len(duplicate_keys(path)) == 3
    ResultsStore(path).append(_sweep())
    assert duplicate_keys(path) == [] and len(load_results(path)) == 6


def test_the_key_names_the_measurement_not_its_numbers_or_provenance():
    base = _row(extra={"setting": "l2sp λ=0.1", "lambda": 0.1, "protocol": {"metrics": ["top1"]}})
    same = _row(value=0.1, n=7, role="heldout", time="2030-01-01", git_commit="x",
                extra={"setting": "l2sp λ=0.1", "lambda": 0.1, "fingerprint": "f", "skipped_images": 3})
    assert row_key(base) == row_key(same) == row_key(vars(same))
    assert row_key(_row(alpha=1)) == row_key(_row(alpha=1.0))
    for other in (_row(extra={"setting": "l2sp λ=0.1", "lambda": 1.0}), _row(alpha=0.55), _row(profile="other"),
                  _row(model="ViT-B-16"), _row(method="ose"), _row(mode="lc"), _row(dataset="world-noise"),
                  _row(metric="f1")):
        assert row_key(other) != row_key(base)
    # the same folder run again with changed settings (another run id): its new numbers replace the old ones
    assert row_key(_row(run_id="run2")) == row_key(_row())


def test_a_rewrite_keeps_a_torn_line_and_the_file_mode(tmp_path, caplog):
    store = ResultsStore(tmp_path / "results.jsonl")
    store.append(_sweep())
    store.path.chmod(0o640)
    with open(store.path, "a", encoding="utf-8") as fh:
        fh.write('{"run_id": "run", "profile": "mi')  # a power cut mid-write
    store.append(_sweep(0.6))
    lines = store.path.read_text().splitlines()
    assert lines[-1] == '{"run_id": "run", "profile": "mi' and len(lines) == 7
    assert (store.path.stat().st_mode & 0o777) == 0o640
    frame = store.load()
    assert len(frame) == 6 and frame["value"].min() == 0.6 and "results.jsonl:7" in caplog.text


def _replace_and_append(path: str, writer: int) -> None:
    store = ResultsStore(path)
    for i in range(ROUNDS):
        batch = [_row(run_id=f"w{writer}", alpha=None, n=i, extra={"writer": writer, "i": i, "pad": "x" * 500})]
        if writer == 0:  # writer 0 also rewrites the same rows every time: the file is replaced under writer 1
            batch += _sweep(value=0.5 if i % 2 else 0.6, run_id="shared", profile="shared")
        store.append(batch)


def test_a_writer_that_waited_for_a_replaced_file_loses_nothing(tmp_path):
    path = tmp_path / "results.jsonl"
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    procs = [ctx.Process(target=_replace_and_append, args=(str(path), w)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    frame = load_results(path)
    for w in range(2):
        assert sorted(frame[frame["run_id"] == f"w{w}"]["n"]) == list(range(ROUNDS))
    shared = frame[frame["run_id"] == "shared"]
    assert len(shared) == 6 and duplicate_keys(path) == []
    assert sorted(shared["value"]) == sorted(r.value for r in _sweep(0.5))  # the last round wrote 0.5
