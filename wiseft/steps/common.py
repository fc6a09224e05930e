"""What every pipeline step needs from a profile: data root, class names, templates, evaluation sets, endpoints.

The steps (zero-shot, fine-tuning, interpolation, baselines) are called by the notebooks and by the CLI alike;
this module turns a profile into the plain arguments of the library functions, in one place.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch

from ..checkpoint import checkpoint_paths, load_classifier
from ..datasets import EvalSet, create_eval_set, create_train_set, default_templates, get_classnames, get_dataset_cfg
from ..errors import CheckpointError, WiseftError
from ..evaluation import SweepResult, WeightSetting, evaluate_settings
from ..models import ImageClassifier, eval_transform
from ..profile import Profile
from ..run import RunContext

log = logging.getLogger(__name__)

__all__ = [
    "data_root",
    "reference_classnames",
    "template_set",
    "classifier_transform",
    "eval_sets",
    "heldout_set",
    "preprocessing_notes",
    "evaluate",
    "load_endpoint",
    "load_for_scoring",
    "has_checkpoint",
    "checkpoint_sha256",
    "write_weights",
    "append_rows",
    "summary_table",
]


def data_root(profile: Profile) -> Path | None:
    """The profile's data root (``None``: the datasets' default, ``$WISEFT_DATA`` or ``<cache>/data``)."""
    return Path(profile.data.root).expanduser() if profile.data.root else None


def reference_classnames(profile: Profile) -> list[str]:
    """Class names of the reference dataset, in label order (the classifier's output order)."""
    return list(get_classnames(profile.data.reference, data_root(profile)))


def template_set(profile: Profile) -> str:
    """The zero-shot template set: the profile's ``templates``, else the reference dataset's own."""
    return profile.templates or default_templates(profile.data.reference)


def classifier_transform(classifier: ImageClassifier) -> Callable:
    """open_clip's evaluation preprocessing for a classifier (from its recorded size and normalisation)."""
    info = classifier.info
    if info is None:
        raise WiseftError("the classifier carries no preprocessing info; build it with wiseft.zeroshot or load a "
                          "wiseft checkpoint")
    return eval_transform(info.image_size, info.mean, info.std)


def eval_sets(profile: Profile, transform: Callable, *, heldout: bool = False) -> list[EvalSet]:
    """The reference set (role ``reference``), every shift and every extra set of the profile.

    Args:
        profile: the profile.
        transform: the model's evaluation transform.
        heldout: also add the reference's held-out split (role ``heldout``), used to choose α without shift data.
    """
    root, cap, skip = data_root(profile), profile.eval.max_images, profile.data.skip_bad_images
    crop = profile.data.border_crop  # per dataset, over the registry's border_crop (ObjectNet: docs/protocols.md)
    sets = [create_eval_set(profile.data.reference, root, transform, max_images=cap, skip_bad_images=skip,
                            role="reference", border_crop=crop.get(profile.data.reference))]
    sets += [create_eval_set(name, root, transform, max_images=cap, skip_bad_images=skip, role="shift",
                             border_crop=crop.get(name)) for name in profile.data.shifts]
    sets += [create_eval_set(name, root, transform, max_images=cap, skip_bad_images=skip, role="extra",
                             border_crop=crop.get(name)) for name in profile.data.extra]
    if heldout:
        held = heldout_set(profile, transform)
        if held is not None:
            sets.append(held)
    for s in sets:
        if s.skipped:
            log.warning("%s: %d unreadable image(s) skipped (recorded in the results rows)", s.name, len(s.skipped))
    return sets


def heldout_set(profile: Profile, transform: Callable, max_images: int = 10000) -> EvalSet | None:
    """The reference distribution's held-out split as an :class:`EvalSet` (role ``heldout``), or ``None``.

    Uses the registry's ``heldout_split`` when the dataset has one; otherwise the seeded fraction
    ``finetune.lc.heldout_fraction`` of the training split (at most ``max_images`` images, and at most
    ``eval.max_images``), the same images the linear classifier's search holds out.
    """
    name, root = profile.data.reference, data_root(profile)
    cfg = get_dataset_cfg(name)
    if cfg.get("heldout_split"):
        held = create_eval_set(name, root, transform, split=cfg["heldout_split"], max_images=profile.eval.max_images,
                               skip_bad_images=profile.data.skip_bad_images, role="heldout",
                               border_crop=profile.data.border_crop.get(name))
        held.name = f"{name}:heldout"
        return held
    if not cfg.get("train_split"):
        return None
    from ..finetune.search import heldout_split

    train = create_eval_set(name, root, transform, split=cfg["train_split"], role="heldout",
                            skip_bad_images=profile.data.skip_bad_images)
    labels = getattr(train.dataset, "labels", None)  # not a getattr default: that would decode every image first
    if labels is None:
        labels = [train.dataset[i][1] for i in range(len(train))]
    _, held_idx = heldout_split(np.asarray(labels), profile.finetune.lc.heldout_fraction, profile.seed)
    cap = max_images if profile.eval.max_images is None else min(max_images, profile.eval.max_images)
    held_idx = np.sort(held_idx)[:cap]
    train.dataset = torch.utils.data.Subset(train.dataset, held_idx.tolist())
    if train.metadata is not None:
        train.metadata = {k: np.asarray(v)[held_idx] for k, v in train.metadata.items()}
    train.name = f"{name}:heldout"
    return train


def preprocessing_notes(profile: Profile) -> list[str]:
    """One line per evaluated dataset with a border crop setting (registry ``border_crop`` or the profile's
    ``data.border_crop``), saying what the run does: ObjectNet uncropped as the paper's numbers, or cropped."""
    notes = []
    for name in dict.fromkeys(profile.datasets):
        pixels = profile.data.border_crop.get(name, get_dataset_cfg(name).get("border_crop"))
        if pixels is not None:
            what = "uncropped images" if pixels == 0 else f"{pixels} px cut from every border"
            notes.append(f"{name}: {what} (data.border_crop.{name}={pixels}; docs/protocols.md)")
    return notes


def evaluate(ctx: RunContext, model: ImageClassifier, settings: list, sets: list[EvalSet], **kwargs: Any
             ) -> SweepResult:
    """Run the evaluation engine with the profile's evaluation settings (batch size, workers, precision …).

    Under torchrun every process evaluates its shard of each set and the predictions are gathered, so all ranks
    return the same metrics; only rank 0 writes them (:func:`append_rows`).
    """
    from ..finetune.distributed import init_distributed

    e = ctx.profile.eval
    options = dict(device=init_distributed(ctx.device).device, batch_size=e.batch_size, num_workers=e.num_workers, precision=e.precision,
                   chunk_images=e.chunk_images, memory_gb=e.memory_gb, decode=e.decode,
                   channels_last=e.channels_last)
    options.update(kwargs)
    return evaluate_settings(model, settings, sets, **options)


def fixed_setting(method: str, mode: str | None = None, alpha: float | None = None,
                  extra: dict[str, Any] | None = None, label: str | None = None) -> WeightSetting:
    """A setting that scores the working model as it is (no weights written)."""
    return WeightSetting(label=label or method, method=method, alpha=alpha, mode=mode, extra=dict(extra or {}),
                         apply=lambda model: None)


def has_checkpoint(ctx: RunContext, stem: str) -> bool:
    """Whether ``checkpoints/<stem>.safetensors`` and its sidecar exist."""
    weights, sidecar = checkpoint_paths(ctx.checkpoint_path(stem))
    return weights.is_file() and sidecar.is_file()


def checkpoint_sha256(ctx: RunContext, stem: str) -> str | None:
    """The tensors' SHA-256 recorded in ``checkpoints/<stem>.json`` (``None`` when there is no checkpoint): a
    cheap identity of a model, for fingerprints of whatever was derived from it."""
    from ..checkpoint import read_sidecar

    return read_sidecar(ctx.checkpoint_path(stem))["tensors_sha256"] if has_checkpoint(ctx, stem) else None


def write_weights(state: dict[str, torch.Tensor], model: torch.nn.Module) -> None:
    """Copy ``state`` (all of a model's tensors, or a subset such as the head's) into ``model`` in place; the
    ``apply`` of a :class:`~wiseft.evaluation.WeightSetting` that scores a stored model."""
    own = model.state_dict()
    with torch.no_grad():
        for key, value in state.items():
            own[key].copy_(value)


#: Which step writes which checkpoint, for the error that says what to run first.
_PRODUCERS = {"zeroshot": "zeroshot", "finetuned_e2e": "finetune", "finetuned_lc": "finetune"}


def load_endpoint(ctx: RunContext, stem: str) -> tuple[ImageClassifier, dict[str, Any]]:
    """Load ``checkpoints/<stem>`` of the run on the CPU, or say which step writes it.

    Raises:
        WiseftError: naming the missing file and the command that produces it.
    """
    if not has_checkpoint(ctx, stem):
        step = _PRODUCERS.get(stem.split("_k")[0], "finetune")
        raise WiseftError(f"checkpoint {str(ctx.checkpoint_path(stem))}.safetensors does not exist; run the "
                          f"'{step}' step first (wiseft run --profile {ctx.profile.name} --only {step}, or its "
                          f"notebook)")
    return load_classifier(ctx.checkpoint_path(stem), device="cpu")


def load_for_scoring(ctx: RunContext, path: Path) -> tuple[ImageClassifier, dict[str, Any]]:
    """Load a checkpoint to score on the profile's evaluation sets, refusing what would score silently wrong.

    Raises:
        CheckpointError: its class names are not the reference dataset's (labels would index other classes).
        NumericsError: a weight is NaN or infinite.
    """
    from ..interpolation import check_finite

    model, meta = load_classifier(path, device="cpu")
    weights, sidecar = checkpoint_paths(path)
    check_finite(model.state_dict(), str(weights), use="scored")
    expected, names = reference_classnames(ctx.profile), list(meta["classnames"])
    if names != expected:
        first = next((i for i, (a, b) in enumerate(zip(names, expected)) if a != b), min(len(names), len(expected)))
        got = repr(names[first]) if first < len(names) else "nothing"
        want = repr(expected[first]) if first < len(expected) else "nothing"
        raise CheckpointError(f"{sidecar}: its {len(names)} class names are not those of the profile's reference "
                              f"dataset {ctx.profile.data.reference!r} ({len(expected)} classes; label {first} is "
                              f"{got} in the checkpoint, {want} in the dataset); score it with the profile it was "
                              "made with (--profile)")
    return model, meta


def append_rows(ctx: RunContext, result: SweepResult, sets: list[EvalSet] = (), *, mode: str | None = None,
                extra: dict[str, Any] | None = None) -> pd.DataFrame:
    """Append a sweep's rows to the run's results store and return them as a DataFrame.

    Rows of a set whose unreadable images were skipped (``data.skip_bad_images``) record how many in
    ``extra.skipped_images``, so a number never hides that it was computed on fewer images; a set's
    ``preprocessing`` (ObjectNet's ``border_crop``) is recorded in ``extra`` too.
    """
    from ..finetune.distributed import is_main_process

    skipped = {s.name: len(s.skipped) for s in sets if getattr(s, "skipped", None)}
    preprocessing = {s.name: s.preprocessing for s in sets if getattr(s, "preprocessing", None)}
    rows = result.to_rows(ctx, mode=mode, extra=extra)
    for row in rows:
        if skipped.get(row.dataset):
            row.extra["skipped_images"] = skipped[row.dataset]
        row.extra.update(preprocessing.get(row.dataset, {}))  # e.g. ObjectNet's border_crop
    if is_main_process():
        ctx.results.append(rows)
    return pd.DataFrame([r.__dict__ for r in rows])


def _setting_order(frame: pd.DataFrame, index: str) -> Callable[[Any], tuple]:
    """The declared order of a summary table's rows: method (in :data:`wiseft.results.METHODS` order), mode, α,
    then the label with its numbers compared as numbers (``l2sp λ=0.01`` before ``l2sp λ=0.1`` and ``λ=1``)."""
    import math
    import re

    from ..results import METHODS

    def natural(label: Any) -> tuple:
        parts = re.split(r"(\d+(?:\.\d+)?(?:e-?\d+)?)", str(label))
        return tuple((0, float(p), "") if i % 2 else (1, 0.0, p) for i, p in enumerate(parts) if p)

    first = frame.drop_duplicates(subset=[index]).set_index(index)

    def key(label: Any) -> tuple:
        row = first.loc[label]
        method = row.get("method")
        alpha = row.get("alpha")
        alpha = -1.0 if alpha is None or (isinstance(alpha, float) and math.isnan(alpha)) else float(alpha)
        rank = METHODS.index(method) if method in METHODS else len(METHODS)
        return (rank, str(row.get("mode") or ""), alpha, natural(label))

    return key


def summary_table(frame: pd.DataFrame, index: str = "setting") -> pd.DataFrame:
    """Primary metric per setting (rows) and dataset (columns), in %, with the shift average and the mean of
    reference and shift average — the layout of the paper's tables. Rows come in a declared order (method, mode,
    α, label: :func:`_setting_order`) and columns in the evaluation's order of the datasets, never in the order
    the results file happens to hold its batches."""
    if frame.empty:
        return frame
    frame = frame.copy()
    if "setting" not in frame:
        frame["setting"] = frame["extra"].map(lambda e: e.get("setting") if isinstance(e, dict) else None)
    primary = frame.groupby("dataset", sort=False)["metric"].first()
    frame = frame[frame["metric"] == frame["dataset"].map(primary)]
    table = frame.pivot_table(index=index, columns="dataset", values="value", sort=False) * 100
    order = sorted(table.index, key=_setting_order(frame, index))
    # columns: the datasets in the evaluation's order, as the rows of the first setting (in that order) hold them
    by_setting = {label: list(dict.fromkeys(group["dataset"])) for label, group in frame.groupby(index, sort=False)}
    table = table.loc[order, list(dict.fromkeys(d for label in order for d in by_setting[label]))]
    roles = frame.groupby("dataset", sort=False)["role"].first()
    reference = [d for d in table.columns if roles[d] == "reference"]
    shifts = [d for d in table.columns if roles[d] == "shift"]
    table = table[reference + shifts + [d for d in table.columns if d not in reference + shifts]]
    if shifts:
        table["avg shifts"] = table[shifts].mean(axis=1)
        if reference:
            table["avg"] = (table[reference[0]] + table["avg shifts"]) / 2
    return table.round(1)
