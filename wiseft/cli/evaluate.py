"""``wiseft evaluate``: score any wiseft checkpoint on a profile's evaluation sets."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_profile_args, context_from_args, print_table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="score a checkpoint on the profile's reference set and shifts",
                       description="Load a wiseft checkpoint (safetensors + JSON sidecar; a pickle is refused) "
                                   "and score it on the profile's evaluation sets; rows go to the run's "
                                   "results.jsonl with the method you name.")
    add_profile_args(p)
    p.add_argument("checkpoint", help="checkpoint path (with or without .safetensors) or a stem in the run's "
                                      "checkpoints/ folder (zeroshot, finetuned_e2e, wiseft_e2e_alpha0.50 …)")
    p.add_argument("--method", default="finetuned", help="results-row method (default: finetuned)")
    p.add_argument("--mode", choices=("e2e", "lc"), default=None, help="results-row mode")
    p.add_argument("--no-record", dest="record", action="store_false", help="print only; write no rows")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..checkpoint import checkpoint_paths
    from ..errors import WiseftError
    from ..results import METHODS
    from ..steps.common import (append_rows, classifier_transform, eval_sets, evaluate, fixed_setting,
                                load_for_scoring, summary_table)

    if args.method not in METHODS:  # before any work: a bad argument must not cost an evaluation
        raise WiseftError(f"--method {args.method!r} is not a results method; use one of {', '.join(METHODS)}")
    ctx = context_from_args(args)
    path = Path(args.checkpoint)
    if not checkpoint_paths(path)[0].is_file():
        path = ctx.checkpoint_path(args.checkpoint)
    model, meta = load_for_scoring(ctx, path)
    sets = eval_sets(ctx.profile, classifier_transform(model), heldout=True)
    alpha = meta.get("alpha")
    result = evaluate(ctx, model, [fixed_setting(args.method, mode=args.mode, alpha=alpha,
                                                 extra={"checkpoint": str(path)}, label=path.name)], sets)
    if args.record:
        frame = append_rows(ctx, result, sets, mode=args.mode)
    else:
        frame = result.to_frame().assign(extra=[{"setting": path.name}] * len(result.to_frame()))
    print_table(summary_table(frame))
    return 0
