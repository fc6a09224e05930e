"""Run a rehearsal: the profile transform, then the ordinary pipeline in one shared notebook kernel."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Any, Sequence

from ..profile import load_profile
from ..rehearsal import describe_rehearsal, rehearsal_profile, rehearsal_run_dir

log = logging.getLogger(__name__)

__all__ = ["rehearse"]


def rehearse(profile: str | os.PathLike, overrides: Sequence[str] = (), out_dir: str | os.PathLike | None = None, *,
             executor: Any = None, one_kernel: bool = True, kernel_name: str | None = None, **pipeline_kwargs: Any):
    """Rehearse ``profile`` (a packaged name or YAML path, with ``--set`` overrides) into ``out_dir``.

    Args:
        out_dir: the run folder (default ``runs/<profile>-rehearsal``).
        executor: runs the notebooks (several rehearsals can share one :class:`~wiseft.pipeline.warm.WarmKernel`).
        one_kernel: without ``executor``, run the notebooks in a shared kernel of its own (``True``) or each in a
            fresh papermill kernel (``False``, as a real run does by default).
        pipeline_kwargs: passed to :func:`~wiseft.pipeline.run_pipeline` (``only``, ``force``, ``notebooks_dir`` …).

    Returns:
        ``(outcomes, run folder, the rehearsal's profile)``.

    Raises:
        PipelineError: the first failing step, or a run folder that holds a real run.
    """
    from .runner import run_pipeline
    from .warm import WarmKernel

    real = load_profile(profile, overrides=list(overrides))
    folder = Path(out_dir) if out_dir is not None else rehearsal_run_dir(real.name)
    rehearsal = rehearsal_profile(real, data_root=folder / "fixture-data")
    log.info("REHEARSAL of %s in %s (%s)", real.name, folder, describe_rehearsal(rehearsal))
    with contextlib.ExitStack() as stack:
        if executor is None and one_kernel:
            executor = stack.enter_context(WarmKernel(kernel_name, cwd=Path.cwd()))
        # profile_ref=None: the notebooks read the rehearsal's own profile.yaml from the run folder
        outcomes = run_pipeline(rehearsal, profile_ref=None, out_dir=folder, executor=executor,
                                kernel_name=kernel_name, **pipeline_kwargs)
    return outcomes, folder, rehearsal
