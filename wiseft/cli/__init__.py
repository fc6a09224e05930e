"""The ``wiseft`` command line.

Each subcommand lives in its own module of this package and exposes ``register(subparsers)``, which adds its
parser and sets ``func`` (a callable taking the parsed arguments and returning an exit code). The handlers only
translate arguments into calls of the same library functions the notebooks use.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from .._version import __version__
from ..errors import WiseftError

log = logging.getLogger("wiseft")

#: Subcommand modules, in the order ``wiseft --help`` lists them.
COMMAND_MODULES = ("profiles", "plan", "run", "data", "models", "zeroshot", "finetune", "interpolate", "baselines",
                   "evaluate")


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="wiseft",
        description="WiSE-FT reproducibility kit: zero-shot heads, fine-tuning, weight-space ensembles, "
                    "robustness evaluation and the paper's figures, driven by profiles.",
    )
    parser.add_argument("--version", action="version", version=f"wiseft {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def _configure_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else logging.DEBUG if verbose > 1 else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    if verbose < 2:  # third-party chatter stays out of the way unless debugging
        for noisy in ("PIL", "matplotlib", "urllib3", "h5py", "papermill", "traitlets"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit status (0 success, 1 a failed step, 2 bad input or a file-system error).

    A :class:`~wiseft.errors.WiseftError` or an ``OSError`` becomes one line on stderr naming the file and the fix.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    _configure_logging(args.verbose, args.quiet)
    try:
        return int(args.func(args) or 0)
    except WiseftError as e:
        from ..errors import PipelineError

        print(f"wiseft {args.command}: error: {e}", file=sys.stderr)
        return 1 if isinstance(e, PipelineError) else 2
    except OSError as e:  # a folder not writable, a full disk, a file where a folder belongs …
        from ..oserrors import describe_os_error

        where = getattr(args, "out", None) or getattr(args, "root", None)  # when the error names no file
        print(f"wiseft {args.command}: error: {describe_os_error(e, where)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"wiseft {args.command}: interrupted", file=sys.stderr)
        return 130


__all__ = ["main", "build_parser", "COMMAND_MODULES"]
