"""``wiseft interpolate``: the WiSE-FT α sweeps of a profile, in one pass over each evaluation set."""

from __future__ import annotations

import argparse

from .common import add_profile_args, context_from_args, print_table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("interpolate", help="sweep α between the zero-shot and fine-tuned weights",
                       description="Evaluate θ_α = (1−α)·θ_zero-shot + α·θ_fine-tuned for every α of the profile "
                                   "(interpolation.alphas, default 0…1 in steps of 0.05) on every evaluation set, "
                                   "reading each image once; add output-space and Fisher ensembles when the profile "
                                   "asks, and write checkpoints only for interpolation.keep.")
    add_profile_args(p)
    p.add_argument("--what", choices=("main", "variants", "kshot", "all"), default="main",
                   help="main: the WiSE-FT sweeps of every enabled mode; variants: Fig. 3's fine-tuning variants; "
                        "kshot: Fig. 17's k-shot linear classifiers; all: everything")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..steps import run_interpolation, run_kshot_sweeps, run_variant_sweeps, summary_table

    ctx = context_from_args(args)
    if args.what in ("main", "all"):
        frame = run_interpolation(ctx)
        for mode in sorted(set(frame["mode"])) if not frame.empty else []:
            sweep = frame[(frame["method"] == "wiseft") & (frame["mode"] == mode)]
            print(f"\nWiSE-FT ({mode}), accuracy in %")
            print_table(summary_table(sweep.assign(setting=sweep["alpha"])))
    if args.what in ("variants", "all"):
        run_variant_sweeps(ctx)
    if args.what in ("kshot", "all"):
        run_kshot_sweeps(ctx)
    return 0
