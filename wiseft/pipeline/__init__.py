"""The papermill pipeline: the step registry, the runner with skip-on-unchanged, and the run report.

Example:
    >>> from wiseft.pipeline import run_pipeline
    >>> from wiseft.profile import load_profile
    >>> run_pipeline(load_profile("mini"), profile_ref="mini")     # doctest: +SKIP
"""

from __future__ import annotations

from .execute import execute_notebook, resolve_kernel
from .report import StepOutcome, write_report
from .runner import default_notebooks_dir, run_pipeline
from .steps import Step, get_step, list_steps, select_steps

__all__ = ["run_pipeline", "default_notebooks_dir", "execute_notebook", "resolve_kernel", "StepOutcome",
           "write_report", "Step", "get_step", "list_steps", "select_steps"]
