"""``wiseft zeroshot``: build the zero-shot classifier of a profile, save it, and score it."""

from __future__ import annotations

import argparse

from .common import add_profile_args, context_from_args, print_table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("zeroshot", help="build and evaluate the zero-shot classifier (θ_0)",
                       description="Build the zero-shot head from the reference dataset's class names and "
                                   "templates (paper App. D.1), write checkpoints/zeroshot.safetensors and score it "
                                   "on the reference set, its held-out split and every shift.")
    add_profile_args(p)
    p.add_argument("--force", action="store_true", help="rebuild the head even if the checkpoint exists")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    ctx = context_from_args(args, preflight=True)  # data, then weights, before the heavy imports below
    from ..steps import run_zeroshot, summary_table

    print_table(summary_table(run_zeroshot(ctx, force=args.force)))
    return 0
