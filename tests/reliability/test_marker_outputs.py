"""Done-markers remember what their outputs were (issue 19, item 6): a truncated, replaced or edited output
means redo the step; an untouched output, or one copied with a new modification time, is still skipped."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from tests.helpers.stub_notebooks import write_step_notebooks
from wiseft.pipeline import run_pipeline
from wiseft.pipeline.markers import is_up_to_date, read_marker

WEIGHTS = b"\x10\x00\x00\x00\x00\x00\x00\x00" + b'{"__metadata__":{}}' + b"w" * 4000


class _Executor:
    """Stands in for papermill: the zeroshot step writes a checkpoint, every step its executed notebook."""

    def __init__(self):
        self.ran: list[str] = []

    def __call__(self, source, dest, parameters, *, kernel_name, cwd, step):
        self.ran.append(step)
        run = Path(parameters["run_dir"])
        if step == "zeroshot":
            (run / "checkpoints").mkdir(parents=True, exist_ok=True)
            (run / "checkpoints" / "zeroshot.safetensors").write_bytes(WEIGHTS)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(Path(source).read_bytes())
        return dest


def _profile():
    from wiseft.profile import profile_from_dict

    return profile_from_dict({"name": "tiny", "model": {"name": "m"}, "data": {"reference": "r"},
                              "steps": ["data", "zeroshot"]}, check_references=False)


def _finished(tmp_path):
    run, nbdir = tmp_path / "run", tmp_path / "notebooks"
    write_step_notebooks(nbdir, ["data", "zeroshot"])
    run_pipeline(_profile(), out_dir=run, notebooks_dir=nbdir, executor=_Executor())
    return run, nbdir


def _rerun(run, nbdir) -> dict[str, str]:
    again = _Executor()
    outcomes = run_pipeline(_profile(), out_dir=run, notebooks_dir=nbdir, executor=again, only=["zeroshot"])
    return {o.step: f"{o.status}: {o.reason}" for o in outcomes}


def test_the_marker_records_size_time_and_hash_of_each_output(tmp_path):
    run, _ = _finished(tmp_path)
    record = json.loads((run / "steps" / "zeroshot.json").read_text())["files"]["checkpoints/zeroshot.safetensors"]
    assert record["size"] == len(WEIGHTS) and len(record["sha256"]) == 64 and record["mtime_ns"] > 0


def test_a_truncated_checkpoint_is_redone(tmp_path):
    run, nbdir = _finished(tmp_path)
    ckpt = run / "checkpoints" / "zeroshot.safetensors"
    with open(ckpt, "r+b") as fh:
        fh.truncate(100)
    outcome = _rerun(run, nbdir)["zeroshot"]
    assert outcome.startswith("ran:") and "changed size" in outcome
    assert ckpt.read_bytes() == WEIGHTS


def test_a_same_size_edit_is_redone_even_with_the_old_modification_time(tmp_path):
    run, nbdir = _finished(tmp_path)
    ckpt = run / "checkpoints" / "zeroshot.safetensors"
    st = ckpt.stat()
    ckpt.write_bytes(WEIGHTS[:-1] + b"X")
    os.utime(ckpt, ns=(st.st_atime_ns, st.st_mtime_ns + 1))  # touched: the hash decides
    assert "changed content" in _rerun(run, nbdir)["zeroshot"]


def test_untouched_and_copied_outputs_are_still_skipped(tmp_path):
    run, nbdir = _finished(tmp_path)
    assert _rerun(run, nbdir)["zeroshot"].startswith("skipped")
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)  # copytree keeps times; make them differ as a plain `cp -r` would
    for p in copy.rglob("*.safetensors"):
        os.utime(p)
    marker = read_marker(copy / "steps", "zeroshot")
    assert is_up_to_date(marker, marker["fingerprint"], copy) == (True, "unchanged")


def test_a_marker_with_a_malformed_file_record_reruns(tmp_path):
    run, nbdir = _finished(tmp_path)
    path = run / "steps" / "zeroshot.json"
    marker = json.loads(path.read_text())
    marker["files"]["checkpoints/zeroshot.safetensors"]["size"] = "big"
    path.write_text(json.dumps(marker))
    assert _rerun(run, nbdir)["zeroshot"].startswith("ran:")


def test_a_marker_cannot_send_the_checks_outside_the_run_folder(tmp_path):
    """A forged record pointing at /dev/zero would hash forever; one at ../x would check another folder."""
    run, nbdir = _finished(tmp_path)
    path = run / "steps" / "zeroshot.json"
    good = json.loads(path.read_text())
    for rel in ("/dev/zero", "../../outside.bin", "checkpoints/../../x"):
        marker = json.loads(json.dumps(good))
        marker["files"][rel] = {"size": 0, "mtime_ns": 1, "sha256": "0" * 64}
        path.write_text(json.dumps(marker))
        assert read_marker(run / "steps", "zeroshot") is None, rel
