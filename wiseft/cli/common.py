"""Arguments shared by several subcommands, so every command spells them the same way."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ..profile import Profile, load_profile

if TYPE_CHECKING:  # RunContext imports torch; commands that do not need it start faster without
    from ..run import RunContext


def add_profile_args(parser: argparse.ArgumentParser, out: bool = True) -> None:
    """``--profile``, ``--set`` (repeatable), ``--out`` and ``--device``."""
    parser.add_argument("-p", "--profile", default="mini",
                        help="packaged profile name (see `wiseft profiles`) or a path to a YAML file (default: mini)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a profile key, e.g. --set finetune.e2e.lr=1e-5 (repeatable)")
    if out:
        parser.add_argument("--out", default=None, help="run folder (default: runs/<profile>)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:N, mps or auto (default: the profile's)")


def profile_from_args(args: argparse.Namespace) -> Profile:
    return load_profile(args.profile, overrides=args.overrides)


def context_from_args(args: argparse.Namespace, preflight: bool = False) -> "RunContext":
    """Load the profile named by the arguments and open its run folder.

    Args:
        preflight: first check, before the heavy imports, that the profile's data is on disk and then that
            its pretrained weights are cached or can be fetched (:func:`check_data_then_weights`).
    """
    profile = profile_from_args(args)
    if preflight:
        check_data_then_weights(profile)
    from ..run import RunContext

    return RunContext(profile, out_dir=getattr(args, "out", None), device=args.device)


def check_data_then_weights(profile: Profile) -> None:
    """Fail in one line, within seconds, when the data is missing (first) or the weights cannot be had (then).

    Weights are fetched here when they are missing and the source is reachable, so a later step finds them.
    """
    from pathlib import Path

    from ..datasets.presence import require_data
    from ..models import is_open_clip_tag

    root = Path(profile.data.root).expanduser() if profile.data.root else None
    require_data(profile.data.reference, [*profile.data.shifts, *profile.data.extra], root,
                 f"profile {profile.name!r}")
    if is_open_clip_tag(profile.model.pretrained):
        from ..weights_cache import ensure_weights

        ensure_weights(profile.model.name, profile.model.pretrained)


def print_table(table) -> None:
    """Print a results table (a DataFrame) to stdout, or a note when it is empty."""
    if table is None or getattr(table, "empty", True):
        print("(no results)")
        return
    print(table.to_string())
