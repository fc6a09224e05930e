"""The run folder of a profile and the provenance stamped on everything written into it.

``RunContext`` is the one object a notebook or CLI command creates after loading a profile: it knows where
checkpoints, figures and results go, which device to use, and how to fill the bookkeeping columns of a
results row, so that steps never build paths or provenance by hand.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import weakref
from pathlib import Path
from typing import Any

import torch

from . import locks
from .device import resolve_device
from .errors import WiseftError
from .io import atomic_write_text, git_commit, stable_hash
from .paths import default_run_dir
from .profile import Profile, dump_profile, profile_to_dict
from .rehearsal.transform import check_run_kind
from .results import ResultRow, ResultsStore

log = logging.getLogger(__name__)

__all__ = ["RunContext"]

_STEM_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


class RunContext:
    """Paths, device and provenance of one profile's run.

    Args:
        profile: the validated profile.
        out_dir: the run folder; defaults to ``runs/<profile name>``.
        device: overrides the profile's device (``"cpu"``, ``"cuda"``, ``"auto"`` …).
        lock: take the run folder's lock (:mod:`wiseft.locks`) for the life of the object (or until
            :meth:`close`), so that two writers never work on one folder. Processes of rank > 0 under torchrun
            never lock: rank 0 writes for them.

    Raises:
        RunFolderBusy: another process writes into the run folder.
        WiseftError: the run folder cannot be created or written, or ``results.jsonl`` is not a file.
    """

    def __init__(self, profile: Profile, out_dir: str | os.PathLike | None = None, device: str | None = None,
                 lock: bool = True):
        self.profile = profile
        self.dir = Path(out_dir) if out_dir is not None else default_run_dir(profile.name)
        self._device_name = device or profile.device
        self.run_id = f"{profile.name}-{stable_hash(profile_to_dict(profile), 10)}"
        check_run_kind(self.dir, profile.rehearsal)  # rehearsal rows never land in a real run's folder, nor the reverse
        self._release = None
        if lock and os.environ.get("RANK", "0") in ("", "0"):
            self._open_folder()

    def _open_folder(self) -> None:
        """Lock the run folder and check, before any work, that its results can be written."""
        from .oserrors import writable_folder_error

        try:
            folder = locks.acquire(self.dir)
        except OSError as e:
            raise writable_folder_error(e, self.dir) from e
        if self.results_path.exists() and not self.results_path.is_file():
            locks.release(folder)
            raise WiseftError(f"{self.results_path} is not a file (results are appended to it); move it away or "
                              "choose another --out")
        self._release = weakref.finalize(self, locks.release, folder)

    def close(self) -> None:
        """Give back the run folder's lock (also done when the object is garbage-collected)."""
        if self._release is not None:
            self._release()

    # ---------------------------------------------------------------------------------------- layout
    @property
    def checkpoints_dir(self) -> Path:
        return self.dir / "checkpoints"

    @property
    def figures_dir(self) -> Path:
        return self.dir / "figures"

    @property
    def notebooks_dir(self) -> Path:
        return self.dir / "notebooks"

    @property
    def steps_dir(self) -> Path:
        return self.dir / "steps"

    @property
    def results_path(self) -> Path:
        return self.dir / "results.jsonl"

    @property
    def results(self) -> ResultsStore:
        return ResultsStore(self.results_path)

    def checkpoint_path(self, stem: str) -> Path:
        """``checkpoints/<stem>`` (without suffix; the checkpoint module adds ``.safetensors``/``.json``).

        ``stem`` may name a sub-folder (``baselines/l2sp_lambda0.1``); every part must be a plain name.

        Raises:
            WiseftError: for a stem with an empty, hidden or ``..`` part (it could leave the checkpoints folder).
        """
        parts = stem.split("/")
        if not all(_STEM_RE.match(part) and ".." not in part for part in parts):
            raise WiseftError(f"checkpoint name {stem!r} is not allowed: use letters, digits and '._+-' (and '/' "
                              f"between sub-folders), without '..'")
        return self.checkpoints_dir.joinpath(*parts)

    @functools.cached_property
    def device(self) -> torch.device:
        return resolve_device(self._device_name)

    def write_profile(self) -> Path:
        """Write the resolved profile to ``profile.yaml`` in the run folder."""
        return atomic_write_text(self.dir / "profile.yaml", dump_profile(self.profile))

    # ------------------------------------------------------------------------------------ provenance
    def row(self, **fields: Any) -> ResultRow:
        """A :class:`ResultRow` with the run's bookkeeping columns filled in."""
        base = dict(run_id=self.run_id, profile=self.profile.name, model=self.profile.model.name,
                    pretrained=self.profile.model.pretrained, git_commit=git_commit())
        base.update(fields)
        if self.profile.rehearsal:  # a rehearsal's numbers say so in every row
            base["extra"] = {**(base.get("extra") or {}), "rehearsal": True}
        return ResultRow(**base)

    def provenance(self, parents: list[str] | None = None) -> dict[str, Any]:
        """The provenance block of a checkpoint sidecar."""
        import datetime as _dt

        return {"git_commit": git_commit(), "run_id": self.run_id, "profile": self.profile.name,
                "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "parents": list(parents or [])}
