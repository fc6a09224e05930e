"""``wiseft run``: execute a profile's notebooks in order, skip what is unchanged, stop at the first failure.

Every step is a notebook run by papermill with four parameters injected: ``profile`` (a packaged name or a
YAML path), ``overrides`` (``key=value`` strings), ``run_dir`` and ``device``. A suite profile runs each
member into ``<out>/<member>/`` and then its suite-level steps over all members' results.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import PipelineError
from ..io import atomic_write_text, safe_name
from ..locks import run_folder_lock
from ..paths import default_run_dir
from ..profile import Profile, dump_profile, profile_to_dict
from ..rehearsal import check_run_kind
from .execute import execute_notebook, executed_paths, resolve_kernel
from .markers import fingerprint, is_up_to_date, read_marker, remove_marker, write_marker
from .report import StepOutcome, write_report
from .steps import Step, select_steps, upstream

log = logging.getLogger(__name__)

__all__ = ["run_pipeline", "default_notebooks_dir", "StepOutcome"]

Executor = Callable[..., Path]

def default_notebooks_dir() -> Path:
    """``$WISEFT_NOTEBOOKS``, else ``notebooks/`` of the source tree wiseft is imported from, else ``./notebooks``."""
    env = os.environ.get("WISEFT_NOTEBOOKS")
    if env:
        return Path(env).expanduser()
    beside = Path(__file__).resolve().parents[2] / "notebooks"
    return beside if beside.is_dir() else Path("notebooks")


class _Scope:
    """The steps of one run folder (a profile, a suite member, or a suite's own level)."""

    def __init__(self, profile: Profile, run_dir: Path, scope: str, parameters: dict[str, Any],
                 notebooks_dir: Path, dependency_dirs: dict[str, Path], only: Sequence[str] | None, force: bool,
                 kernel_name: str, executor: Executor):
        self.profile, self.run_dir, self.scope = profile, run_dir, scope
        self.parameters, self.notebooks_dir = parameters, notebooks_dir
        self.dependency_dirs = dependency_dirs   # prefix -> run folder whose markers the steps depend on
        self.force, self.kernel_name, self.executor = force, kernel_name, executor
        self.all_steps = select_steps(scope, profile_steps=profile.steps, figures=profile.figures.include)
        self.steps = select_steps(scope, profile_steps=profile.steps, figures=profile.figures.include, only=only)
        self.outcomes: list[StepOutcome] = []

    def _dependencies(self, step: Step) -> dict[str, dict | None]:
        deps = {}
        # All upstream steps, not only the direct ones: with some steps left out of a profile, a change
        # upstream still reaches the steps that run.
        for prefix, folder in self.dependency_dirs.items():
            for name in upstream(step.name):
                deps[f"{prefix}{name}"] = read_marker(folder / "steps", name)
        return deps

    def run(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.run_dir / "profile.yaml", dump_profile(self.profile))
        self.report(self.profile.name, in_progress=True)  # never a previous run's report if this one is killed
        for stale in (self.run_dir / "notebooks").glob("**/.*.running.ipynb"):
            log.info("removing %s, left by an interrupted run", stale)
            stale.unlink(missing_ok=True)
        profile_dict = profile_to_dict(self.profile)
        for step in self.steps:
            self._run_step(step, profile_dict)

    def _run_step(self, step: Step, profile_dict: dict) -> None:
        source = self.notebooks_dir / step.notebook
        if not source.is_file():
            raise PipelineError(f"step '{step.name}': notebook {source} does not exist (notebooks folder: "
                                f"{self.notebooks_dir}; set $WISEFT_NOTEBOOKS or --notebooks to choose another)")
        steps_dir = self.run_dir / "steps"
        deps = self._dependencies(step)
        for name, marker in deps.items():
            if marker is None:
                log.info("step %s: dependency %s has not run; running anyway", step.name, name)
        fp = fingerprint(step.name, profile_dict, source, deps)
        up_to_date, why = is_up_to_date(read_marker(steps_dir, step.name), fp, self.run_dir)
        if up_to_date and not self.force:
            log.info("step %s: skipped (%s)", step.name, why)
            self.outcomes.append(StepOutcome(step.name, "skipped", why, run_dir=self.run_dir))
            return
        log.info("step %s: running %s (%s)", step.name, step.notebook, "--force" if up_to_date else why)
        remove_marker(steps_dir, step.name)
        if step.is_figure:  # a figure the current data can no longer feed must not linger from an older run
            for stale in {p for pattern in step.produces for p in self.run_dir.glob(pattern) if p.is_file()}:
                stale.unlink()
        dest = self.run_dir / "notebooks" / step.notebook
        started = time.time()
        try:
            self.executor(source, dest, self.parameters, kernel_name=self.kernel_name, cwd=Path.cwd(),
                          step=step.name)
        except PipelineError as e:
            self.outcomes.append(StepOutcome(step.name, "failed", str(e), time.time() - started,
                                             executed_paths(dest)[2], self.run_dir))
            raise
        finished = time.time()
        outputs = sorted({p for pattern in step.produces for p in self.run_dir.glob(pattern) if p.is_file()})
        write_marker(steps_dir, step.name, fp, run_dir=self.run_dir, notebook=dest, source=source, outputs=outputs,
                     started=started, finished=finished, parameters=self.parameters)
        self.outcomes.append(StepOutcome(step.name, "ran", why, finished - started, dest, self.run_dir))
        log.info("step %s: done in %.1f s", step.name, finished - started)

    def report(self, title: str, members: Sequence[tuple[str, Path]] = (), error: str | None = None,
               in_progress: bool = False) -> Path:
        banner = None
        if self.profile.rehearsal:
            from ..rehearsal import BANNER, describe_rehearsal

            banner = f"{BANNER}\n>\n> Rehearsal {describe_rehearsal(self.profile)}."
        return write_report(self.run_dir, title=title, description=self.profile.description, steps=self.all_steps,
                            outcomes=self.outcomes, members=members, error=error, in_progress=in_progress,
                            banner=banner)


def run_pipeline(profile: Profile, *, profile_ref: str | None = None, overrides: Sequence[str] = (),
                 out_dir: str | os.PathLike | None = None, only: Sequence[str] | None = None, force: bool = False,
                 device: str | None = None, notebooks_dir: str | os.PathLike | None = None,
                 kernel_name: str | None = None, executor: Executor | None = None) -> list[StepOutcome]:
    """Run the pipeline of ``profile``; return what each step did.

    Args:
        profile: the resolved profile (overrides applied).
        profile_ref: what the notebooks receive as ``profile`` (the name or path the user gave); default: the
            resolved ``profile.yaml`` written into the run folder (then ``overrides`` are not passed again).
        overrides: the ``--set`` strings the notebooks receive with ``profile_ref``.
        out_dir: the run folder (default ``runs/<profile>``).
        only: run only these steps (their dependencies are not run).
        force: run the selected steps even when unchanged.
        device: passed to the notebooks (``None``: the profile's).
        notebooks_dir: where the step notebooks are (default :func:`default_notebooks_dir`).
        kernel_name: the Jupyter kernel (default :func:`~wiseft.pipeline.execute.resolve_kernel`).
        executor: runs one notebook, ``executor(source, dest, parameters, kernel_name=, cwd=, step=)``;
            default papermill (:func:`~wiseft.pipeline.execute.execute_notebook`).

    Raises:
        PipelineError: the first failing step (``.outcomes`` holds the outcomes so far); the report is written
            and the outputs of the steps before it are kept.
        RunFolderBusy: another process writes into the run folder (the message names it).
    """
    run_dir = Path(out_dir) if out_dir is not None else default_run_dir(profile.name)
    run_dir = run_dir.resolve()
    notebooks = Path(notebooks_dir).resolve() if notebooks_dir is not None else default_notebooks_dir().resolve()
    executor = executor or execute_notebook
    kernel = kernel_name if executor is not execute_notebook else resolve_kernel(kernel_name)
    common = dict(notebooks_dir=notebooks, only=only, force=force, kernel_name=kernel or "python3", executor=executor)

    def params(ref: str | None, folder: Path, ovr: Sequence[str]) -> dict[str, Any]:
        return {"profile": ref if ref is not None else str(folder / "profile.yaml"),
                "overrides": list(ovr) if ref is not None else [], "run_dir": str(folder), "device": device}

    outcomes: list[StepOutcome] = []
    check_run_kind(run_dir, profile.rehearsal)
    with run_folder_lock(run_dir):
        members = profile.suite_members()
        member_dirs = [(m.name, run_dir / safe_name(m.name, "suite member")) for m in members]
        if members:
            top = _Scope(profile, run_dir, "suite", params(profile_ref, run_dir, overrides),
                         dependency_dirs={f"{name}/": d for name, d in member_dirs}, **common)
        else:
            top = _Scope(profile, run_dir, "run", params(profile_ref, run_dir, overrides),
                         dependency_dirs={"": run_dir}, **common)
        if members:  # the suite's own report, like each scope's, says a run is under way until it ends
            top.report(profile.name, member_dirs, in_progress=True)
        try:
            for member, (name, mdir) in zip(members, member_dirs):
                scope = _Scope(member, mdir, "run", params(None, mdir, ()), dependency_dirs={"": mdir}, **common)
                try:
                    scope.run()
                except PipelineError as e:
                    outcomes.extend(scope.outcomes)
                    scope.report(name, error=str(e))
                    raise
                outcomes.extend(scope.outcomes)
                scope.report(name)
            top.run()
        except PipelineError as e:
            outcomes.extend(top.outcomes)
            top.report(profile.name, member_dirs, error=str(e))
            e.outcomes = outcomes
            raise
        except KeyboardInterrupt:
            top.report(profile.name, member_dirs, error="interrupted (Ctrl-C) before the run finished; finished steps "
                                                        "are kept, rerun to continue")
            raise
        outcomes.extend(top.outcomes)
        top.report(profile.name, member_dirs)
    return outcomes

