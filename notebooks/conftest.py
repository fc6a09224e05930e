"""nbval runs these notebooks (`pytest --nbval-lax notebooks`, see scripts/run_tests.sh) in pipeline order.

Each notebook reads what the steps before it wrote to `runs/mini`, so the order matters. pytest collects files
alphabetically (files and folders together), which already puts 01–05 first, but `course/` would come before
`figures/` and the figures would run as fig1, fig10, fig11, …; the hook below sorts the notebooks into the order
of `wiseft/pipeline/steps.yaml`, then the course.
"""

import os
from pathlib import Path

import nbval.kernel

from wiseft.pipeline.kernels import EncryptedKernelManager
from wiseft.pipeline.notebooks import COURSES, pipeline_rank

HERE = Path(__file__).resolve().parent

# nbval's kernels get per-kernel CurveZMQ keys like the pipeline's (wiseft.pipeline.kernels): no plain-text
# sockets, and no "running over TCP without encryption" warning at every kernel start.
nbval.kernel.KernelManager = EncryptedKernelManager

# A batch execution: the α explorer of fig1 prints one line instead of a widget, so outputs stay deterministic.
os.environ["WISEFT_BATCH"] = "1"

# The students' copies of the assignments raise NotImplementedError where they write code: not run by nbval.
collect_ignore = list(COURSES.values())


def pytest_collection_modifyitems(session, config, items):
    """Sort the notebooks' cells by the notebook's pipeline position (stable: cells keep their order)."""
    slots = [i for i, item in enumerate(items) if HERE in Path(str(item.path)).resolve().parents]
    ordered = sorted((items[i] for i in slots), key=lambda item: pipeline_rank(item.path, HERE))
    for slot, item in zip(slots, ordered):
        items[slot] = item
