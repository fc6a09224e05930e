"""wiseft: a notebook-driven reproducibility kit for WiSE-FT (Wortsman et al., CVPR 2022).

WiSE-FT fine-tunes a zero-shot model and then ensembles weights, θ_α = (1−α)·θ_zero-shot + α·θ_fine-tuned,
keeping the fine-tuned accuracy on the reference distribution and the zero-shot robustness under shift.

The front doors are :func:`wiseft.profile.load_profile` and :class:`wiseft.run.RunContext`; the CLI is
``wiseft`` (``python -m wiseft``).
"""

from __future__ import annotations

import logging

from ._version import __version__

logging.getLogger(__name__).addHandler(logging.NullHandler())

from .errors import (  # noqa: E402
    CheckpointError,
    DatasetError,
    IncompatibleStateError,
    NumericsError,
    PipelineError,
    ProfileError,
    WiseftError,
)
from .profile import Profile, list_profiles, load_profile  # noqa: E402

__all__ = [
    "__version__",
    "WiseftError",
    "ProfileError",
    "DatasetError",
    "CheckpointError",
    "IncompatibleStateError",
    "NumericsError",
    "PipelineError",
    "Profile",
    "load_profile",
    "list_profiles",
]
