"""Rehearsals: any profile's whole pipeline on the CPU in minutes, on fixture data with a reduced model.

See :mod:`wiseft.rehearsal.transform` (the profile transform and the run-folder guard),
:mod:`wiseft.twins` (reduced open_clip twins), :mod:`wiseft.rehearsal.data` (fixture datasets) and
:func:`wiseft.pipeline.rehearse.rehearse` (running one).
"""

from .transform import (BANNER, REHEARSAL_SUFFIX, WORLD_TWIN, check_run_kind, describe_rehearsal,
                        rehearsal_profile, rehearsal_run_dir)
from ..twins import TWIN_PREFIX, describe_twin, is_twin, register_twin, twin_config, twin_name

__all__ = ["BANNER", "REHEARSAL_SUFFIX", "WORLD_TWIN", "TWIN_PREFIX", "check_run_kind", "describe_rehearsal",
           "rehearsal_profile", "rehearsal_run_dir", "describe_twin", "is_twin", "register_twin", "twin_config",
           "twin_name"]
