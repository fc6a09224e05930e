"""Faults: processes killed mid-write, torn results files, a pipeline killed mid-step and rerun.

A writer is killed with SIGKILL (no ``finally``, no ``atexit``) in a forked child at the worst moment: after half
of the bytes are on disk, or between the two files of a checkpoint. What is left must never pass for a complete
file: the destination is absent (or still the previous complete version), only hidden temporaries remain, and
every loader refuses or ignores them. The kernel-level versions (a real papermill step killed, a real fine-tuning
run killed and resumed) are in ``tests/unit/test_pipeline_kernel.py`` and
``tests/integration/test_finetune_kill_resume.py``.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wiseft.errors import CheckpointError
from wiseft.results import ResultRow, ResultsStore, load_results
from tests.helpers.stub_notebooks import write_step_notebooks

_CTX = multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None
pytestmark = pytest.mark.skipif(_CTX is None, reason="needs fork() to kill a writer at a chosen point")


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _run_killed(target, *args) -> None:
    proc = _CTX.Process(target=target, args=args)
    proc.start()
    proc.join(timeout=120)
    assert proc.exitcode == -signal.SIGKILL, f"the child was not killed (exit code {proc.exitcode})"


def _visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def _row(**kw) -> ResultRow:
    base = dict(run_id="r", profile="p", model="m", pretrained=None, method="wiseft", mode="e2e", alpha=0.5,
                dataset="d", role="reference", metric="top1", value=0.5, n=10)
    base.update(kw)
    return ResultRow(**base)


# ----------------------------------------------------------------------------------------- atomic files
def _half_then_die(dest: str) -> None:
    from wiseft.io import atomic_path

    with atomic_path(dest) as tmp:
        tmp.write_bytes(b'{"complete": fa')  # half of the JSON
        _die()


@pytest.mark.parametrize("existed", [False, True])
def test_a_file_killed_mid_write_is_absent_or_the_previous_version(tmp_path, existed):
    from wiseft.io import atomic_write_json

    dest = tmp_path / "out" / "summary.json"
    if existed:
        atomic_write_json(dest, {"complete": True})
    _run_killed(_half_then_die, str(dest))
    assert _visible(dest.parent) == (["summary.json"] if existed else [])
    if existed:
        assert json.loads(dest.read_text()) == {"complete": True}
    leftovers = [p.name for p in dest.parent.iterdir() if p.name.startswith(".")]
    assert leftovers and all(n.startswith(".summary.json.") and n.endswith(".tmp") for n in leftovers)


def _checkpoint_killed(stem: str, where: str, seed: int) -> None:
    import open_clip
    import safetensors.torch

    from wiseft import checkpoint
    from wiseft.models import ClassificationHead, ClassifierInfo, ImageClassifier

    torch.manual_seed(seed)
    clip = open_clip.create_model("wiseft-test-tiny", pretrained=None)
    clf = ImageClassifier(clip.visual, ClassificationHead(torch.randn(3, 16)),
                          ClassifierInfo("wiseft-test-tiny", None, ["a", "b", "c"], "simple", (0.5,) * 3,
                                         (0.25,) * 3, (32, 32)))
    if where == "tensors":  # half of the tensor file is written, then the process dies
        real = safetensors.torch.save_file

        def half(tensors, filename, metadata=None):
            real(tensors, filename, metadata=metadata)
            data = Path(filename).read_bytes()
            Path(filename).write_bytes(data[: len(data) // 2])
            _die()

        safetensors.torch.save_file = half
    else:  # the tensor file is in place, the sidecar is not
        checkpoint.atomic_write_json = lambda *a, **k: _die()
    checkpoint.save_classifier(clf, stem, {})


@pytest.mark.parametrize("where", ["tensors", "sidecar"])
@pytest.mark.parametrize("existed", [False, True])
def test_a_checkpoint_killed_mid_save_never_loads(tmp_path, tiny_model_name, where, existed):
    from wiseft.checkpoint import load_classifier

    stem = tmp_path / "checkpoints" / "finetuned_e2e"
    if existed:
        _save_complete(stem, seed=0)
    _run_killed(_checkpoint_killed, str(stem), where, 1)
    if existed and where == "tensors":
        clf, _ = load_classifier(stem)  # the previous complete checkpoint, untouched
        assert clf.num_classes == 3
        return
    with pytest.raises(CheckpointError, match="finetuned_e2e") as info:
        load_classifier(stem)
    message = str(info.value)
    if existed:  # new tensors under the old sidecar
        assert "does not match its sidecar" in message
    else:
        assert "does not exist" in message
    # A pipeline step recording its outputs never mistakes the temporaries for files it produced.
    assert not [p for p in stem.parent.glob("finetuned_*") if p.name.endswith(".tmp")]


def _save_complete(stem: Path, seed: int) -> None:
    from wiseft.checkpoint import save_classifier
    from wiseft.models import ClassificationHead, ClassifierInfo, ImageClassifier
    import open_clip

    torch.manual_seed(seed)
    clip = open_clip.create_model("wiseft-test-tiny", pretrained=None)
    save_classifier(ImageClassifier(clip.visual, ClassificationHead(torch.randn(3, 16)),
                                    ClassifierInfo("wiseft-test-tiny", None, ["a", "b", "c"], "simple",
                                                   (0.5,) * 3, (0.25,) * 3, (32, 32))), stem, {})


def _figure_killed(folder: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from wiseft.figures import save_figure

    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    real = fig.savefig

    def half(fname, **kw):
        real(fname, **kw)
        data = Path(fname).read_bytes()
        Path(fname).write_bytes(data[: len(data) // 2])
        _die()

    fig.savefig = half
    save_figure(fig, folder, "fig1", formats=("png",))


def test_a_figure_killed_mid_save_leaves_no_figure(tmp_path):
    folder = tmp_path / "figures"
    _run_killed(_figure_killed, str(folder))
    assert _visible(folder) == []
    assert not list(folder.glob("fig1.*"))  # the step's `produces` glob does not see the temporary


# ------------------------------------------------------------------------------------------------ results
def test_rows_appended_after_a_torn_line_are_all_kept(tmp_path, caplog):
    store = ResultsStore(tmp_path / "results.jsonl")
    store.append([_row(alpha=0.0)])
    with open(store.path, "ab") as fh:
        fh.write(b'{"run_id": "r", "profile": "p", "mod')  # a power cut mid-write
    store.append([_row(alpha=0.5), _row(alpha=1.0)])
    frame = load_results(store.path)
    assert sorted(frame["alpha"]) == [0.0, 0.5, 1.0]
    assert "results.jsonl:2" in caplog.text  # the torn line is reported, not parsed
    lines = store.path.read_bytes().split(b"\n")
    assert lines[-1] == b"" and all(json.loads(line) for line in lines[2:-1])


def _append_then_die(path: str) -> None:
    store = ResultsStore(path)
    store.append([_row(alpha=a / 10) for a in range(11)])
    _die()


def test_rows_of_a_killed_writer_are_whole(tmp_path):
    path = tmp_path / "results.jsonl"
    _run_killed(_append_then_die, str(path))
    ResultsStore(path).append([_row(method="finetuned", alpha=1.0)])
    lines = path.read_text().splitlines()
    assert len(lines) == 12 and all(json.loads(line)["run_id"] == "r" for line in lines)


# ----------------------------------------------------------------------------------------------- pipeline
class _Executor:
    """Stands in for papermill: writes the executed copy, a checkpoint-like file, a figure and results rows the
    way the real steps do (atomically), and kills its own process in ``kill_at`` half-way through a figure."""

    def __init__(self, kill_at: str | None = None):
        self.kill_at = kill_at
        self.ran: list[str] = []

    def __call__(self, source, dest, parameters, *, kernel_name, cwd, step):
        from wiseft.io import atomic_path, atomic_write_bytes

        self.ran.append(step)
        run = Path(parameters["run_dir"])
        if step == "zeroshot":
            atomic_write_bytes(run / "checkpoints" / "zeroshot.safetensors", b"tensors")
            ResultsStore(run / "results.jsonl").append([_row(method="zeroshot", mode=None, alpha=None)])
        if step == "fig1":
            ResultsStore(run / "results.jsonl").append([_row(alpha=0.5)])
            with atomic_path(run / "figures" / "fig1.png") as tmp:
                tmp.write_bytes(b"\x89PNG half")
                if step == self.kill_at:
                    _die()
                tmp.write_bytes(b"\x89PNG complete")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(Path(source).read_bytes())
        return dest


def _profile():
    from wiseft.profile import profile_from_dict

    return profile_from_dict({"name": "tiny", "model": {"name": "m"}, "data": {"reference": "r"},
                              "steps": ["data", "zeroshot", "fig1"]}, check_references=False)


def _pipeline_killed(run: str, notebooks: str) -> None:
    from wiseft.pipeline import run_pipeline

    run_pipeline(_profile(), out_dir=run, notebooks_dir=notebooks, executor=_Executor(kill_at="fig1"))


def test_a_run_killed_mid_step_skips_finished_steps_and_reruns_the_broken_one(tmp_path):
    from wiseft.pipeline import run_pipeline

    run, nbdir = tmp_path / "run", tmp_path / "notebooks"
    write_step_notebooks(nbdir, ["data", "zeroshot", "fig1"])
    _run_killed(_pipeline_killed, str(run), str(nbdir))

    # Finished steps are recorded; the killed one left nothing that looks complete.
    assert sorted(p.name for p in (run / "steps").iterdir()) == ["data.json", "zeroshot.json"]
    assert not (run / "notebooks" / "figures" / "fig1.ipynb").exists()
    assert _visible(run / "figures") == []
    assert (run / "checkpoints" / "zeroshot.safetensors").read_bytes() == b"tensors"
    # Rows appended by the killed step are whole rows (never half a line); the rerun's rows supersede them
    # (figures keep the last row of a setting).
    assert all(json.loads(line) for line in (run / "results.jsonl").read_text().splitlines())

    # A second `wiseft run` is not blocked by the dead run's lock, skips data and zeroshot, reruns fig1.
    rerun = _Executor()
    outcomes = run_pipeline(_profile(), out_dir=run, notebooks_dir=nbdir, executor=rerun)
    assert [(o.step, o.status) for o in outcomes] == [("data", "skipped"), ("zeroshot", "skipped"), ("fig1", "ran")]
    assert rerun.ran == ["fig1"]
    assert (run / "figures" / "fig1.png").read_bytes() == b"\x89PNG complete"
    assert json.loads((run / "steps" / "fig1.json").read_text())["outputs"] == ["figures/fig1.png"]


_json_line = st.recursive(st.none() | st.booleans() | st.integers(-5, 5) | st.floats() | st.text(max_size=4),
                          lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(st.sampled_from(["value", "alpha", "method", "dataset", "metric", "x"]),
                                            inner, max_size=5), max_leaves=8)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.lists(st.one_of(_json_line.map(lambda v: json.dumps(v)), st.binary(max_size=20).map(
    lambda b: b.decode("latin1"))), min_size=1, max_size=4))
def test_a_damaged_results_file_keeps_its_good_rows(tmp_path, junk):
    """Bit rot or a hand edit: every line that is not a valid row is skipped with a warning, never a crash."""
    path = tmp_path / "results.jsonl"
    path.write_text("")
    store = ResultsStore(path)
    store.append([_row(alpha=0.25)])
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("\n".join(line.replace("\n", " ").replace("\r", " ") for line in junk) + "\n")
    store.append([_row(alpha=0.75)])
    frame = load_results(path)
    assert {0.25, 0.75} <= set(frame["alpha"].dropna())
    assert frame["value"].dtype == float and frame["value"].between(0, 1).all()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(marker=st.dictionaries(st.sampled_from(["format", "fingerprint", "notebook", "outputs", "step", "x"]),
                              _json_line, max_size=5) | _json_line,
       raw=st.none() | st.binary(max_size=30))
def test_a_damaged_done_marker_reruns_its_step(tmp_path_factory, marker, raw):
    """A marker is written last and atomically, but disks rot and people edit: anything unreadable reruns."""
    from wiseft.pipeline import run_pipeline

    folder = tmp_path_factory.mktemp("m")
    run, nbdir = folder / "run", folder / "notebooks"
    write_step_notebooks(nbdir, ["data", "zeroshot", "fig1"])
    run_pipeline(_profile(), out_dir=run, notebooks_dir=nbdir, executor=_Executor())
    path = run / "steps" / "zeroshot.json"
    if raw is not None:
        path.write_bytes(raw)
    else:
        good = json.loads(path.read_text())
        path.write_text(json.dumps({**good, **marker} if isinstance(marker, dict) else marker))
    again = _Executor()
    outcomes = run_pipeline(_profile(), out_dir=run, notebooks_dir=nbdir, executor=again)
    assert outcomes[0].status == "skipped"
    # Skipped if still valid, else rerun with what follows; a marker whose content changed also reruns what
    # depends on it (its hash is part of their fingerprints).
    assert set(again.ran) in (set(), {"fig1"}, {"zeroshot", "fig1"})
