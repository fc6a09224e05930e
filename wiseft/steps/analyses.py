"""Why WiSE-FT works (paper Fig. 5, App. E) and which α to use without shift data, on a profile's run.

:func:`run_analyses` compares the zero-shot model with the fine-tuned ones on every evaluation set, in one pass of
the evaluation engine (projected logits via ``keep_logits_for``, L2-normalised image features via
``keep_features_for``), and writes ``<run>/analyses.csv`` atomically with the columns
``dataset, measure, value, comparison, n``:

- ``comparison``: ``zeroshot_vs_finetuned`` (the E2E model), ``zeroshot_vs_lc`` (the linear classifier) and
  ``baseline`` (two linear classifiers trained on seeded, stratified random halves of the reference training set,
  the paper's yardstick of how different two ordinary fine-tuned models are; in its rows "zs" is the first half);
- ``measure``: ``prediction_diversity``, ``kappa_complement``, ``cka_complement``, ``kl_divergence`` (nats,
  KL(p_zs ‖ p_ft)), ``zs_overrides``, ``zs_overridden`` (at α = 0.5), ``confidence_gap_zs``,
  ``confidence_gap_ft`` (mean top-1 minus top-2 logit) — see :mod:`wiseft.baselines.analysis`;
- CKA uses the encoders' features for the E2E pair (subsampled to ``baselines.cka_max_samples``) and the logits
  for the LC pairs, whose encoder is the zero-shot one.

:func:`choose_alpha` picks α on the reference's held-out split (rows ``role="heldout"`` of the WiSE-FT sweep) and
reports it beside the paper's default α = 0.5, with the reference and shift accuracies each gives.
"""

from __future__ import annotations

import logging
from functools import partial

import numpy as np
import pandas as pd
import torch

from ..baselines import DEFAULT_ALPHA, diversity_measures, select_alpha_from_results
from ..errors import WiseftError
from ..evaluation import WeightSetting, head_setting
from ..finetune.linear import train_linear
from ..finetune.search import heldout_split
from ..io import atomic_write_json, atomic_write_text, stable_hash
from ..results import load_results
from ..run import RunContext
from ..schema import loads_bounded
from .baselines import lc_hparams
from .common import (checkpoint_sha256, classifier_transform, eval_sets, evaluate, has_checkpoint, load_endpoint,
                     write_weights)
from .reference import cached_reference_features, reference_set

log = logging.getLogger(__name__)

__all__ = ["ANALYSIS_MEASURES", "ANALYSES_FILE", "run_analyses", "choose_alpha"]

ANALYSES_FILE = "analyses.csv"
#: analyses.csv measure → key of :func:`wiseft.baselines.diversity_measures`
ANALYSIS_MEASURES = {
    "prediction_diversity": "prediction_diversity",
    "kappa_complement": "kappa_complement",
    "cka_complement": "cka_complement",
    "kl_divergence": "kl_divergence",
    "zs_overrides": "zs_overrides",
    "zs_overridden": "zs_overridden",
    "confidence_gap_zs": "confidence_zs",
    "confidence_gap_ft": "confidence_ft",
}
_COLUMNS = ["dataset", "measure", "value", "comparison", "n"]




def _half_heads(ctx: RunContext, classifier) -> list[dict[str, torch.Tensor]]:
    """Two LCs on random halves of the reference training set (the LC recipe of the baselines)."""
    profile, device = ctx.profile, ctx.device
    feats = cached_reference_features(profile, classifier, reference_set(profile), device)
    x, y = feats.tensors()
    first, second = heldout_split(y.numpy(), 0.5, profile.seed)
    w0, b0 = classifier.head.weight.detach().cpu(), classifier.head.bias.detach().cpu()
    init = (w0, b0) if profile.finetune.lc.init == "zeroshot" else None
    hp, heads = lc_hparams(ctx), []
    for i, idx in enumerate((first, second)):
        t = torch.from_numpy(idx)
        head = train_linear(x[t], y[t], hp, init=init, num_classes=w0.shape[0], seed=profile.seed + i, device=device)
        heads.append({"head.weight": head.weight.detach().cpu(), "head.bias": head.bias.detach().cpu()})
    return heads


def run_analyses(ctx: RunContext, *, force: bool = False) -> pd.DataFrame:
    """Diversity measures between the zero-shot and fine-tuned models on every evaluation set → ``analyses.csv``.

    Needs ``checkpoints/zeroshot`` and at least one of ``finetuned_e2e``/``finetuned_lc``. Skipped (the existing
    table is returned) when ``analyses.csv`` was computed from the same checkpoints and settings, unless ``force``.

    Returns:
        The table written (columns ``dataset, measure, value, comparison, n``).
    """
    profile = ctx.profile
    have_e2e, have_lc = has_checkpoint(ctx, "finetuned_e2e"), has_checkpoint(ctx, "finetuned_lc")
    if not (have_e2e or have_lc):
        raise WiseftError(f"no fine-tuned checkpoint in {ctx.checkpoints_dir}; run the 'finetune' step first")
    path, marker = ctx.dir / ANALYSES_FILE, ctx.checkpoints_dir / "baselines" / "analyses.json"
    fingerprint = stable_hash({
        **{k: checkpoint_sha256(ctx, k) for k in ("zeroshot", "finetuned_e2e", "finetuned_lc")},
        "cka": profile.baselines.cka_max_samples, "seed": profile.seed, "datasets": profile.datasets,
        "max_images": profile.eval.max_images})
    if not force and path.is_file() and marker.is_file():
        try:
            recorded = loads_bounded(marker.read_bytes())
        except (OSError, ValueError):  # a damaged marker: recompute
            recorded = None
        if isinstance(recorded, dict) and recorded.get("fingerprint") == fingerprint:
            log.info("%s is up to date; not recomputed", path)
            return pd.read_csv(path)

    model, _ = load_endpoint(ctx, "zeroshot")
    zs_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    # The zero-shot model and the linear heads share one pass of the zero-shot encoder per chunk (head-only
    # settings on the same θ0 object); the E2E model writes every weight of the working model after them.
    pairs: list[tuple[str, str, str, bool]] = []  # (comparison, first, second, CKA on features)
    if have_lc:
        lc, _ = load_endpoint(ctx, "finetuned_lc")
        settings = [head_setting(zs_state, zs_state["head.weight"], zs_state["head.bias"], label="zeroshot",
                                 method="zeroshot", mode=None),
                    head_setting(zs_state, lc.head.weight.detach(), lc.head.bias.detach(), label="lc",
                                 method="finetuned")]
        pairs.append(("zeroshot_vs_lc", "zeroshot", "lc", False))
        for i, half in enumerate(_half_heads(ctx, model), start=1):
            settings.append(head_setting(zs_state, half["head.weight"], half["head.bias"], label=f"lc half {i}",
                                         method="finetuned"))
        pairs.append(("baseline", "lc half 1", "lc half 2", False))
    else:
        settings = [WeightSetting("zeroshot", "zeroshot", None, partial(write_weights, zs_state))]
    if have_e2e:
        e2e, _ = load_endpoint(ctx, "finetuned_e2e")
        e2e_state = {k: v.detach().clone() for k, v in e2e.state_dict().items()}
        settings.append(WeightSetting("e2e", "finetuned", None, partial(write_weights, e2e_state), mode="e2e"))
        pairs.insert(0, ("zeroshot_vs_finetuned", "zeroshot", "e2e", True))
    sets = eval_sets(profile, classifier_transform(model))
    labels = [s.label for s in settings]
    result = evaluate(ctx, model, settings, sets, keep_logits_for=labels,
                      keep_features_for=["zeroshot", "e2e"] if have_e2e else [])
    rows = []
    for name, res in result.sets.items():
        if any(np.isneginf(np.asarray(res.logits[label])).any() for label in labels):
            # A protocol that rules classes out with -inf logits (the video sets' never-predicted classes) has no
            # divergence or confidence gap to measure; the paper's Fig. 5 analyses ImageNet and its shifts only.
            log.info("%s: left out of the diversity analyses (its protocol masks classes with -inf logits)", name)
            continue
        for comparison, a, b, on_features in pairs:
            feats = dict(features_zs=res.features[a], features_ft=res.features[b]) if on_features else {}
            values = diversity_measures(res.logits[a], res.logits[b], res.labels.astype(np.int64),
                                        cka_max_samples=profile.baselines.cka_max_samples, seed=profile.seed,
                                        **feats)
            for measure, key in ANALYSIS_MEASURES.items():
                value, n = values[key]
                rows.append({"dataset": name, "measure": measure, "value": value, "comparison": comparison, "n": n})
    frame = pd.DataFrame(rows, columns=_COLUMNS)
    atomic_write_text(path, frame.to_csv(index=False))
    atomic_write_json(marker, {"fingerprint": fingerprint, "comparisons": [p[0] for p in pairs]})
    log.info("wrote %s (%d datasets × %d comparisons)", path, len(result.sets), len(pairs))
    return frame


# ------------------------------------------------------------------------------------------- choose α
def _run_rows(ctx: RunContext, df: pd.DataFrame) -> pd.DataFrame:
    """This run's rows; when the profile was changed since the sweep (another run id), the latest sweep of the
    same profile and model."""
    mine = df[df["run_id"] == ctx.run_id]
    held = (mine["role"] == "heldout") & (mine["method"] == "wiseft")
    if held.any():
        return mine
    same = df[(df["profile"] == ctx.profile.name) & (df["model"] == ctx.profile.model.name)
              & (df["role"] == "heldout") & (df["method"] == "wiseft")]
    if same.empty:
        return mine
    run_id = same["run_id"].iloc[-1]
    log.info("no held-out sweep under run id %s; using the latest one of profile %s (%s)", ctx.run_id,
             ctx.profile.name, run_id)
    return df[df["run_id"] == run_id]


def choose_alpha(ctx: RunContext, *, tol: float = 0.0) -> pd.DataFrame:
    """α chosen on the reference's held-out split beside the paper's α = 0.5, per fine-tuning mode.

    Args:
        ctx: the run (its WiSE-FT sweep must have scored the held-out split: the interpolation step does).
        tol: held-out values within ``tol`` of the best count as tied; the smallest tied α wins
            (see :mod:`wiseft.baselines.select_alpha`).

    Returns:
        One row per mode and choice (``held-out``, ``default``): ``mode, choice, alpha``, the held-out value, the
        reference value and ``avg_shifts`` (fractions; NaN where that α was not evaluated), plus the held-out
        set's name and metric. Empty (with a warning) when no held-out rows exist yet.
    """
    df = load_results(ctx.results_path)
    columns = ["mode", "choice", "alpha", "heldout", "reference", "avg_shifts", "heldout_set", "metric"]
    if df.empty:
        log.warning("no results in %s yet; run the interpolation step first", ctx.results_path)
        return pd.DataFrame(columns=columns)
    df = _run_rows(ctx, df)
    sweep = df[(df["method"] == "wiseft") & df["alpha"].notna()]
    sweep = sweep.drop_duplicates(subset=["mode", "alpha", "dataset", "metric"], keep="last")
    primary = df.groupby("dataset", sort=False)["metric"].first()
    sweep = sweep[sweep["metric"] == sweep["dataset"].map(primary)]
    out = []
    for mode in [m for m in ("e2e", "lc") if (sweep["mode"] == m).any()]:
        curve = sweep[sweep["mode"] == mode]
        held = curve[curve["role"] == "heldout"]
        if held.empty:
            continue
        choice = select_alpha_from_results(curve, mode=mode, dataset=held["dataset"].iloc[0],
                                           metric=held["metric"].iloc[0], tol=tol)
        wide = curve.pivot_table(index="alpha", columns="dataset", values="value", aggfunc="last")
        roles = curve.groupby("dataset", sort=False)["role"].first()
        refs = [d for d in wide.columns if roles[d] == "reference"]
        shifts = [d for d in wide.columns if roles[d] == "shift"]
        for label, alpha in (("held-out", choice.alpha), ("default", DEFAULT_ALPHA)):
            at = wide.loc[[a for a in wide.index if np.isclose(a, alpha)]]
            get = (lambda cols, at=at: float(at[cols].mean(axis=1).iloc[0]) if len(at) and cols else float("nan"))
            out.append({"mode": mode, "choice": label, "alpha": alpha, "heldout": get([choice.dataset]),
                        "reference": get(refs[:1]), "avg_shifts": get(shifts), "heldout_set": choice.dataset,
                        "metric": choice.metric})
    if not out:
        log.warning("no held-out rows of a WiSE-FT sweep in %s; run the interpolation step first", ctx.results_path)
    return pd.DataFrame(out, columns=columns)
