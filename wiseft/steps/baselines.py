"""The baselines step: the paper's alternatives to WiSE-FT (Figs. 10–13, App. C) and LP-FT, on a profile.

Every baseline is trained with the kit's own engines, then all of them are scored with the evaluation engine in
one pass (each evaluation image is decoded once; the LC heads share one pass of the zero-shot encoder), on the
same evaluation sets as WiSE-FT, including the reference's held-out split. Rows follow the results conventions the figures read:

=============  ======  =====================  =========================================================
method         mode    knob (``extra``)       model
=============  ======  =====================  =========================================================
``l2sp``       e2e     ``lambda``             E2E with λ‖θ − θ_zero-shot‖² added to the loss
``ema``        e2e     ``decay``              debiased EMA of the E2E weights (μ_0 = 0, ÷ (1 − β^T))
``ema_biased`` e2e     ``decay``              EMA started at θ_zero-shot
``lpft``       e2e     —                      E2E from the zero-shot encoder with the trained LC's head
``lc_l2sp``    lc      ``lambda``             LC with λ‖W − W_zero-shot‖²_F
``distill``    lc      ``alpha``              LC on (1 − α)·CE(f, y) + α·CE(f, f_zero-shot)
=============  ======  =====================  =========================================================

The output-space baselines ``ose_prob`` and ``random_interp`` cost no training: the interpolation step writes
them in its α sweep. Both EMA modes are tracked in one E2E run (the decays are buffers beside the weights).

E2E baselines train with ``finetune.e2e`` updated by ``baselines.e2e_overrides`` (a cheaper budget for small
profiles). LC baselines use the hyperparameters the LC search chose for ``finetuned_lc`` (learning rate, batch
size, epochs) with its own regularisers switched off, so the baseline's knob is the only regulariser.

Checkpoints go to ``checkpoints/baselines/<method>[_<knob><value>]`` with the training state of E2E runs under
``checkpoints/baselines/train_<name>/``. A rerun skips a baseline whose checkpoint was written from the same
inputs (settings, zero-shot and probe checkpoints) and whose rows this run already has; ``force=True`` redoes it.
The diversity analyses and the α chosen on the held-out split are in :mod:`wiseft.steps.analyses`.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Callable, Iterable, Sequence

import pandas as pd
import torch

from ..baselines import DistillationLoss, WeightEMA, l2sp_penalty, lc_l2sp_penalty, lpft_init
from ..checkpoint import checkpoint_paths, read_sidecar, read_state_dict, save_classifier
from ..errors import CheckpointError, WiseftError
from ..finetune import distributed as D
from ..finetune.augment import preprocess_of, train_transform
from ..finetune.e2e import E2EResult, finetune_e2e
from ..finetune.linear import LCHparams, LinearHead, train_linear
from ..finetune.search import fixed_hparams
from ..io import stable_hash
from ..models import ImageClassifier
from ..profile import E2ECfg, Profile
from ..results import load_results
from ..run import RunContext
from .common import (append_rows, checkpoint_sha256, classifier_transform, eval_sets, evaluate, has_checkpoint,
                     load_endpoint, write_weights)
from .reference import WithTransform, cached_reference_features, reference_set

log = logging.getLogger(__name__)

__all__ = ["E2E_METHODS", "LC_METHODS", "OUTPUT_METHODS", "METHODS", "SUBDIR", "baseline_e2e_cfg", "lc_hparams",
           "lpft_start", "run_baselines", "baseline_rows", "tensor_sha256"]

E2E_METHODS = ("l2sp", "ema", "ema_biased", "lpft")
LC_METHODS = ("lc_l2sp", "distill")
#: written by the interpolation step's sweep (they mix the endpoints' outputs, nothing to train)
OUTPUT_METHODS = ("ose_prob", "random_interp")
METHODS = E2E_METHODS + LC_METHODS + OUTPUT_METHODS
#: folder of the baselines' checkpoints inside ``checkpoints/``
SUBDIR = "baselines"
_GREEK = {"lambda": "λ", "decay": "β", "alpha": "α"}
_KNOBS = {"l2sp": ("lambda", "l2sp_lambdas"), "ema": ("decay", "ema_decays"),
          "ema_biased": ("decay", "ema_biased_decays"), "lpft": (None, None),
          "lc_l2sp": ("lambda", "lc_l2sp_lambdas"), "distill": ("alpha", "distill_alphas")}


# ------------------------------------------------------------------------------------------------ items
@dataclass(frozen=True)
class _Item:
    """One baseline model: a method and its knob value (``None`` for LP-FT)."""

    method: str
    value: float | None = None

    @property
    def knob(self) -> str | None:
        return _KNOBS[self.method][0]

    @property
    def mode(self) -> str:
        return "lc" if self.method in LC_METHODS else "e2e"

    @property
    def stem(self) -> str:
        return f"{SUBDIR}/{self.method}" + (f"_{self.knob}{self.value:.12g}" if self.knob else "")

    @property
    def label(self) -> str:
        return f"{self.method} {_GREEK[self.knob]}={self.value:.12g}" if self.knob else self.method

    @property
    def extra(self) -> dict[str, Any]:
        return {self.knob: float(self.value)} if self.knob else {}


def _items(profile: Profile, method: str) -> list[_Item]:
    key = _KNOBS[method][1]
    if key is None:
        return [_Item(method)]
    return [_Item(method, float(v)) for v in getattr(profile.baselines, key)]


def tensor_sha256(*tensors: torch.Tensor) -> str:
    """SHA-256 of tensors' bytes (CPU, contiguous), to record and compare a model's starting point."""
    import hashlib

    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


# ------------------------------------------------------------------------------------------- settings
def baseline_e2e_cfg(profile: Profile) -> E2ECfg:
    """``finetune.e2e`` with ``baselines.e2e_overrides`` applied: the recipe of every E2E baseline."""
    return E2ECfg(**{**dataclasses.asdict(profile.finetune.e2e), **profile.baselines.e2e_overrides})


def lc_hparams(ctx: RunContext) -> LCHparams:
    """The LC hyperparameters the baselines train with: the ones chosen for ``finetuned_lc`` (else the profile's
    ``finetune.lc.fixed``), with weight decay, L1 and label smoothing off so the baseline's knob is the only
    regulariser."""
    chosen = None
    if has_checkpoint(ctx, "finetuned_lc"):
        chosen = (read_sidecar(ctx.checkpoint_path("finetuned_lc")).get("extra", {}).get("lc") or {}).get("hparams")
    if chosen:
        hp = LCHparams(**{k: v for k, v in chosen.items() if k in LCHparams.__dataclass_fields__})
    else:
        hp = fixed_hparams(ctx.profile.finetune.lc)
        if hp is None:
            raise WiseftError("the LC baselines reuse the hyperparameters chosen for finetuned_lc; run the 'finetune' "
                              "step first (wiseft finetune --mode lc), or set finetune.lc.fixed")
    return replace(hp, weight_decay=0.0, l1=0.0, label_smoothing=0.0)



def _fingerprint(ctx: RunContext, item: _Item, inputs: dict[str, Any]) -> str:
    p = ctx.profile
    return stable_hash({"method": item.method, "value": item.value, "seed": p.seed, "model": p.model.name,
                        "pretrained": p.model.pretrained, "reference": p.data.reference, **inputs})


def _fresh(ctx: RunContext, item: _Item, fingerprint: str) -> bool:
    """Whether the item's checkpoint exists and was written from the same inputs."""
    if not has_checkpoint(ctx, item.stem):
        return False
    try:
        meta = read_sidecar(ctx.checkpoint_path(item.stem))
    except CheckpointError:
        return False
    return (meta.get("extra", {}).get("baseline") or {}).get("fingerprint") == fingerprint


def _has_rows(done: pd.DataFrame, ctx: RunContext, item: _Item, fingerprint: str) -> bool:
    if done.empty:
        return False
    rows = done[(done["run_id"] == ctx.run_id) & (done["method"] == item.method)]
    return bool(len(rows)) and bool(rows["extra"].map(
        lambda e: isinstance(e, dict) and e.get("fingerprint") == fingerprint).any())


def _save(ctx: RunContext, model: ImageClassifier, item: _Item, fingerprint: str, parents: list[str],
          **record: Any) -> None:
    meta = {"alpha": None, "provenance": ctx.provenance(parents=parents), "mode": item.mode,
            "baseline": {"method": item.method, **item.extra, "fingerprint": fingerprint, **record}}
    save_classifier(model, ctx.checkpoint_path(item.stem), meta)


# ------------------------------------------------------------------------------------------- training
def _train_e2e(ctx: RunContext, device: torch.device, name: str, make: Callable[[], tuple[ImageClassifier, dict]],
               force: bool) -> tuple[E2EResult, dict]:
    """Fine-tune the model ``make()`` returns (with its hooks) under ``train_<name>``; resume a matching run,
    start over when the saved state belongs to other settings."""
    profile = ctx.profile
    cfg = baseline_e2e_cfg(profile)
    base = reference_set(profile)
    out = ctx.checkpoints_dir / SUBDIR / f"train_{name}"
    model, hooks = make()
    train_set = WithTransform(base, train_transform(cfg.augmentation, preprocess_of(model), cfg.crop_scale))
    kwargs = dict(device=device, seed=profile.seed, keep_last=1)
    try:
        return finetune_e2e(model, train_set, cfg, out, resume=not force, **kwargs, **hooks), hooks
    except CheckpointError as e:
        if force:
            raise
        log.warning("%s: the saved training state does not fit (%s); training again from the start", out, e)
    model, hooks = make()  # the failed resume may have loaded part of the state: start from fresh objects
    return finetune_e2e(model, train_set, cfg, out, resume=False, **kwargs, **hooks), hooks


def _zeroshot(ctx: RunContext, device: torch.device) -> ImageClassifier:
    return load_endpoint(ctx, "zeroshot")[0].to(device)


def _run_l2sp(ctx, device, items: list[_Item], force: bool, done: pd.DataFrame) -> list[tuple[_Item, str]]:
    zs_sha = checkpoint_sha256(ctx, "zeroshot")
    cfg = dataclasses.asdict(baseline_e2e_cfg(ctx.profile))
    todo = []
    for item in items:
        fp = _fingerprint(ctx, item, {"cfg": cfg, "zeroshot": zs_sha})
        if not force and _fresh(ctx, item, fp):
            log.info("%s: checkpoint up to date, not retrained", item.label)
        else:
            def make(item=item):
                model = _zeroshot(ctx, device)
                reference = {k: v.detach().clone() for k, v in model.state_dict().items()}
                return model, {"extra_loss": l2sp_penalty(reference, item.value),
                               "tag": {"baseline": "l2sp", "lambda": item.value, "zeroshot": zs_sha}}

            log.info("training %s (E2E)", item.label)
            result, _ = _train_e2e(ctx, device, item.stem.split("/")[-1], make, force)
            if D.is_main_process():
                _save(ctx, result.model, item, fp, ["zeroshot"], steps=result.global_step)
            D.barrier()
        todo.append((item, fp))
    return [(i, fp) for i, fp in todo if force or not _has_rows(done, ctx, i, fp)]


def _run_ema(ctx, device, items: list[_Item], force: bool, done: pd.DataFrame) -> list[tuple[_Item, str]]:
    """One E2E run tracks every decay of every EMA mode asked for."""
    zs_sha = checkpoint_sha256(ctx, "zeroshot")
    cfg = dataclasses.asdict(baseline_e2e_cfg(ctx.profile))
    grids = {m: [i.value for i in items if i.method == m] for m in ("ema", "ema_biased")}
    grids = {m: g for m, g in grids.items() if g}
    # An average does not depend on which other averages the run tracked: a later run that tracks fewer reuses it.
    fps = {item: _fingerprint(ctx, item, {"cfg": cfg, "zeroshot": zs_sha}) for item in items}
    if force or not all(_fresh(ctx, item, fps[item]) for item in items):
        def make():
            model = _zeroshot(ctx, device)
            emas = {}
            if "ema" in grids:
                emas["ema"] = WeightEMA(grids["ema"], mode="debiased")
            if "ema_biased" in grids:
                emas["ema_biased"] = WeightEMA(grids["ema_biased"], mode="biased", init_state=model.state_dict())

            def on_step(m: torch.nn.Module, step: int) -> None:
                for ema in emas.values():
                    ema.update(m)

            return model, {"on_step": on_step, "callback_state": emas,
                           "tag": {"baseline": "ema", "tracked": grids, "zeroshot": zs_sha}}

        log.info("training one E2E run for the EMAs %s", grids)
        result, hooks = _train_e2e(ctx, device, "ema", make, force)
        if D.is_main_process():
            model = result.model
            for item in items:
                model.load_state_dict(hooks["callback_state"][item.method].state_dict_for(item.value))
                _save(ctx, model, item, fps[item], ["zeroshot"], steps=result.global_step)
        D.barrier()
    return [(i, fps[i]) for i in items if force or not _has_rows(done, ctx, i, fps[i])]


def lpft_start(ctx: RunContext, device: str | torch.device = "cpu") -> ImageClassifier:
    """LP-FT's starting point: the zero-shot encoder with the head of the trained LC (``finetuned_lc``)."""
    zs = _zeroshot(ctx, device)
    probe, _ = load_endpoint(ctx, "finetuned_lc")
    head = {k: v for k, v in probe.state_dict().items() if k.startswith("head.")}
    return lpft_init(zs, head, classnames=zs.info.classnames, probe_classnames=probe.info.classnames,
                     inplace=True)


def _run_lpft(ctx, device, items: list[_Item], force: bool, done: pd.DataFrame) -> list[tuple[_Item, str]]:
    (item,) = items
    zs_sha, lc_sha = checkpoint_sha256(ctx, "zeroshot"), checkpoint_sha256(ctx, "finetuned_lc")
    if lc_sha is None:
        load_endpoint(ctx, "finetuned_lc")  # raises, naming the step that writes it
    fp = _fingerprint(ctx, item, {"cfg": dataclasses.asdict(baseline_e2e_cfg(ctx.profile)), "zeroshot": zs_sha,
                                  "probe": lc_sha})
    if force or not _fresh(ctx, item, fp):
        start: dict[str, str] = {}

        def make():
            model = lpft_start(ctx, device)
            start.update(head=tensor_sha256(model.head.weight, model.head.bias),
                         encoder=tensor_sha256(*model.image_encoder.state_dict().values()))
            return model, {"tag": {"baseline": "lpft", "zeroshot": zs_sha, "probe": lc_sha}}

        log.info("training LP-FT: E2E from the linear probe's head")
        result, _ = _train_e2e(ctx, device, "lpft", make, force)
        if D.is_main_process():
            _save(ctx, result.model, item, fp, ["zeroshot", "finetuned_lc"], steps=result.global_step,
                  start={"from": "finetuned_lc", "head_sha256": start["head"], "encoder_sha256": start["encoder"]})
        D.barrier()
    return [(item, fp)] if force or not _has_rows(done, ctx, item, fp) else []


def _run_lc(ctx, device, items: list[_Item], force: bool, done: pd.DataFrame) -> list[tuple[_Item, str]]:
    """LC L2-SP and distillation: linear heads on the cached features of the zero-shot encoder."""
    profile = ctx.profile
    hp = lc_hparams(ctx)
    zs_sha = checkpoint_sha256(ctx, "zeroshot")
    fps = {item: _fingerprint(ctx, item, {"hparams": hp.as_dict(), "init": profile.finetune.lc.init,
                                          "zeroshot": zs_sha}) for item in items}
    stale = [i for i in items if force or not _fresh(ctx, i, fps[i])]
    if stale and D.is_main_process():
        classifier = _zeroshot(ctx, device)
        feats = cached_reference_features(profile, classifier, reference_set(profile), device)
        x, y = feats.tensors()
        w0, b0 = classifier.head.weight.detach().clone(), classifier.head.bias.detach().clone()
        init = (w0.cpu(), b0.cpu()) if profile.finetune.lc.init == "zeroshot" else None
        teacher = LinearHead(w0, b0, normalize=True).to(device).eval().requires_grad_(False)
        for item in stale:
            hooks: dict[str, Any] = {}
            if item.method == "lc_l2sp":
                hooks["extra_loss"] = lc_l2sp_penalty(w0, item.value, weight_name="weight")
            else:
                hooks["loss_fn"] = DistillationLoss(teacher, alpha=item.value)
            log.info("training %s (LC, %s)", item.label, hp)
            head = train_linear(x, y, hp, init=init, num_classes=w0.shape[0], seed=profile.seed, device=device,
                                **hooks)
            model = copy.deepcopy(classifier)
            with torch.no_grad():
                model.head.weight.copy_(head.weight.to(model.head.weight))
                model.head.bias.copy_(head.bias.to(model.head.bias))
            _save(ctx, model, item, fps[item], ["zeroshot"], hparams=hp.as_dict())
    D.barrier()
    return [(i, fps[i]) for i in items if force or not _has_rows(done, ctx, i, fps[i])]


# ------------------------------------------------------------------------------------------ evaluation

#: E2E baselines scored in one pass hold their weights on the host; above this many bytes the pass is split.
MAX_RESIDENT_BYTES = 8 * 2**30


def _passes(todo: Sequence[tuple[_Item, str]], model_bytes: int) -> list[list[tuple[_Item, str]]]:
    """Group the items into evaluation passes: one, unless the E2E models' weights would exceed
    :data:`MAX_RESIDENT_BYTES` (LC heads cost nothing and go into the first pass)."""
    per_pass = max(1, MAX_RESIDENT_BYTES // max(model_bytes, 1))
    e2e = [t for t in todo if t[0].mode == "e2e"]
    lc = [t for t in todo if t[0].mode == "lc"]
    groups = [e2e[i:i + per_pass] for i in range(0, len(e2e), per_pass)] or [[]]
    groups[0] = lc + groups[0]
    return [g for g in groups if g]


def _evaluate(ctx: RunContext, todo: Sequence[tuple[_Item, str]]) -> pd.DataFrame:
    """Score baseline checkpoints with the evaluation engine and append their rows: every family in one pass
    (each image decoded once), split only when the E2E models would not fit :data:`MAX_RESIDENT_BYTES`.

    E2E models are written into the working model one after another; LC heads sit on the zero-shot encoder, so
    they share one encoder pass per chunk (:func:`wiseft.evaluation.head_setting`) and only their heads are held.
    """
    if not todo:
        return pd.DataFrame()
    model, _ = load_endpoint(ctx, "zeroshot")
    size = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    frames = [_evaluate_pass(ctx, model, group) for group in _passes(todo, size)]
    return pd.concat(frames, ignore_index=True)


def _evaluate_pass(ctx: RunContext, model: ImageClassifier, todo: Sequence[tuple[_Item, str]]) -> pd.DataFrame:
    from ..evaluation import WeightSetting, head_setting

    theta0 = {k: v.detach().clone() for k, v in model.state_dict().items()}
    settings = []
    for item, fp in todo:
        state = read_state_dict(checkpoint_paths(ctx.checkpoint_path(item.stem))[0])
        extra = {**item.extra, "checkpoint": item.stem, "fingerprint": fp}
        if item.mode == "lc":
            settings.append(head_setting(theta0, state["head.weight"], state["head.bias"], label=item.label,
                                         method=item.method, mode="lc", extra=extra))
        else:
            settings.append(WeightSetting(label=item.label, method=item.method, alpha=None, mode=item.mode,
                                          extra=extra, apply=partial(write_weights, state)))
    sets = eval_sets(ctx.profile, classifier_transform(model), heldout=True)
    log.info("evaluating %s in one pass", ", ".join(s.label for s in settings))
    result = evaluate(ctx, model, settings, sets)
    if not D.is_main_process():
        return pd.DataFrame()
    return append_rows(ctx, result, sets)


# ------------------------------------------------------------------------------------------------ step
def _selected(ctx: RunContext, only: Iterable[str] | None) -> list[str]:
    methods = list(ctx.profile.baselines.methods) if only is None else list(dict.fromkeys(only))
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise WiseftError(f"unknown baseline(s) {unknown}; known: {', '.join(METHODS)}")
    if only is not None:
        extra = [m for m in methods if m not in ctx.profile.baselines.methods]
        if extra:
            log.info("running %s although baselines.methods does not list them (asked for explicitly)", extra)
    return methods


def run_baselines(ctx: RunContext, *, only: Iterable[str] | None = None, force: bool = False) -> pd.DataFrame:
    """Train and score every baseline of ``baselines.methods`` (or of ``only``) that is not output-space.

    Args:
        ctx: the run (needs ``checkpoints/zeroshot``; LP-FT and the LC baselines also ``finetuned_lc``).
        only: run just these methods (names as in ``baselines.methods``).
        force: retrain and re-evaluate even when an up-to-date checkpoint and its rows exist.

    Returns:
        This run's rows of the selected methods (including rows written by earlier calls and, for
        ``ose_prob``/``random_interp``, by the interpolation step).
    """
    methods = _selected(ctx, only)
    for m in methods:
        if m in OUTPUT_METHODS:
            log.info("%s comes from the interpolation step's sweep (wiseft interpolate); nothing to train", m)
    info = D.init_distributed(ctx.device)
    done = load_results(ctx.results_path)
    families: list[tuple[Callable, list[_Item]]] = []  # trained one after another, then scored together
    if "l2sp" in methods:
        families.append((_run_l2sp, _items(ctx.profile, "l2sp")))
    ema = [i for m in ("ema", "ema_biased") if m in methods for i in _items(ctx.profile, m)]
    if ema:
        families.append((_run_ema, ema))
    if "lpft" in methods:
        families.append((_run_lpft, _items(ctx.profile, "lpft")))
    lc = [i for m in LC_METHODS if m in methods for i in _items(ctx.profile, m)]
    if lc:
        families.append((_run_lc, lc))
    todo = []
    for run, items in families:
        start = time.perf_counter()
        todo += run(ctx, info.device, items, force, done)
        log.info("%s ready in %.1f s", "/".join(sorted({i.method for i in items})), time.perf_counter() - start)
    if todo:
        start = time.perf_counter()
        _evaluate(ctx, todo)
        log.info("scored %d baseline models in %.1f s", len(todo), time.perf_counter() - start)
    elif families:
        log.info("every selected baseline is up to date in %s; nothing to evaluate", ctx.results_path)
    return baseline_rows(ctx, methods)


def baseline_rows(ctx: RunContext, methods: Sequence[str] = METHODS) -> pd.DataFrame:
    """This run's rows of the given baseline methods, the latest per setting, dataset and metric."""
    df = load_results(ctx.results_path)
    if df.empty:
        return df
    df = df[(df["run_id"] == ctx.run_id) & df["method"].isin(list(methods))].copy()
    setting = df["extra"].map(lambda e: e.get("setting") if isinstance(e, dict) else None)
    df = df.assign(_setting=setting).drop_duplicates(subset=["method", "mode", "alpha", "_setting", "dataset",
                                                              "metric"], keep="last")
    return df.drop(columns="_setting").reset_index(drop=True)
