"""One-pass evaluation of many weight settings (every α of a sweep) on many evaluation sets.

The wise-ft repository re-reads every dataset once per α. Here each evaluation image is read, decoded and
preprocessed once per sweep: images are loaded in chunks (held in memory, as ``uint8`` where the transform
allows; at most ``memory_gb`` and ``chunk_images``; on the GPU or in pinned host memory: :mod:`wiseft.evalcache`),
and every setting is applied to the working model and scored on the chunk before the next chunk is read. Only
θ_0, θ_1, the working model and one chunk are resident, whatever the number of α.

When θ_0 and θ_1 differ only in the head (a linear-classifier sweep), features are computed once per chunk
and logits(α) = (1−α)·logits_0 + α·logits_1, which equals weight interpolation of the head; head-only groups
that share the same θ_0 object (several linear heads on one encoder, :func:`head_setting`) share that encoder
pass, and endpoint tensors shared between groups are moved to the device once. Output-space
ensembles (:class:`~wiseft.ensembles.OutputSetting`) are mixed from the endpoint logits of the same pass.

Chunks are whole batches of ``batch_size``, so every forward pass sees exactly the batches a plain DataLoader
loop would, and the numbers equal those of a naive per-α loop bit for bit (see the tests).

Under ``torch.distributed`` each rank evaluates a contiguous shard of every set; predictions are gathered
and every rank computes the same metrics.

Example:
    >>> settings = lerp_settings(theta0, theta1, [0.0, 0.5, 1.0], mode="e2e")      # doctest: +SKIP
    >>> result = evaluate_settings(model, settings, eval_sets, device="cuda")       # doctest: +SKIP
    >>> run.results.append(result.to_rows(run))                                     # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .datasets.base import EvalSet
from .device import autocast, resolve_device
from .ensembles import OutputSetting
from .errors import WiseftError
from .evalcache import prepare, staged_chunks
from .interpolation import check_compatible, differing_keys, lerp_into_
from .models import ClassificationHead, ImageClassifier
from .progress import progress
from .results import ResultRow

log = logging.getLogger(__name__)

__all__ = ["WeightSetting", "lerp_settings", "head_setting", "evaluate_settings", "SweepResult", "SetResult"]

StateDict = Mapping[str, torch.Tensor]
_HEAD_KEYS = ("head.weight", "head.bias")


@dataclass
class WeightSetting:
    """One model to score: a function that writes its weights into the working model.

    Attributes:
        label: unique name in the sweep (``"wiseft α=0.5"``).
        method: results-row method (``wiseft``, ``zeroshot``, ``finetuned``, ``fisher`` …).
        alpha: the mixing coefficient, or ``None``.
        apply: writes the setting's weights into the working :class:`ImageClassifier` in place.
        mode: ``e2e`` or ``lc`` for the results rows.
        extra: recorded in the rows' ``extra``.
        lerp: ``(θ_0, θ_1)`` when the setting is θ_α (set by :func:`lerp_settings`); lets the engine move the
            endpoints to the device once and use linearity when only the head differs. With ``alpha=None`` the
            setting is θ_1 itself (:func:`head_setting`).
    """

    label: str
    method: str
    alpha: float | None
    apply: Callable[[ImageClassifier], Any]
    mode: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    lerp: tuple[StateDict, StateDict] | None = None


def lerp_settings(theta0: StateDict, theta1: StateDict, alphas: Sequence[float], *, method: str = "wiseft",
                  mode: str | None = None, endpoint_methods: tuple[str, str] | None = None,
                  check: bool = True) -> list[WeightSetting]:
    """WiSE-FT settings θ_α = (1−α)·θ_0 + α·θ_1, labelled ``"<method> α=<alpha>"``.

    Args:
        theta0: zero-shot state dict.
        theta1: fine-tuned state dict.
        alphas: the α grid.
        method: row method of the interpolated settings.
        mode: ``e2e`` or ``lc``.
        endpoint_methods: if given, α = 0 and α = 1 are recorded under these methods instead
            (e.g. ``("zeroshot", "finetuned")``).
        check: run :func:`~wiseft.interpolation.check_compatible` once (keys, shapes, dtypes, NaN).
    """
    if check:
        check_compatible(theta0, theta1)
    out = []
    for a in alphas:
        a = float(a)
        m = method
        if endpoint_methods is not None and a in (0.0, 1.0):
            m = endpoint_methods[int(a)]
        out.append(WeightSetting(label=f"{method} α={a:g}", method=m, alpha=a, mode=mode, lerp=(theta0, theta1),
                                 apply=partial(_lerp_apply, theta0, theta1, a)))
    return out


def _lerp_apply(theta0: StateDict, theta1: StateDict, alpha: float, model: ImageClassifier) -> None:
    lerp_into_(model, theta0, theta1, alpha)


def head_setting(theta0: StateDict, weight: torch.Tensor, bias: torch.Tensor, *, label: str, method: str,
                 mode: str | None = "lc", extra: dict[str, Any] | None = None) -> WeightSetting:
    """θ_0's encoder with another linear head (a linear classifier, a baseline's head), rows without α.

    Scored as the θ_1 end of a head-only pair, so every such setting built on the same ``theta0`` object shares
    one encoder pass per chunk; θ_1 reuses θ_0's encoder tensors, so only the head is held in addition.
    """
    theta1 = {**theta0, "head.weight": weight, "head.bias": bias}
    return WeightSetting(label=label, method=method, alpha=None, mode=mode, extra=dict(extra or {}),
                         lerp=(theta0, theta1), apply=partial(_lerp_apply, theta0, theta1, 1.0))


def _group(s: WeightSetting) -> tuple[int, int] | None:
    """The θ_α group of a setting: the identity of its endpoint state dicts (each setting has its own tuple)."""
    return None if s.lerp is None else (id(s.lerp[0]), id(s.lerp[1]))


def _mix(setting: WeightSetting) -> float:
    """The α of a θ_α setting; a lerp setting without α is θ_1 itself."""
    return float(setting.alpha) if setting.alpha is not None else 1.0


# ------------------------------------------------------------------------------------------------ results
@dataclass
class SetResult:
    """Predictions and metrics of every setting on one evaluation set."""

    name: str
    role: str
    n: int
    labels: np.ndarray
    preds: dict[str, np.ndarray]
    metrics: dict[str, dict[str, float]]
    protocol: dict[str, Any]
    logits: dict[str, torch.Tensor] = field(default_factory=dict)
    #: L2-normalised image features ``[n, D]`` of the settings named in ``keep_features_for`` (for CKA).
    features: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class SweepResult:
    """What :func:`evaluate_settings` returns: per setting label and evaluation set, predictions and metrics."""

    settings: list[WeightSetting | OutputSetting]
    sets: dict[str, SetResult]

    def value(self, label: str, dataset: str, metric: str | None = None) -> float:
        """One metric (the set's primary metric by default) of one setting on one set."""
        metrics = self.sets[dataset].metrics[label]
        return metrics[metric] if metric is not None else next(iter(metrics.values()))

    def to_rows(self, row_factory: Any, mode: str | None = None, extra: Mapping[str, Any] | None = None
                ) -> list[ResultRow]:
        """Results rows, one per (setting, set, metric).

        Args:
            row_factory: a :class:`~wiseft.run.RunContext` (its ``row``) or a callable ``(**fields) -> ResultRow``
                that fills the bookkeeping columns (run id, profile, model, commit …).
            mode: ``e2e``/``lc`` for settings that do not name one.
            extra: merged into every row's ``extra``.
        """
        make = getattr(row_factory, "row", row_factory)
        rows = []
        for setting in self.settings:
            for res in self.sets.values():
                for metric, value in res.metrics[setting.label].items():
                    rows.append(make(method=setting.method, mode=setting.mode or mode, alpha=setting.alpha,
                                     dataset=res.name, role=res.role, metric=metric, value=float(value), n=res.n,
                                     extra={**(extra or {}), **setting.extra, "setting": setting.label,
                                            "protocol": res.protocol}))
        return rows

    def to_frame(self):
        """A tidy DataFrame: setting, method, alpha, dataset, role, metric, value, n."""
        import pandas as pd

        return pd.DataFrame([dict(setting=s.label, method=s.method, alpha=s.alpha, dataset=r.name, role=r.role,
                                  metric=m, value=v, n=r.n)
                             for s in self.settings for r in self.sets.values()
                             for m, v in r.metrics[s.label].items()])


# ------------------------------------------------------------------------------------------------ engine
def evaluate_settings(model: ImageClassifier, settings: Sequence[WeightSetting | OutputSetting],
                      eval_sets: Sequence[EvalSet], *, device: str | torch.device = "cpu", batch_size: int = 256,
                      num_workers: int = 0, precision: str = "fp32", chunk_images: int | None = 2048,
                      keep_logits_for: Iterable[str] = (), max_images: int | None = None,
                      linear: bool | str = "auto", keep_features_for: Iterable[str] = (),
                      memory_gb: float | None = None, decode: str = "cpu", channels_last: bool = False
                      ) -> SweepResult:
    """Score every setting on every evaluation set, reading each image once.

    Args:
        model: the working classifier; settings write their weights into it (it ends with the last one's).
        settings: :class:`WeightSetting` s, then any :class:`~wiseft.ensembles.OutputSetting` s whose sources
            are weight settings of the same call.
        eval_sets: the sets (each with its protocol: logit projection and metrics).
        device: where to run (``"auto"`` is resolved here).
        batch_size: images per forward pass.
        num_workers: DataLoader workers.
        precision: ``fp32``, ``amp_bf16`` or ``amp_fp16`` (autocast).
        chunk_images: at most this many images per chunk (rounded up to whole batches); ``None``: no cap.
        memory_gb: bound on a chunk's bytes (``uint8`` images where the transform allows, else float32), which
            sets the chunk's size whatever the image size (:mod:`wiseft.evalcache`); ``None``: ``chunk_images``.
        decode: ``cpu`` (loader workers) or ``device`` (``torchvision.io.decode_jpeg`` on ``device``).
        channels_last: feed the model ``channels_last`` tensors.
        keep_logits_for: setting labels whose projected logits are returned (for analyses).
        keep_features_for: weight-setting labels whose L2-normalised image features (what the head sees) are
            returned in ``sets[name].features`` (for CKA); computed in the same forward pass as the logits.
        max_images: evaluate only the first images of each set (quick looks).
        linear: ``"auto"`` uses the features-once shortcut for θ_α settings whose endpoints differ only in the
            head; ``False`` never; ``True`` requires it.

    Returns:
        A :class:`SweepResult`.
    """
    dev = resolve_device(device)
    weight_settings = [s for s in settings if isinstance(s, WeightSetting)]
    output_settings = [s for s in settings if isinstance(s, OutputSetting)]
    _validate_settings(weight_settings, output_settings)
    keep = set(keep_logits_for)
    keep_feats = set(keep_features_for)
    unknown = keep_feats - {s.label for s in weight_settings}
    if unknown:
        raise WiseftError(f"keep_features_for names {sorted(unknown)}, which are not weight settings of this call "
                          f"(features exist only for models that run their encoder)")
    sources = {src for s in output_settings for src in s.sources}
    model = model.to(dev).eval()
    plans = _plan_linear(weight_settings, linear, model, dev)

    results: dict[str, SetResult] = {}
    for eval_set in eval_sets:
        results[eval_set.name] = _evaluate_set(
            model, weight_settings, output_settings, eval_set, plans, dev=dev, batch_size=batch_size,
            num_workers=num_workers, precision=precision, chunk_images=chunk_images, keep=keep, sources=sources,
            max_images=max_images, keep_feats=keep_feats, memory_gb=memory_gb, decode=decode,
            channels_last=channels_last)
    return SweepResult(settings=list(weight_settings) + list(output_settings), sets=results)


def _validate_settings(weights: list[WeightSetting], outputs: list[OutputSetting]) -> None:
    labels = [s.label for s in weights] + [s.label for s in outputs]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise WiseftError(f"setting labels must be unique; repeated: {', '.join(dupes)}")
    weight_labels = {s.label for s in weights}
    for s in outputs:
        for src in s.sources:
            if src not in weight_labels:
                raise WiseftError(f"output setting {s.label!r}: source {src!r} is not a weight setting of this "
                                  f"sweep; known: {', '.join(sorted(weight_labels))}")


@dataclass
class _LinearPlan:
    """Endpoints of a head-only θ_α group, on the device, plus the two heads."""

    theta0: dict[str, torch.Tensor]
    theta1: dict[str, torch.Tensor]
    head0: ClassificationHead | None = None
    head1: ClassificationHead | None = None
    #: head-only groups with the same key (the id of their θ_0 object) share one encoder pass per chunk
    encoder_key: int | None = None


def _plan_linear(settings: list[WeightSetting], linear: bool | str, model: ImageClassifier,
                 dev: torch.device) -> dict[tuple[int, int], _LinearPlan]:
    """Move each θ_α group's endpoints to the device once; build heads for head-only groups."""
    plans: dict[tuple[int, int], _LinearPlan] = {}
    on_dev: dict[int, torch.Tensor] = {}  # one device copy per source tensor, whichever groups share it

    def to_dev(state: StateDict) -> dict[str, torch.Tensor]:
        out = {}
        for k, v in state.items():
            if id(v) not in on_dev:
                on_dev[id(v)] = v.to(dev)
            out[k] = on_dev[id(v)]
        return out

    for s in settings:
        if s.lerp is None or _group(s) in plans:
            continue
        t0, t1 = to_dev(s.lerp[0]), to_dev(s.lerp[1])
        plan = _LinearPlan(t0, t1)
        head_only = linear is not False and set(differing_keys(t0, t1)) <= set(_HEAD_KEYS)
        if linear is True and not head_only:
            raise WiseftError(f"linear=True but θ0 and θ1 of {s.label!r} differ outside the head; use "
                              f"linear='auto' or False for end-to-end sweeps")
        if head_only:
            normalize = getattr(model.head, "normalize", True)
            plan.head0 = ClassificationHead(t0["head.weight"], t0["head.bias"], normalize=normalize).eval()
            plan.head1 = ClassificationHead(t1["head.weight"], t1["head.bias"], normalize=normalize).eval()
            plan.encoder_key = id(s.lerp[0])
            log.info("θ0 and θ1 differ only in the head: features once per chunk, logits mixed linearly")
        plans[_group(s)] = plan
    return plans


def _shard(n: int) -> tuple[int, int]:
    """This rank's contiguous ``[start, stop)`` of ``n`` items (everything when not distributed)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return 0, n
    rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    per = math.ceil(n / world)
    return min(n, rank * per), min(n, (rank + 1) * per)


def _evaluate_set(model, weight_settings, output_settings, eval_set: EvalSet, plans, *, dev, batch_size,
                  num_workers, precision, chunk_images, keep, sources, max_images, keep_feats=frozenset(),
                  memory_gb=None, decode="cpu", channels_last=False) -> SetResult:
    n_total = len(eval_set.dataset) if max_images is None else min(max_images, len(eval_set.dataset))
    start, stop = _shard(n_total)
    dataset, feed, collate = prepare(torch.utils.data.Subset(eval_set.dataset, range(start, stop)), dev,
                                     decode=decode, channels_last=channels_last)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                                         pin_memory=dev.type == "cuda", collate_fn=collate)
    protocol = eval_set.protocol
    preds: dict[str, list[np.ndarray]] = {s.label: [] for s in [*weight_settings, *output_settings]}
    kept: dict[str, list[torch.Tensor]] = {label: [] for label in preds if label in keep}
    feats_kept: dict[str, list[torch.Tensor]] = {label: [] for label in preds if label in keep_feats}
    labels: list[np.ndarray] = []
    offset = start

    def consume(label: str, logits: torch.Tensor) -> None:
        projected = protocol.project_logits(logits)
        preds[label].append(projected.argmax(dim=-1).cpu().numpy())
        if label in kept:
            kept[label].append(projected.detach().float().cpu())

    with torch.no_grad():
        for chunk in progress(staged_chunks(loader, feed, batch_size, memory_gb, chunk_images),
                              desc=f"eval {eval_set.name}"):
            images = [b[0] for b in chunk]  # staged (uint8 where possible); feed() makes each forward's input
            labels.extend(np.asarray(b[1]).reshape(-1) for b in chunk)
            count = sum(len(x) for x in images)
            indices = torch.arange(offset, offset + count)
            offset += count
            raw: dict[str, torch.Tensor] = {}
            endpoints: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]] = {}
            encoded: dict[int, list[torch.Tensor]] = {}  # encoder features of this chunk, by θ_0 object
            for s in weight_settings:
                plan = plans.get(_group(s)) if s.lerp is not None else None
                if plan is not None and plan.head0 is not None:
                    if _group(s) not in endpoints:  # endpoint logits once per chunk for the whole group
                        if plan.encoder_key not in encoded:
                            encoded[plan.encoder_key] = _encode(model, plan, map(feed, images), precision, dev)
                        l0, l1, feats = _endpoint_logits(plan, encoded[plan.encoder_key], precision, dev)
                        endpoints[_group(s)] = torch.cat(l0), torch.cat(l1), feats
                    l0, l1, feats = endpoints[_group(s)]
                    logits = torch.lerp(l0, l1, _mix(s))  # one op per α and chunk
                else:
                    if plan is not None:
                        lerp_into_(model, plan.theta0, plan.theta1, _mix(s))
                    else:
                        s.apply(model)
                    if s.label in feats_kept:
                        feats, parts = [], []
                        for x in images:  # head(encode(x)) is forward(x) bit for bit
                            with autocast(precision, dev):
                                f = model.encode(feed(x))
                                parts.append(model.head(f).float())
                            feats.append(f)
                        logits = torch.cat(parts)
                    else:
                        logits = torch.cat([_forward(model, feed(x), precision, dev) for x in images])
                if s.label in feats_kept:
                    feats_kept[s.label].append(torch.cat([F.normalize(f.float(), dim=-1) for f in feats]).cpu())
                if s.label in sources:
                    raw[s.label] = logits
                consume(s.label, logits)
            for s in output_settings:
                consume(s.label, s.combine(raw[s.sources[0]], raw[s.sources[1]], indices, n_total))
            del chunk, images, encoded  # before the next chunk is read: one chunk resident, not two

    local = {"labels": _cat(labels), "preds": {k: _cat(v) for k, v in preds.items()},
             "logits": {k: torch.cat(v) if v else torch.empty(0) for k, v in kept.items()},
             "features": {k: torch.cat(v) if v else torch.empty(0) for k, v in feats_kept.items()}}
    gathered = _gather(local)
    all_labels = gathered["labels"]
    metadata = None
    if eval_set.metadata is not None:
        metadata = {k: np.asarray(v)[:n_total] for k, v in eval_set.metadata.items()}
    metrics = {label: protocol.metrics(p, all_labels, metadata) for label, p in gathered["preds"].items()}
    return SetResult(name=eval_set.name, role=eval_set.role, n=int(all_labels.shape[0]), labels=all_labels,
                     preds=gathered["preds"], metrics=metrics, protocol=protocol.describe(),
                     logits=gathered["logits"], features=gathered["features"])


def _forward(model: ImageClassifier, images: torch.Tensor, precision: str, dev: torch.device) -> torch.Tensor:
    with autocast(precision, dev):
        return model(images).float()


def _encode(model: ImageClassifier, plan: _LinearPlan, images: Iterable[torch.Tensor], precision: str,
            dev: torch.device) -> list[torch.Tensor]:
    """Features of θ_0's encoder per batch (θ_1's is the same in a head-only group)."""
    lerp_into_(model, plan.theta0, plan.theta1, 0.0)
    out = []
    for x in images:
        with autocast(precision, dev):
            out.append(model.encode(x))
    return out


def _endpoint_logits(plan: _LinearPlan, features: list[torch.Tensor], precision: str, dev: torch.device
                     ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    """Logits of θ_0 and θ_1 per batch from the shared encoder features, and the features."""
    l0, l1 = [], []
    for feats in features:
        with autocast(precision, dev):
            l0.append(plan.head0(feats).float())
            l1.append(plan.head1(feats).float())
    return l0, l1, features


def _cat(arrays: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)


def _gather(local: dict[str, Any]) -> dict[str, Any]:
    """Concatenate every rank's shard in rank order (a no-op when not distributed)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return local
    parts: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(parts, local)
    return {
        "labels": np.concatenate([p["labels"] for p in parts]),
        "preds": {k: np.concatenate([p["preds"][k] for p in parts]) for k in local["preds"]},
        "logits": {k: torch.cat([p["logits"][k] for p in parts]) for k in local["logits"]},
        "features": {k: torch.cat([p["features"][k] for p in parts]) for k in local["features"]},
    }
