"""What the notebooks call besides the steps: opening a run, stopping early, errors as messages, the data step,
and the course helpers. In-process (an IPython shell, the toy task); no kernel."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers.toy_task import build_toy_task, toy_profile
from wiseft import notebook as NB
from wiseft.errors import DatasetError, WiseftError
from wiseft.profile import load_profile, profile_from_dict
from wiseft.run import RunContext
from wiseft.steps import check_data, run_data
from wiseft.steps.data import data_problems, describe_world, format_data, prepare_world, world_settings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def toy(tmp_path, tiny_model_name):
    build_toy_task(tmp_path)
    return tmp_path, toy_profile(tmp_path, tiny_model_name)


@pytest.fixture
def shell():
    """A fresh IPython shell; cells run with history, as in a kernel."""
    from IPython.core.interactiveshell import InteractiveShell

    sh = InteractiveShell.instance()
    yield lambda source: sh.run_cell(source, store_history=True)
    NB.stop_if(None)
    sh.set_custom_exc((), None)
    InteractiveShell.clear_instance()


# ------------------------------------------------------------------------------------------ open_run
def test_run_dir_defaults_to_runs_of_the_repository_holding_the_notebook(tmp_path, monkeypatch):
    monkeypatch.delenv(NB.RUNS_ENV, raising=False)
    repo = tmp_path / "clone"
    (repo / "notebooks" / "figures").mkdir(parents=True)
    (repo / "notebooks" / "01_data.ipynb").write_text("{}")
    assert NB.notebook_run_dir("mini", repo / "notebooks" / "figures") == repo / "runs" / "mini"
    assert NB.notebook_run_dir("mini", repo / "notebooks") == repo / "runs" / "mini"
    # outside any clone: the source tree wiseft is imported from (this repository)
    assert NB.notebook_run_dir("mini", tmp_path) == REPO / "runs" / "mini"
    assert NB.notebook_run_dir("../escape", repo / "notebooks").parent == repo / "runs"  # never climbs out
    monkeypatch.setenv(NB.RUNS_ENV, str(tmp_path / "scratch"))
    assert NB.notebook_run_dir("mini", repo / "notebooks") == tmp_path / "scratch" / "mini"


def test_open_run_honours_run_dir_and_the_device_variable(toy, monkeypatch):
    root, profile = toy
    monkeypatch.delenv(NB.DEVICE_ENV, raising=False)
    ctx = NB.open_run(str(profile), ["seed=3"], str(root / "run"), None)
    assert ctx.dir == (root / "run").resolve() and ctx.profile.seed == 3 and ctx._device_name == "cpu"
    monkeypatch.setenv(NB.DEVICE_ENV, "cuda")
    assert NB.open_run(str(profile), [], str(root / "run"), None)._device_name == "cuda"
    assert NB.open_run(str(profile), [], str(root / "run"), "cpu")._device_name == "cpu"  # explicit wins
    assert "run folder" in NB.describe_run(ctx)


# ------------------------------------------------------------------------------------------ stop_if
def test_stop_if_skips_the_rest_cleanly_and_lifts_when_the_data_is_there(shell, capsys):
    assert shell("from wiseft.notebook import stop_if\nx = 1").success
    assert shell("stop_if('no WiSE-FT sweep; run the interpolate step')").success
    out = capsys.readouterr().out
    assert "Not drawn: no WiSE-FT sweep; run the interpolate step." in out
    result = shell("y = 2\nraise RuntimeError('must not run')")
    assert result.success and "(skipped: no WiSE-FT sweep" in capsys.readouterr().out
    assert shell("from wiseft.notebook import stop_if\nx = 1").success  # earlier cells still run
    assert "skipped" not in capsys.readouterr().out
    assert shell("stop_if(None)").success and NB.stopped() is None
    assert shell("y = 2").success and shell("y").result == 2


def test_stop_if_outside_ipython_exits_with_status_0(monkeypatch, capsys):
    monkeypatch.setattr(NB, "_ipython", lambda: None)
    NB.stop_if(None)  # nothing to do
    with pytest.raises(SystemExit) as info:
        NB.stop_if("no data")
    assert info.value.code == 0 and "Not drawn: no data." in capsys.readouterr().out


def test_wiseft_errors_show_their_message_other_errors_their_traceback(shell, toy, capsys):
    _, profile = toy
    shell(f"from wiseft.notebook import open_run\nctx = open_run({str(profile)!r}, [], None, None)")
    result = shell("from wiseft.errors import DatasetError\n"
                   "raise DatasetError('toy is missing; fix: wiseft data download toy')")
    assert not result.success  # papermill and nbval still see a failure
    out = capsys.readouterr().out
    assert "DatasetError" in out and "wiseft data download toy" in out and "Traceback" not in out
    assert not shell("1 / 0").success
    assert "Traceback" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------ showing
def test_show_closes_the_figure_and_markdown_handles_empty_tables(capsys):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    NB.show(fig)
    assert not plt.fignum_exists(fig.number)
    assert NB.markdown(pd.DataFrame(), title="WiSE-FT sweep, LC (%)") == "WiSE-FT sweep, LC (%): (empty)"
    table = pd.DataFrame({"imagenet": [71.25]}, index=pd.Index(["Zero-shot"], name="method"))
    assert "| Zero-shot | 71.2 |" in NB.markdown(table) or "| Zero-shot | 71.3 |" in NB.markdown(table)


def test_save_tables_skips_empty_ones(tmp_path):
    table = pd.DataFrame({"a": [1.0]}, index=pd.Index([0.5], name="α"))
    paths = NB.save_tables(tmp_path, {"sweep_table_e2e": table, "sweep_table_lc": pd.DataFrame()}, title="Sweep")
    assert sorted(p.name for p in paths) == ["sweep_table_e2e.csv", "sweep_table_e2e.md"]
    assert "Sweep (sweep_table_e2e)" in (tmp_path / "sweep_table_e2e.md").read_text()


def test_paper_comparison_says_when_there_is_no_paper_setting():
    profile = profile_from_dict({"name": "mini", "model": {"name": "m"}, "data": {"reference": "r"}},
                                check_references=False)
    assert "no counterpart" in NB.paper_comparison(pd.DataFrame(), profile)


# ------------------------------------------------------------------------------------------ data step
def test_run_data_checks_every_split_of_every_dataset(toy):
    root, profile = toy
    ctx = RunContext(load_profile(profile), root / "run")
    table = run_data(ctx, sample=5)
    assert list(table["dataset"]) == ["toy", "toy", "toy", "toy-dark"]
    assert list(table["role"]) == ["reference"] * 3 + ["shift"]
    assert dict(zip(table["split"][:3], table["use"][:3])) == {"train": "train", "val": "held-out", "test": "eval"}
    assert (table["status"] == "ok").all() and (table["classes"] == 3).all()
    assert list(table["images"]) == list(table["expected"]) == [36, 12, 12, 12]
    assert list(table["decoded"]) == [5, 5, 5, 5]
    assert data_problems(table) is None
    assert check_data(table) == "All 2 datasets are in place: 4 splits, 72 images, 20 decoded without error."
    text = format_data(table)
    assert "toy-dark" in text and str(root) not in text  # no paths in what nbval checks
    assert "no offline world" in describe_world(table)
    assert (root / "run" / "profile.yaml").is_file()


def test_missing_and_broken_data_name_their_fix(toy):
    import shutil

    root, profile = toy
    shutil.rmtree(root / "toy" / "shift")
    next((root / "toy" / "train").rglob("*.png")).unlink()
    ctx = RunContext(load_profile(profile), root / "run")
    table = run_data(ctx, sample=5).set_index(["dataset", "split"])
    assert table.loc[("toy-dark", "test"), "status"] == "missing"
    assert table.loc[("toy-dark", "test"), "fix"] == "wiseft data download toy-dark"
    assert table.loc[("toy", "train"), "status"] == "problems" and table.loc[("toy", "train"), "images"] == 35
    assert table.loc[("toy", "test"), "status"] == "ok"
    with pytest.raises(DatasetError) as info:
        check_data(table.reset_index())
    message = str(info.value)
    assert "toy-dark/test is missing" in message and "fix: wiseft data download toy-dark" in message
    assert "toy/train has problems" in message and "count mismatch" in message


def test_prepare_world_calls_the_world_builders_with_the_profiles_settings(monkeypatch):
    raw = {"name": "w", "model": {"name": "m", "pretrained": "world:mini"}, "data": {"reference": "r"}}
    profile = profile_from_dict(raw, check_references=False)
    assert world_settings(profile_from_dict({**raw, "model": {"name": "m"}}, check_references=False)) is None
    assert world_settings(profile)["name"] == "mini"
    calls = []
    fake = types.SimpleNamespace(
        ensure_world=lambda name, **kw: calls.append(("world", name, kw)) or Path("/cache/world/abc"),
        ensure_pretrained=lambda name, **kw: calls.append(("model", name, kw)) or Path("/cache/world/m.safetensors"))
    monkeypatch.setitem(sys.modules, "wiseft.world", fake)
    if isinstance(profile.world, dict):  # the world section before and after the world module's schema landed
        profile.world.update(seed=7, workers=2)
    else:
        profile.world.seed, profile.world.workers = 7, 2
    info = prepare_world(profile)
    assert info == {"world": "mini", "folder": Path("/cache/world/abc"), "weights": Path("/cache/world/m.safetensors")}
    assert calls[0] == ("world", "mini", {"seed": 7, "root": None, "workers": 2})
    assert calls[1] == ("model", "mini", {"seed": 7, "root": None, "device": "cpu", "workers": 2, "packaged": True})
    profile.world.packaged_weights = False  # pretrain here rather than copy the shipped weights
    calls.clear()
    prepare_world(profile)
    assert calls[1][2]["packaged"] is False


def test_prepare_world_without_the_world_module_says_what_is_missing(monkeypatch):
    import importlib

    profile = profile_from_dict({"name": "w", "model": {"name": "m", "pretrained": "world:mini"},
                                 "data": {"reference": "r"}}, check_references=False)
    real = importlib.import_module

    def missing(name, *args):
        if name == "wiseft.world":
            raise ModuleNotFoundError("No module named 'wiseft.world'", name="wiseft.world")
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", missing)
    with pytest.raises(WiseftError, match="no wiseft.world module"):
        prepare_world(profile)


# ------------------------------------------------------------------------------------------ course helpers
def test_course_accuracy_matches_the_evaluation_engine(toy, make_classifier):
    from wiseft.course import accuracy
    from wiseft.steps import eval_sets
    from wiseft.steps.common import classifier_transform, evaluate, fixed_setting

    root, profile = toy
    ctx = RunContext(load_profile(profile), root / "run")
    model = make_classifier(num_classes=3, seed=1)
    sets = eval_sets(ctx.profile, classifier_transform(model))
    result = evaluate(ctx, model, [fixed_setting("zeroshot")], sets)
    for s in sets:
        assert accuracy(model, s, batch_size=5) == pytest.approx(result.value("zeroshot", s.name))


def test_check_interpolation_explains_mistakes_on_a_clip_classifier(make_classifier):
    from wiseft.course import check_interpolation

    theta_0 = make_classifier(num_classes=3, seed=0).state_dict()
    theta_1 = make_classifier(num_classes=3, seed=1).state_dict()
    check = check_interpolation(lambda t0, t1, a: {k: (1 - a) * t0[k] + a * t1[k] for k in t0}, theta_0, theta_1)
    assert check.ok and "matches wiseft's in every tensor at α = 0, 0.25, 0.8, 1" in str(check)
    check = check_interpolation(lambda t0, t1, a: {k: a * t0[k] + (1 - a) * t1[k] for k in t0}, theta_0, theta_1)
    assert not check.ok and "reversed" in str(check).splitlines()[0]
    no_head = check_interpolation(lambda t0, t1, a: {k: v for k, v in t0.items() if not k.startswith("head.")},
                                  theta_0, theta_1)
    assert "exactly the keys of theta_0" in str(no_head).splitlines()[0] and "2 tensor(s) missing" in str(no_head)
    head_only = check_interpolation(lambda t0, t1, a: {k: (1 - a) * t0[k] + a * t1[k] if k.startswith("head.")
                                                       else t0[k] for k in t0}, theta_0, theta_1)
    assert str(head_only).startswith("Hint: you mixed only the classification head")


def test_reference_sweep_says_which_step_to_run(toy):
    from wiseft.course import CourseError, reference_sweep

    root, profile = toy
    ctx = RunContext(load_profile(profile), root / "run")
    with pytest.raises(CourseError, match="wiseft run --profile toy"):
        reference_sweep(ctx, [0.0, 0.5, 1.0], ["toy"])


# ------------------------------------------------------------------------------------------ recording
@pytest.mark.slow
def test_record_executes_in_place_from_the_notebooks_folder(tmp_path, monkeypatch):
    """What scripts/record_notebooks.sh does: run in the notebook's folder (as nbval does), write outputs back."""
    import nbformat

    from wiseft.errors import PipelineError
    from wiseft.pipeline import notebooks as gen

    folder = tmp_path / "notebooks"
    (folder / "figures").mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import os\nprint(os.path.basename(os.getcwd()))")]
    nb.metadata["kernelspec"] = dict(gen.KERNELSPEC)
    nbformat.write(nb, folder / "figures" / "a.ipynb")
    nb.cells.append(nbformat.v4.new_code_cell("raise ValueError('boom')"))
    nbformat.write(nb, folder / "b.ipynb")
    monkeypatch.setattr(gen, "notebook_paths", lambda: ["figures/a.ipynb", "b.ipynb"])
    with pytest.raises(PipelineError, match="recording b.ipynb failed: ValueError: boom"):
        gen.record_notebooks(folder)
    recorded = nbformat.read(folder / "figures" / "a.ipynb", as_version=4)
    assert recorded.cells[0].outputs[0]["text"] == "figures\n"
    assert "execution" not in recorded.cells[0].metadata  # no timestamps: re-recording gives clean diffs
