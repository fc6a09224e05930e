"""The interpolation step: WiSE-FT α sweeps, output-space and Fisher ensembles, variants and k-shot sweeps.

Every sweep is one pass of the evaluation engine: each evaluation image is read once, every α is scored on it,
and only θ_0, θ_1 and a working model are resident. Nothing is written per α except the results rows; the α
values of ``interpolation.keep`` are also written as checkpoints (``wiseft_<mode>_alpha0.50``).
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Sequence

import pandas as pd
import torch

from ..checkpoint import checkpoint_paths, read_state_dict, save_classifier
from ..ensembles import output_settings
from ..errors import WiseftError
from ..evaluation import lerp_settings
from ..interpolation import interpolate_state_dicts
from ..profile import Profile
from ..run import RunContext
from .common import (
    append_rows,
    classifier_transform,
    data_root,
    eval_sets,
    evaluate,
    has_checkpoint,
    load_endpoint,
)
from .train import variant_cfg

log = logging.getLogger(__name__)

__all__ = ["sweep", "fisher_dataset", "run_interpolation", "run_variant_sweeps", "run_kshot_sweeps", "enabled_modes"]

#: Output-space baselines that come for free in a sweep's pass (they mix the endpoints' logits).
_OUTPUT_BASELINES = ("ose_prob", "random_interp")


def enabled_modes(ctx: RunContext) -> list[str]:
    """``e2e`` and/or ``lc``: the fine-tuning modes the profile enables."""
    ft = ctx.profile.finetune
    return [m for m, on in (("e2e", ft.e2e.enabled), ("lc", ft.lc.enabled)) if on]


def sweep(ctx: RunContext, finetuned: str, mode: str, alphas: Sequence[float], *, method: str = "wiseft",
          extra: dict[str, Any] | None = None, ose: bool = False, output_baselines: Sequence[str] = (),
          fisher: bool = False, heldout: bool = True) -> pd.DataFrame:
    """θ_α = (1−α)·θ_zeroshot + α·θ_<finetuned> for every α, scored in one pass; rows appended and returned.

    Args:
        ctx: the run.
        finetuned: checkpoint stem of θ_1 (``finetuned_e2e``, ``finetuned_lc_k5`` …).
        mode: ``e2e`` or ``lc`` (rows' mode).
        alphas: the α grid.
        method: rows' method (``wiseft``, ``variant``, ``kshot``).
        extra: recorded in every row's ``extra`` (a variant's name, the number of shots …).
        ose: add the output-space ensemble of the endpoints' logits (paper Fig. 10) for every α.
        output_baselines: further output-space baselines (``ose_prob``, ``random_interp``).
        fisher: add Fisher-weighted merges (diagonal Fisher of each endpoint, :func:`fisher_dataset`).
        heldout: also score the reference's held-out split (role ``heldout``), to choose α without shift data.
    """
    alphas = [float(a) for a in alphas]
    model, _ = load_endpoint(ctx, "zeroshot")
    theta0 = {k: v.clone() for k, v in model.state_dict().items()}
    theta1 = read_state_dict(checkpoint_paths(ctx.checkpoint_path(finetuned))[0])
    settings: list = lerp_settings(theta0, theta1, alphas, method=method, mode=mode)
    ends = (f"{method} α=0", f"{method} α=1")
    have_ends = 0.0 in alphas and 1.0 in alphas
    wanted = (["ose"] if ose else []) + [b for b in output_baselines if b in _OUTPUT_BASELINES]
    if wanted and not have_ends:
        raise WiseftError("output-space ensembles need α = 0 and α = 1 in the sweep's α grid")
    for name in wanted:
        settings += output_settings(alphas, ends, method=name, mode=mode, seed=ctx.profile.seed)
    if fisher:
        settings += _fisher_settings(ctx, model, theta0, theta1, finetuned, alphas, mode)
    sets = eval_sets(ctx.profile, classifier_transform(model), heldout=heldout)
    result = evaluate(ctx, model, settings, sets)
    return append_rows(ctx, result, sets, mode=mode, extra={**(extra or {}), "finetuned": finetuned})


def fisher_dataset(profile: Profile, transform: Callable | None) -> torch.utils.data.Dataset:
    """The images the Fisher is estimated on: the reference's split named by ``interpolation.fisher_split``
    (``eval``: its evaluation split, as the official code runs; ``train``: its training split), with the model's
    evaluation transform. :func:`~wiseft.fisher.compute_fisher` draws a class-balanced sample from it."""
    from ..datasets import create_eval_set, create_train_set

    name, root = profile.data.reference, data_root(profile)
    if profile.interpolation.fisher_split == "train":
        return create_train_set(name, root, transform)
    return create_eval_set(name, root, transform, role="reference", skip_bad_images=profile.data.skip_bad_images,
                           border_crop=profile.data.border_crop.get(name)).dataset


def _fisher_settings(ctx: RunContext, model, theta0, theta1, finetuned: str, alphas, mode: str) -> list:
    """Fisher-weighted merges (the wise-ft repo's ``--fisher``); Fishers are cached next to the checkpoints."""
    from ..fisher import compute_fisher, fisher_settings, load_fisher, save_fisher

    profile, cfg = ctx.profile, ctx.profile.interpolation
    images = fisher_dataset(profile, classifier_transform(model))
    samples = "all" if cfg.fisher_samples is None else str(cfg.fisher_samples)
    fishers = []
    for stem, state in (("zeroshot", theta0), (finetuned, theta1)):
        # the split and the (class-balanced) sample are part of the name: a Fisher of other images is not reused
        path = ctx.checkpoints_dir / f"fisher_{stem}_{cfg.fisher_split}_balanced{samples}.safetensors"
        if path.is_file():
            fishers.append(load_fisher(path))
            continue
        model.load_state_dict(state)
        fisher = compute_fisher(model, images, num_samples=cfg.fisher_samples, device=ctx.device,
                                precision=profile.eval.precision, seed=profile.seed)
        save_fisher(fisher, path, {"checkpoint": stem, "samples": samples, "split": cfg.fisher_split,
                                   "sampling": "class-balanced", "seed": str(profile.seed)})
        fishers.append(fisher)
    return fisher_settings(theta0, theta1, fishers[0], fishers[1], alphas, floor=cfg.fisher_floor, mode=mode)


def keep_checkpoints(ctx: RunContext, mode: str) -> list[str]:
    """Write θ_α for every α of ``interpolation.keep`` as ``wiseft_<mode>_alpha<α>`` checkpoints (rank 0)."""
    from ..finetune.distributed import is_main_process

    if not is_main_process():
        return []
    model, meta = load_endpoint(ctx, "zeroshot")
    theta0 = model.state_dict()
    theta1 = read_state_dict(checkpoint_paths(ctx.checkpoint_path(f"finetuned_{mode}"))[0])
    stems = []
    for alpha in ctx.profile.interpolation.keep:
        stem = f"wiseft_{mode}_alpha{alpha:.2f}"
        model.load_state_dict(interpolate_state_dicts(theta0, theta1, alpha))
        save_classifier(model, ctx.checkpoint_path(stem), {
            "alpha": float(alpha), "template_set": meta.get("template_set"),
            "provenance": ctx.provenance(parents=["zeroshot", f"finetuned_{mode}"])})
        stems.append(stem)
    return stems


def run_interpolation(ctx: RunContext) -> pd.DataFrame:
    """The main sweeps of the profile: WiSE-FT for every enabled mode, with OSE (E2E), the output-space
    baselines the profile asks for, and Fisher merges when ``interpolation.fisher`` is set."""
    cfg, frames = ctx.profile.interpolation, []
    baselines = [m for m in ctx.profile.baselines.methods if m in _OUTPUT_BASELINES]
    for mode in enabled_modes(ctx):
        stem = f"finetuned_{mode}"
        if not has_checkpoint(ctx, stem):
            raise WiseftError(f"no {stem} checkpoint in {ctx.checkpoints_dir}; run the 'finetune' step first")
        log.info("WiSE-FT sweep (%s): %d values of α", mode, len(cfg.alpha_grid()))
        frames.append(sweep(ctx, stem, mode, cfg.alpha_grid(), ose=cfg.ose and mode == "e2e",
                            output_baselines=baselines, fisher=cfg.fisher and mode == "e2e"))
        keep_checkpoints(ctx, mode)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _secondary_grid(ctx: RunContext) -> list[float]:
    cfg = ctx.profile.interpolation
    return [float(a) for a in cfg.secondary_alphas] if cfg.secondary_alphas is not None else cfg.alpha_grid()


def run_variant_sweeps(ctx: RunContext) -> pd.DataFrame:
    """A WiSE-FT curve for every fine-tuning variant of the profile (paper Fig. 3): ``method=variant``."""
    frames = []
    for item in ctx.profile.finetune.variants:
        name = item["name"]
        cfg = variant_cfg(ctx.profile, name)
        stem = f"finetuned_e2e_{name}"
        if not has_checkpoint(ctx, stem):
            raise WiseftError(f"no {stem} checkpoint; run the 'finetune' step first")
        extra = {"name": name, "lr": cfg.lr, "epochs": cfg.epochs}
        frames.append(sweep(ctx, stem, "e2e", _secondary_grid(ctx), method="variant", extra=extra, heldout=False))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def run_kshot_sweeps(ctx: RunContext) -> pd.DataFrame:
    """A WiSE-FT curve for every k-shot linear classifier (paper Fig. 17): ``method=kshot``, ``extra.shots``."""
    frames = []
    for k in ctx.profile.finetune.lc.shots:
        stem = f"finetuned_lc_k{k}"
        if not has_checkpoint(ctx, stem):
            raise WiseftError(f"no {stem} checkpoint; run the 'finetune' step first")
        frames.append(sweep(ctx, stem, "lc", _secondary_grid(ctx), method="kshot", extra={"shots": int(k)},
                            heldout=False))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
