"""The fine-tuning step: E2E and LC fine-tuning of a profile, its variants and k-shot runs, and the
evaluation of the fine-tuned classifiers (``method=finetuned``).

Training itself lives in :mod:`wiseft.finetune` (resumable, distributed); this module sequences it for a
profile and scores the results with the same evaluation sets as every other step.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from ..run import RunContext
from .common import append_rows, classifier_transform, eval_sets, evaluate, fixed_setting, load_endpoint
from .interpolate import enabled_modes
from .train import run_step

log = logging.getLogger(__name__)

__all__ = ["run_finetune", "evaluate_finetuned", "evaluate_all_finetuned"]


def run_finetune(ctx: RunContext, *, variants: bool = True, kshot: bool = True, resume: bool = True
                 ) -> dict[str, Any]:
    """Fine-tune every enabled mode (E2E, LC), then the profile's variants and k-shot runs.

    Returns:
        ``{run name: summary}`` from :func:`wiseft.steps.train.run_step` (steps, chosen hyperparameters …).
    """
    summary: dict[str, Any] = {}
    for mode in enabled_modes(ctx):
        summary[mode] = run_step(ctx, mode, resume=resume)
    if variants and ctx.profile.finetune.e2e.enabled:
        for item in ctx.profile.finetune.variants:
            summary[f"e2e_{item['name']}"] = run_step(ctx, "e2e", resume=resume, variant=item["name"])
    if kshot and ctx.profile.finetune.lc.enabled and ctx.profile.finetune.lc.shots:
        summary["kshot"] = run_step(ctx, "kshot", resume=resume)
    return summary


def evaluate_finetuned(ctx: RunContext, mode: str) -> pd.DataFrame:
    """Score ``checkpoints/finetuned_<mode>`` on every evaluation set; rows ``method=finetuned``."""
    model, _ = load_endpoint(ctx, f"finetuned_{mode}")
    sets = eval_sets(ctx.profile, classifier_transform(model), heldout=True)
    result = evaluate(ctx, model, [fixed_setting("finetuned", mode=mode, label=f"finetuned {mode}")], sets)
    return append_rows(ctx, result, sets, mode=mode)


def evaluate_all_finetuned(ctx: RunContext) -> pd.DataFrame:
    """:func:`evaluate_finetuned` for every fine-tuning mode the profile enables (E2E, then LC)."""
    frames = [evaluate_finetuned(ctx, mode) for mode in enabled_modes(ctx)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
