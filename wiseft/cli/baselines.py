"""``wiseft baselines``: the paper's alternatives to WiSE-FT, the diversity analyses and α on the held-out split."""

from __future__ import annotations

import argparse

from .common import add_profile_args, context_from_args, print_table

#: the methods of ``baselines.methods`` (``wiseft.steps.baselines.METHODS``, spelled out so that ``wiseft --help``
#: does not import torch) and what ``--only`` accepts besides them
METHODS = ("l2sp", "ema", "ema_biased", "lpft", "lc_l2sp", "distill", "ose_prob", "random_interp")
EXTRA_CHOICES = ("analyses",)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("baselines", help="train and score the baselines (L2-SP, EMA, LP-FT, distillation …)",
                       description="Train every baseline of the profile's baselines.methods with the fine-tuning "
                                   "engines (checkpoints/baselines/), score each family in one evaluation pass, "
                                   "write the diversity analyses (analyses.csv) when baselines.analyses is set, "
                                   "and print the α chosen on the held-out split beside α = 0.5. Baselines whose "
                                   "checkpoint and rows are up to date are skipped.")
    add_profile_args(p)
    p.add_argument("--only", nargs="+", metavar="METHOD", choices=(*METHODS, *EXTRA_CHOICES),
                   help=f"run only these ({', '.join((*METHODS, *EXTRA_CHOICES))}); 'analyses' runs the "
                        "diversity analyses even when baselines.analyses is off")
    p.add_argument("--force", action="store_true", help="retrain and re-evaluate even what is up to date")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..steps import choose_alpha, run_analyses, run_baselines, summary_table

    ctx = context_from_args(args)
    only = args.only
    methods = [m for m in only if m not in EXTRA_CHOICES] if only is not None else None
    if methods is None or methods:
        frame = run_baselines(ctx, only=methods, force=args.force)
        if not frame.empty:
            setting = frame["extra"].map(lambda e: e.get("setting"))
            frame = frame.assign(setting=frame["mode"].fillna("").str.upper() + " " + setting)
            print("\nBaselines, accuracy in %")
            print_table(summary_table(frame))
    if (only is None and ctx.profile.baselines.analyses) or (only is not None and "analyses" in only):
        analyses = run_analyses(ctx, force=args.force)
        print(f"\nDiversity analyses ({ctx.dir / 'analyses.csv'})")
        print_table(analyses.pivot_table(index=["comparison", "measure"], columns="dataset", values="value",
                                         sort=False).round(4))
    choice = choose_alpha(ctx)
    if not choice.empty:
        print("\nα chosen on the held-out split vs. the default 0.5")
        print_table(choice)
    return 0
