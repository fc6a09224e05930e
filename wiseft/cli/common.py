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


def context_from_args(args: argparse.Namespace) -> "RunContext":
    """Load the profile named by the arguments and open its run folder."""
    from ..run import RunContext

    return RunContext(profile_from_args(args), out_dir=getattr(args, "out", None), device=args.device)


def print_table(table) -> None:
    """Print a results table (a DataFrame) to stdout, or a note when it is empty."""
    if table is None or getattr(table, "empty", True):
        print("(no results)")
        return
    print(table.to_string())
