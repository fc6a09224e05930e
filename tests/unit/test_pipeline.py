"""The pipeline runner's bookkeeping, with a fake executor in place of papermill (no kernel, fast)."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from wiseft.errors import PipelineError, ProfileError
from wiseft.pipeline import get_step, list_steps, run_pipeline, select_steps
from wiseft.pipeline.execute import executed_paths
from wiseft.profile import profile_from_dict
from tests.helpers.stub_notebooks import write_step_notebooks

CORE = ["data", "zeroshot", "finetune", "interpolate", "baselines"]


def make_profile(**extra):
    raw = {"name": "tiny", "model": {"name": "m"}, "data": {"reference": "r"}, "steps": ["data", "zeroshot", "fig1"]}
    raw.update(extra)
    return profile_from_dict(raw, check_references=False)


def write_notebooks(folder: Path, steps=None, body="x = 1"):
    write_step_notebooks(folder, steps, body)


class FakeExecutor:
    """Records the steps it runs, writes the executed copy, optionally fails or writes figures."""

    def __init__(self, fail: str | None = None, outputs: dict[str, dict[str, str]] | None = None):
        self.calls: list[tuple[str, dict]] = []
        self.fail = fail
        self.outputs = outputs or {}

    def __call__(self, source, dest, parameters, *, kernel_name, cwd, step):
        self.calls.append((step, dict(parameters)))
        running, final, failed = executed_paths(dest)
        final.parent.mkdir(parents=True, exist_ok=True)
        if step == self.fail:
            failed.write_text("{}")
            raise PipelineError(f"step '{step}': notebook {source} failed in cell 1 (`x = 1`): ValueError: boom")
        for rel, text in self.outputs.get(step, {}).items():
            out = Path(parameters["run_dir"]) / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text)
        final.write_text(Path(source).read_text())
        return final

    @property
    def steps(self):
        return [s for s, _ in self.calls]


@pytest.fixture
def nbdir(tmp_path):
    folder = tmp_path / "notebooks"
    write_notebooks(folder)
    return folder


# ----------------------------------------------------------------------------------------------- registry
def test_step_registry_order_and_figures_match_the_figure_registry():
    assert list_steps()[:5] == CORE
    from wiseft.figures import get_figure, list_figures

    figure_steps = [n for n in list_steps() if get_step(n).is_figure]
    assert sorted(figure_steps) == sorted(list_figures())
    for name in figure_steps:
        assert get_step(name).scope == get_figure(name).scope
        assert get_step(name).notebook == f"figures/{name}.ipynb"
    with pytest.raises(PipelineError, match="known steps: data"):
        get_step("train")


def test_select_steps_filters_by_profile_figures_and_only():
    names = lambda steps: [s.name for s in steps]  # noqa: E731
    assert names(select_steps("run", profile_steps=["data", "fig1", "table1"], figures=["table1"])) == ["data", "table1"]
    assert names(select_steps("run", only=["fig6", "data"])) == ["data", "fig6"]
    assert names(select_steps("suite")) == ["table2", "fig16"]
    with pytest.raises(ProfileError, match="'steps'.*'trian'"):
        select_steps("run", profile_steps=["trian"])
    with pytest.raises(PipelineError, match="--only nope"):
        select_steps("run", only=["nope"])


# ------------------------------------------------------------------------------------------------ running
def test_unchanged_steps_are_skipped_and_parameters_injected(tmp_path, nbdir):
    run = tmp_path / "run"
    fake = FakeExecutor()
    out = run_pipeline(make_profile(), profile_ref="tiny", overrides=["seed=1"], out_dir=run, notebooks_dir=nbdir,
                       device="cpu", executor=fake)
    assert [o.status for o in out] == ["ran", "ran", "ran"] and fake.steps == ["data", "zeroshot", "fig1"]
    assert fake.calls[0][1] == {"profile": "tiny", "overrides": ["seed=1"], "run_dir": str(run.resolve()),
                                "device": "cpu"}
    marker = json.loads((run / "steps" / "zeroshot.json").read_text())
    assert marker["notebook"] == "notebooks/02_zeroshot.ipynb" and len(marker["fingerprint"]) == 64
    assert (run / "profile.yaml").is_file() and (run / "notebooks" / "figures" / "fig1.ipynb").is_file()
    fake2 = FakeExecutor()
    out = run_pipeline(make_profile(), out_dir=run, notebooks_dir=nbdir, executor=fake2)
    assert [o.status for o in out] == ["skipped"] * 3 and fake2.steps == []
    assert "| zeroshot | skipped (unchanged) |" in (run / "report.md").read_text()


def test_changes_rerun_the_step_and_everything_downstream(tmp_path, nbdir):
    run = tmp_path / "run"
    run_pipeline(make_profile(), out_dir=run, notebooks_dir=nbdir, executor=FakeExecutor())
    write_notebooks(nbdir, ["zeroshot"], body="x = 2")  # the notebook changed
    fake = FakeExecutor()
    run_pipeline(make_profile(), out_dir=run, notebooks_dir=nbdir, executor=fake)
    assert fake.steps == ["zeroshot", "fig1"]
    fake = FakeExecutor()
    run_pipeline(make_profile(seed=3), out_dir=run, notebooks_dir=nbdir, executor=fake)  # the profile changed
    assert fake.steps == ["data", "zeroshot", "fig1"]
    (run / "notebooks" / "01_data.ipynb").unlink()  # a recorded output went missing
    fake = FakeExecutor()
    run_pipeline(make_profile(seed=3), out_dir=run, notebooks_dir=nbdir, executor=fake)
    assert fake.steps == ["data", "zeroshot", "fig1"]


def test_force_and_only(tmp_path, nbdir):
    run = tmp_path / "run"
    run_pipeline(make_profile(), out_dir=run, notebooks_dir=nbdir, executor=FakeExecutor())
    fake = FakeExecutor()
    run_pipeline(make_profile(), out_dir=run, notebooks_dir=nbdir, force=True, executor=fake)
    assert fake.steps == ["data", "zeroshot", "fig1"]
    fake = FakeExecutor()
    run_pipeline(make_profile(), out_dir=run, notebooks_dir=nbdir, only=["fig1"], force=True, executor=fake)
    assert fake.steps == ["fig1"]


def test_produced_files_are_recorded_and_missing_ones_rerun_the_step(tmp_path, nbdir):
    run = tmp_path / "run"
    fake = FakeExecutor(outputs={"fig1": {"figures/fig1.png": "png", "figures/fig1.pdf": "pdf"}})
    run_pipeline(make_profile(), out_dir=run, notebooks_dir=nbdir, executor=fake)
    marker = json.loads((run / "steps" / "fig1.json").read_text())
    assert marker["outputs"] == ["figures/fig1.pdf", "figures/fig1.png"]
    (run / "figures" / "fig1.pdf").unlink()
    fake = FakeExecutor(outputs=fake.outputs)
    run_pipeline(make_profile(), out_dir=run, notebooks_dir=nbdir, executor=fake)
    assert fake.steps == ["fig1"]


def test_a_failing_step_stops_the_run_and_keeps_earlier_outputs(tmp_path, nbdir):
    run = tmp_path / "run"
    with pytest.raises(PipelineError, match="step 'zeroshot'.*cell 1.*ValueError: boom") as info:
        run_pipeline(make_profile(), out_dir=run, notebooks_dir=nbdir, executor=FakeExecutor(fail="zeroshot"))
    assert [(o.step, o.status) for o in info.value.outcomes] == [("data", "ran"), ("zeroshot", "failed")]
    assert (run / "steps" / "data.json").is_file() and not (run / "steps" / "zeroshot.json").exists()
    assert not (run / "notebooks" / "02_zeroshot.ipynb").exists()
    report = (run / "report.md").read_text()
    assert "The run stopped with an error" in report and "| zeroshot | **failed** |" in report
    assert "[failed run](notebooks/02_zeroshot.failed.ipynb)" in report
    fake = FakeExecutor()
    out = run_pipeline(make_profile(), out_dir=run, notebooks_dir=nbdir, executor=fake)
    assert fake.steps == ["zeroshot", "fig1"] and out[0].status == "skipped"


def test_missing_notebook_and_busy_run_folder_are_named(tmp_path, nbdir):
    (nbdir / "01_data.ipynb").unlink()
    with pytest.raises(PipelineError, match="01_data.ipynb does not exist"):
        run_pipeline(make_profile(), out_dir=tmp_path / "run", notebooks_dir=nbdir, executor=FakeExecutor())
    import fcntl

    write_notebooks(nbdir, ["data"])
    (tmp_path / "run").mkdir(exist_ok=True)
    with open(tmp_path / "run" / ".wiseft-run.lock", "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(PipelineError, match="another `wiseft run` is using"):
            run_pipeline(make_profile(), out_dir=tmp_path / "run", notebooks_dir=nbdir, executor=FakeExecutor())


def test_suite_runs_members_then_suite_steps(tmp_path, nbdir):
    suite = make_profile(name="tsuite", suite=["a", "b"], steps=["data", "interpolate", "table2"])
    run = tmp_path / "run"
    fake = FakeExecutor(outputs={"table2": {"figures/table2.md": "| x |\n|---|\n| 1 |\n", "figures/table2.csv": "x\n1\n"}})
    run_pipeline(suite, profile_ref="tsuite", out_dir=run, notebooks_dir=nbdir, executor=fake)
    assert fake.steps == ["data", "interpolate", "data", "interpolate", "table2"]
    member_params = fake.calls[0][1]
    assert member_params["run_dir"] == str((run / "tsuite-a").resolve())
    assert member_params["profile"] == str((run / "tsuite-a" / "profile.yaml").resolve()) and not member_params["overrides"]
    assert fake.calls[-1][1]["profile"] == "tsuite" and fake.calls[-1][1]["run_dir"] == str(run.resolve())
    assert "reference: a" in (run / "tsuite-a" / "profile.yaml").read_text()
    report = (run / "report.md").read_text()
    assert "[tsuite-a](tsuite-a/report.md)" in report and "| 1 |" in report and "[CSV](figures/table2.csv)" in report
    # A member's rerun invalidates the suite-level step.
    fake = FakeExecutor()
    run_pipeline(suite, out_dir=run, notebooks_dir=nbdir, only=["interpolate"], force=True, executor=fake)
    assert fake.steps == ["interpolate", "interpolate"]
    fake = FakeExecutor()
    run_pipeline(suite, out_dir=run, notebooks_dir=nbdir, executor=fake)
    assert fake.steps == ["table2"]


def test_report_links_figures_and_tables(tmp_path, nbdir):
    run = tmp_path / "run"
    outputs = {"fig1": {"figures/fig1.png": "png", "figures/fig1.pdf": "pdf"},
               "zeroshot": {"figures/sweep_table_e2e.md": "| α | IN |\n|---|---:|\n| 0 | 68.3 |\n"}}
    run_pipeline(make_profile(), out_dir=run, notebooks_dir=nbdir, executor=FakeExecutor(outputs=outputs))
    report = (run / "report.md").read_text()
    assert "### fig1 — Fig. 1:" in report and "![fig1](figures/fig1.png)" in report and "[PDF](figures/fig1.pdf)" in report
    assert "### sweep_table_e2e — Tables 4, 5:" in report and "| 0 | 68.3 |" in report
    assert "[executed](notebooks/figures/fig1.ipynb)" in report


def test_recorded_outputs_and_markdown_do_not_change_the_fingerprint(tmp_path, nbdir):
    run = tmp_path / "run"
    run_pipeline(make_profile(), out_dir=run, notebooks_dir=nbdir, executor=FakeExecutor())
    path = nbdir / "02_zeroshot.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text="68.3\n")]
    nb.cells[0].execution_count = 7
    nb.cells.insert(0, nbformat.v4.new_markdown_cell("# Zero-shot, explained better"))
    nbformat.write(nb, path)
    fake = FakeExecutor()
    run_pipeline(make_profile(), out_dir=run, notebooks_dir=nbdir, executor=fake)
    assert fake.steps == []


def test_a_rerun_figure_step_drops_its_stale_files(tmp_path, nbdir):
    run = tmp_path / "run"
    run_pipeline(make_profile(), out_dir=run, notebooks_dir=nbdir,
                 executor=FakeExecutor(outputs={"fig1": {"figures/fig1.png": "old"}}))
    fake = FakeExecutor()  # this time the notebook finds no data and draws nothing
    run_pipeline(make_profile(seed=5), out_dir=run, notebooks_dir=nbdir, executor=fake)
    assert "fig1" in fake.steps and not (run / "figures" / "fig1.png").exists()
    assert json.loads((run / "steps" / "fig1.json").read_text())["outputs"] == []
