"""``wiseft finetune``: end-to-end or linear-classifier fine-tuning of a profile's zero-shot model.

Works the same under torchrun (``torchrun --nproc_per_node=8 -m wiseft finetune -p imagenet-vitb16``): every
process runs this command, rank 0 writes.
"""

from __future__ import annotations

import argparse
import json
import logging

from .common import add_profile_args, context_from_args

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("finetune", help="fine-tune the zero-shot model (end to end, or a linear classifier)",
                       description="Fine-tune the profile's zero-shot classifier on its reference training set "
                                   "and write checkpoints/finetuned_<mode>.safetensors. End-to-end runs are "
                                   "checkpointed every epoch and resume where a killed run stopped.")
    add_profile_args(p)
    p.add_argument("--mode", choices=("e2e", "lc", "kshot"), default="e2e",
                   help="e2e: every weight (paper App. D.2); lc: linear classifier on frozen features with the "
                        "random search (D.3); kshot: linear classifiers on k images per class (Fig. 17)")
    p.add_argument("--variant", default=None,
                   help="name of a finetune.variants entry of the profile (e2e only; Fig. 3 runs)")
    p.add_argument("--no-resume", dest="resume", action="store_false",
                   help="start over instead of continuing from the last checkpoint of an earlier run")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..steps.train import run_step  # imported here so that `wiseft --help` stays fast

    ctx = context_from_args(args)
    summary = run_step(ctx, args.mode, resume=args.resume, variant=args.variant)
    log.info("finetune %s finished: %s", args.mode, json.dumps(summary, default=str)[:2000])
    return 0
