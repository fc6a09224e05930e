"""The profile-level fine-tuning step: zero-shot classifier in, fine-tuned classifier checkpoint out.

``run_step(ctx, "e2e")`` builds the zero-shot classifier of the profile, fine-tunes it end to end on the
reference training set and writes ``checkpoints/finetuned_e2e.*``; ``"lc"`` fits the linear classifier on cached
features and writes ``checkpoints/finetuned_lc.*``; ``"kshot"`` writes ``finetuned_lc_k<k>.*`` for every k of
``finetune.lc.shots``. Under torchrun every process calls it; E2E trains on all of them, LC runs on rank 0.

Integration: this module calls ``wiseft.zeroshot``, ``wiseft.datasets`` and ``wiseft.checkpoint`` through the
small adapters at the top, so that a change of those interfaces is mended in one place.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import WiseftError
from ..io import atomic_write_json
from ..profile import E2ECfg, Profile
from ..finetune import distributed as D
from ..finetune.augment import preprocess_of, train_transform
from ..finetune.e2e import finetune_e2e
from ..finetune.kshot import kshot_indices
from ..finetune.search import heldout_split, search_linear
from .reference import WithTransform, cached_reference_features, reference_root, reference_set

log = logging.getLogger(__name__)

__all__ = ["run_step", "MODES", "variant_cfg"]

MODES = ("e2e", "lc", "kshot")


# ------------------------------------------------------------------------- adapters to sibling modules
def _zeroshot_classifier(ctx, classnames: list[str], device: torch.device) -> torch.nn.Module:
    """θ_0: the run's zero-shot checkpoint (built and saved first if the zero-shot step has not run), so that
    fine-tuning starts from exactly the weights every sweep interpolates from."""
    from .zeroshot import build_zeroshot

    classifier = build_zeroshot(ctx)
    if list(classifier.info.classnames) != list(classnames):
        raise WiseftError(f"the zero-shot checkpoint in {ctx.checkpoints_dir} was built for other classes than "
                          f"{ctx.profile.data.reference!r}; rerun the zero-shot step (--force)")
    return classifier.to(device)


def _save(classifier: torch.nn.Module, stem: Path, meta: dict[str, Any]) -> None:
    from ..checkpoint import save_classifier

    save_classifier(classifier, stem, meta)


def _head(classifier: torch.nn.Module) -> torch.nn.Module:
    return classifier.head


# ------------------------------------------------------------------------------------------------ steps
def variant_cfg(profile: Profile, variant: str | None) -> E2ECfg:
    """The E2E settings of the profile, or of one of its ``finetune.variants`` (merged over them)."""
    base = profile.finetune.e2e
    if variant is None:
        return base
    for item in profile.finetune.variants:
        if item.get("name") == variant:
            return E2ECfg(**{**dataclasses.asdict(base), **{k: v for k, v in item.items() if k != "name"}})
    known = ", ".join(v.get("name", "?") for v in profile.finetune.variants) or "none"
    raise WiseftError(f"unknown fine-tuning variant {variant!r}; the profile defines: {known}")


def run_step(ctx, mode: str, *, resume: bool = True, variant: str | None = None) -> dict[str, Any]:
    """Run one fine-tuning step of a profile's run.

    Args:
        ctx: the run's :class:`wiseft.run.RunContext`.
        mode: ``e2e``, ``lc`` or ``kshot``.
        resume: continue a killed E2E run from its last checkpoint (on by default: reruns never lose work).
        variant: name of a ``finetune.variants`` entry (E2E only); its checkpoint is ``finetuned_e2e_<name>``.

    Returns:
        A JSON-able summary (checkpoint stems, steps, chosen hyperparameters …).
    """
    if mode not in MODES:
        raise WiseftError(f"unknown fine-tuning mode {mode!r}; choose one of {', '.join(MODES)}")
    info = D.init_distributed(ctx.device)
    profile = ctx.profile
    if mode == "e2e":
        return _run_e2e(ctx, profile, info, resume, variant)
    out: dict[str, Any] = {}
    if info.is_main:
        out = _run_lc(ctx, profile, info.device, shots_only=mode == "kshot")
    D.barrier()
    return out


def _meta(ctx, profile: Profile, **extra: Any) -> dict[str, Any]:
    return {"model_name": profile.model.name, "pretrained": profile.model.pretrained,
            "provenance": ctx.provenance(parents=["zeroshot"]), **extra}


def _run_e2e(ctx, profile: Profile, info: D.DistInfo, resume: bool, variant: str | None) -> dict[str, Any]:
    cfg = variant_cfg(profile, variant)
    suffix = f"_{variant}" if variant else ""
    if not cfg.enabled:
        log.info("finetune.e2e.enabled is false; skipping end-to-end fine-tuning")
        return {}
    base = reference_set(profile)
    classifier = _zeroshot_classifier(ctx, list(base.classnames), info.device)
    train_set = WithTransform(base, train_transform(cfg.augmentation, preprocess_of(classifier), cfg.crop_scale))
    result = finetune_e2e(classifier, train_set, cfg, ctx.checkpoints_dir / f"train_e2e{suffix}",
                          device=info.device, seed=profile.seed, resume=resume)
    stem = f"finetuned_e2e{suffix}"
    if info.is_main:
        _save(result.model, ctx.checkpoint_path(stem),
              _meta(ctx, profile, mode="e2e", finetune=dataclasses.asdict(cfg), history=result.history))
    D.barrier()
    return {"checkpoint": stem, "global_step": result.global_step, "history": result.history}


def _run_lc(ctx, profile: Profile, device: torch.device, shots_only: bool) -> dict[str, Any]:
    cfg = profile.finetune.lc
    if not cfg.enabled:
        log.info("finetune.lc.enabled is false; skipping the linear classifier")
        return {}
    base = reference_set(profile)
    classifier = _zeroshot_classifier(ctx, list(base.classnames), device)
    feats = cached_reference_features(profile, classifier, base, device)
    head = _head(classifier)
    init = (head.weight.detach().cpu(), head.bias.detach().cpu())
    x, y = feats.tensors()
    train_dir = ctx.checkpoints_dir / "train_lc"
    summary: dict[str, Any] = {}
    if shots_only:
        runs = [(k, kshot_indices(feats.labels, k, profile.seed, num_classes=init[0].shape[0])) for k in cfg.shots]
    else:
        runs = [(None, None)]
    heldout = _heldout_features(profile, classifier, device)
    for k, idx in runs:
        if idx is None:
            result = search_linear(x, y, cfg, init=init, heldout=heldout, seed=profile.seed, device=device)
        else:
            # Hyperparameters of a k-shot fit are chosen on held-out training images outside its k-shot subset.
            rest = np.setdiff1d(np.arange(len(feats)), idx)
            _, held = heldout_split(feats.labels[rest], cfg.heldout_fraction, profile.seed)
            held_x, held_y = feats.subset(rest[held]).tensors()
            t = torch.from_numpy(idx)
            result = search_linear(x[t], y[t], cfg, init=init, heldout=(held_x, held_y), seed=profile.seed,
                                   device=device)
        stem = "finetuned_lc" if k is None else f"finetuned_lc_k{k}"
        with torch.no_grad():
            head.weight.copy_(result.head.weight.to(head.weight))
            head.bias.copy_(result.head.bias.to(head.bias))
        record = {"hparams": result.hparams.as_dict(), "regularizer": result.regularizer,
                  "heldout_acc": result.heldout_acc, "shots": k}
        if result.epoch_budget is not None:  # T of the trials' U{1..T}, from the App. D.3 doubling search
            record["epoch_budget"] = result.epoch_budget.as_dict()
        atomic_write_json(train_dir / f"{stem}_search.json", {**record, "trials": result.trials})
        _save(classifier, ctx.checkpoint_path(stem), _meta(ctx, profile, mode="lc", lc=record))
        summary[stem] = record
    return summary


def _heldout_features(profile: Profile, classifier: torch.nn.Module, device: torch.device
                      ) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Features of the reference's own held-out split (registry ``heldout_split``), when it has one; otherwise
    ``None`` and the search carves ``finetune.lc.heldout_fraction`` out of the training set."""
    from ..datasets import create_train_set, get_dataset_cfg

    split = get_dataset_cfg(profile.data.reference).get("heldout_split")
    if not split:
        return None
    base = create_train_set(profile.data.reference, reference_root(profile), None, split)
    return cached_reference_features(profile, classifier, base, device, split=split).tensors()
