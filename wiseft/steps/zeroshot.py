"""The zero-shot step: build the classifier from text prompts, save it, score it on every evaluation set.

The head follows the paper (App. D.1): for each class, encode every template, L2-normalise, average,
re-normalise; stack; multiply by ``logit_scale.exp()``. The text tower is dropped afterwards, and the
classifier is written as ``checkpoints/zeroshot.safetensors`` + ``.json`` — θ_0 of every later sweep.
"""

from __future__ import annotations

import logging

import pandas as pd

from ..checkpoint import save_classifier
from ..datasets.presence import require_data
from ..device import seed_everything
from ..finetune.distributed import barrier, is_main_process
from ..models import ImageClassifier
from ..run import RunContext
from ..zeroshot import build_zeroshot_classifier
from .common import (
    append_rows,
    classifier_transform,
    data_root,
    evaluate,
    eval_sets,
    fixed_setting,
    has_checkpoint,
    load_endpoint,
    reference_classnames,
    template_set,
)

log = logging.getLogger(__name__)

__all__ = ["build_zeroshot", "evaluate_zeroshot", "run_zeroshot"]


def build_zeroshot(ctx: RunContext, force: bool = False) -> ImageClassifier:
    """Build (or load, when already written) the profile's zero-shot classifier.

    Args:
        ctx: the run.
        force: rebuild even if ``checkpoints/zeroshot`` exists.
    """
    if has_checkpoint(ctx, "zeroshot") and not force:
        log.info("loading the existing zero-shot checkpoint %s", ctx.checkpoint_path("zeroshot"))
        return load_endpoint(ctx, "zeroshot")[0]
    profile = ctx.profile
    # the data before the weights: no download when the data is not there anyway
    require_data(profile.data.reference, [*profile.data.shifts, *profile.data.extra], data_root(profile),
                 f"profile {profile.name!r}")
    templates = template_set(profile)
    seed_everything(profile.seed)  # models without pretrained weights (tests, from-scratch runs) start the same
    classifier = build_zeroshot_classifier(profile.model.name, profile.model.pretrained,
                                           reference_classnames(profile), templates, device=ctx.device)
    if is_main_process():  # under torchrun every rank builds the same head; one writes it
        save_classifier(classifier.cpu(), ctx.checkpoint_path("zeroshot"),
                        {"alpha": 0.0, "template_set": templates, "provenance": ctx.provenance()})
    barrier()
    return classifier


def evaluate_zeroshot(ctx: RunContext, classifier: ImageClassifier | None = None) -> pd.DataFrame:
    """Score the zero-shot classifier on the reference set, its held-out split and every shift; append rows
    (``method=zeroshot``) and return them."""
    classifier = classifier if classifier is not None else load_endpoint(ctx, "zeroshot")[0]
    sets = eval_sets(ctx.profile, classifier_transform(classifier), heldout=True)
    result = evaluate(ctx, classifier, [fixed_setting("zeroshot")], sets)
    return append_rows(ctx, result, sets)


def run_zeroshot(ctx: RunContext, force: bool = False) -> pd.DataFrame:
    """Build, save and evaluate the zero-shot classifier (the notebook's and ``wiseft zeroshot``'s work)."""
    ctx.write_profile()
    return evaluate_zeroshot(ctx, build_zeroshot(ctx, force=force))
