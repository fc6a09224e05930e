"""wiseft: a notebook-driven reproducibility kit for WiSE-FT (Wortsman et al., CVPR 2022).

WiSE-FT fine-tunes a zero-shot model and then ensembles weights, θ_α = (1−α)·θ_zero-shot + α·θ_fine-tuned,
keeping the fine-tuned accuracy on the reference distribution and the zero-shot robustness under shift.

The front doors, importable from ``wiseft`` itself:

- profiles: :func:`load_profile`, :func:`list_profiles`, :class:`Profile`;
- runs: :func:`run_pipeline` (the whole pipeline, what ``wiseft run`` calls), :func:`open_run` (what every
  notebook starts with: a :class:`RunContext` for a profile's run folder), :class:`RunContext`;
- models: :func:`create_clip`, :func:`build_zeroshot_classifier`, :func:`load_classifier`,
  :func:`save_classifier`;
- WiSE-FT itself: :func:`interpolate_state_dicts`; results: :func:`load_results`;
- the errors (:class:`WiseftError` and its subclasses).

Only the errors are imported with the package; the other names load their module on first use, so that
``import wiseft`` (and the CLI's ``--help``) stays fast. The CLI is ``wiseft`` (``python -m wiseft``).
"""

from __future__ import annotations

import logging

from ._lazy import lazy_exports
from ._version import __version__
from .errors import (
    CheckpointError,
    DatasetError,
    IncompatibleStateError,
    NumericsError,
    PipelineError,
    ProfileError,
    WiseftError,
)

logging.getLogger(__name__).addHandler(logging.NullHandler())

#: front door -> the module that defines it (imported on first use)
_FRONT_DOORS = {
    "Profile": "profile", "load_profile": "profile", "list_profiles": "profile",
    "run_pipeline": "pipeline", "open_run": "notebook", "RunContext": "run",
    "create_clip": "models", "build_zeroshot_classifier": "zeroshot",
    "load_classifier": "checkpoint", "save_classifier": "checkpoint",
    "interpolate_state_dicts": "interpolation", "load_results": "results",
}

__all__ = [
    "__version__",
    "WiseftError",
    "ProfileError",
    "DatasetError",
    "CheckpointError",
    "IncompatibleStateError",
    "NumericsError",
    "PipelineError",
    *_FRONT_DOORS,
]


__getattr__, __dir__ = lazy_exports(__name__, _FRONT_DOORS, globals())
