"""How logits are scored on each evaluation set, and the small registry the dataset YAML names them from.

=================  ===========================================================  ==================
``type``           projection of the model's logits                              metrics (primary first)
=================  ===========================================================  ==================
``identity``       none                                                          ``top1``
``class_subset``   keep the columns ``indices`` (ImageNet-A/R: 200 of 1000)      ``top1``
``maxpool``        class ``k`` = max over the columns ``groups[k]`` (ObjectNet)  ``top1``
``macro_f1``       none                                                          ``macro_f1``, ``top1``
``wilds``          none; metrics from the ``wilds`` dataset's own ``eval``       as named in ``metrics``
``video_merge``    a video set's classes, max-merged (class-subsampled ImageNet)  ``top1``
``video_pmk``      the same merge on the video frames                            ``pm0``, ``pm10``
=================  ===========================================================  ==================
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from ..errors import DatasetError
from ..io import stable_hash
from .base import Protocol, top1

__all__ = ["SubsetProtocol", "MaxPoolProtocol", "MacroF1Protocol", "WildsProtocol", "macro_f1", "build_protocol",
           "PROTOCOLS"]


def macro_f1(preds: np.ndarray, labels: np.ndarray) -> float:
    """Macro-averaged F1 over the classes present in ``labels`` (what WILDS reports: sklearn ``f1_score``
    with ``average='macro', labels=unique(y_true)``); 0.0 for an empty set."""
    preds, labels = np.asarray(preds).ravel(), np.asarray(labels).ravel()
    if labels.size == 0:
        return 0.0
    scores = []
    for c in np.unique(labels):
        tp = np.sum((preds == c) & (labels == c))
        fp = np.sum((preds == c) & (labels != c))
        fn = np.sum((preds != c) & (labels == c))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


class SubsetProtocol(Protocol):
    """Keep the model columns ``indices`` (in order): the task's class ``k`` is model class ``indices[k]``."""

    def __init__(self, indices: list[int], name: str = "") -> None:
        self.indices = [int(i) for i in indices]
        self.name = name
        self._index = torch.as_tensor(self.indices, dtype=torch.long)

    def project_logits(self, logits: torch.Tensor) -> torch.Tensor:
        _check_width(logits, max(self.indices) + 1, self.name)
        return logits.index_select(1, self._index.to(logits.device))

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "n_classes": len(self.indices), "columns_hash": stable_hash(self.indices)}


class MaxPoolProtocol(Protocol):
    """Class ``k``'s logit is the maximum of the model columns ``groups[k]`` (ObjectNet: 113 ← 125 of 1000)."""

    def __init__(self, groups: list[list[int]], name: str = "") -> None:
        if not groups or any(len(g) == 0 for g in groups):
            raise DatasetError(f"{name or 'maxpool protocol'}: every class needs at least one model column")
        self.groups = [[int(i) for i in g] for g in groups]
        self.name = name
        width = max(len(g) for g in self.groups)
        # pad each group with its own first column: repeating a column leaves the maximum unchanged
        self._index = torch.as_tensor([g + [g[0]] * (width - len(g)) for g in self.groups], dtype=torch.long)

    def project_logits(self, logits: torch.Tensor) -> torch.Tensor:
        _check_width(logits, int(self._index.max()) + 1, self.name)
        idx = self._index.to(logits.device)
        return logits[:, idx].amax(dim=2)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "n_classes": len(self.groups), "merge": "max",
                "groups_hash": stable_hash(self.groups)}


class MacroF1Protocol(Protocol):
    """Identity projection; macro-F1 (primary) and top-1."""

    primary_metric = "macro_f1"

    def metrics(self, preds: np.ndarray, labels: np.ndarray, metadata: dict[str, np.ndarray] | None = None
                ) -> dict[str, float]:
        return {"macro_f1": macro_f1(preds, labels), "top1": top1(preds, labels)}


class WildsProtocol(Protocol):
    """Identity projection; metrics from ``wilds_dataset.eval(y_pred, y_true, metadata)``.

    Args:
        wilds_dataset: the ``WILDSDataset`` the images come from (its groupers define regions and years).
        metric_keys: our metric name → the key of wilds' results, primary first
            (``{"worst_region_acc": "acc_worst_region", "top1": "acc_avg"}``).
    """

    def __init__(self, wilds_dataset: Any, metric_keys: dict[str, str], name: str = "") -> None:
        if not metric_keys:
            raise DatasetError(f"{name}: the wilds protocol needs 'metrics' (our name: wilds key)")
        self.wilds_dataset = wilds_dataset
        self.metric_keys = dict(metric_keys)
        self.primary_metric = next(iter(self.metric_keys))
        self.name = name

    def metrics(self, preds: np.ndarray, labels: np.ndarray, metadata: dict[str, np.ndarray] | None = None
                ) -> dict[str, float]:
        if not metadata or "wilds" not in metadata:
            raise DatasetError(f"{self.name}: WILDS metrics need the per-image metadata (EvalSet.metadata['wilds'], "
                               f"rows aligned with the predictions)")
        meta = np.asarray(metadata["wilds"])
        if len(meta) != len(labels):
            raise DatasetError(f"{self.name}: {len(meta)} metadata rows for {len(labels)} predictions")
        from .wilds_support import wilds_eval

        as_long = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.long)  # noqa: E731
        results = wilds_eval(self.wilds_dataset, as_long(preds), as_long(labels), as_long(meta))
        missing = [k for k in self.metric_keys.values() if k not in results]
        if missing:
            raise DatasetError(f"{self.name}: wilds eval returned no {', '.join(missing)}; it returned "
                               f"{', '.join(sorted(results))}")
        return {ours: float(results[theirs]) for ours, theirs in self.metric_keys.items()}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "wilds_keys": self.metric_keys}


def _check_width(logits: torch.Tensor, needed: int, name: str) -> None:
    if logits.ndim != 2 or logits.shape[1] < needed:
        raise DatasetError(f"{name or 'protocol'}: expects logits over the model's classes with at least {needed} "
                           f"columns (1000-way ImageNet logits), got shape {tuple(logits.shape)}")


# ------------------------------------------------------------------------------------------- registry
def _identity(spec: dict, resolve: Callable[[Any, str], Any], ctx: dict) -> Protocol:
    return Protocol()


def _class_subset(spec: dict, resolve: Callable[[Any, str], Any], ctx: dict) -> Protocol:
    indices = resolve(spec["indices"], "protocol indices")
    return SubsetProtocol([int(i) for i in indices], name=ctx["name"])


def _maxpool(spec: dict, resolve: Callable[[Any, str], Any], ctx: dict) -> Protocol:
    return MaxPoolProtocol(resolve(spec["groups"], "protocol groups"), name=ctx["name"])


def _macro_f1(spec: dict, resolve: Callable[[Any, str], Any], ctx: dict) -> Protocol:
    return MacroF1Protocol()


def _wilds(spec: dict, resolve: Callable[[Any, str], Any], ctx: dict) -> Protocol:
    if ctx.get("wilds_dataset") is None:
        raise DatasetError(f"{ctx['name']}: the wilds protocol needs a split loaded with loader: wilds")
    return WildsProtocol(ctx["wilds_dataset"], spec.get("metrics", {}), name=ctx["name"])


def _video_merge(spec: dict, resolve: Callable[[Any, str], Any], ctx: dict) -> Protocol:
    from .video import MergeProtocol

    meta = resolve(spec["meta"], "video metadata")
    return MergeProtocol([list(g) for g in meta.groups], list(meta.never), name=ctx["name"])


def _video_pmk(spec: dict, resolve: Callable[[Any, str], Any], ctx: dict) -> Protocol:
    from .video import PmkProtocol

    return PmkProtocol(resolve(spec["meta"], "video metadata"), name=ctx["name"])


#: Protocol type → builder(spec, resolve(source, what), context).
PROTOCOLS: dict[str, Callable[[dict, Callable[[Any, str], Any], dict], Protocol]] = {
    "identity": _identity, "class_subset": _class_subset, "maxpool": _maxpool, "macro_f1": _macro_f1,
    "wilds": _wilds, "video_merge": _video_merge, "video_pmk": _video_pmk,
}


def build_protocol(spec: dict, resolve: Callable[[Any, str], Any], ctx: dict) -> Protocol:
    """Build the protocol a registry entry names."""
    kind = spec.get("type")
    if kind not in PROTOCOLS:
        raise DatasetError(f"dataset {ctx['name']!r}: unknown protocol {kind!r}; known: {', '.join(PROTOCOLS)}")
    try:
        return PROTOCOLS[kind](spec, resolve, ctx)
    except KeyError as e:
        raise DatasetError(f"dataset {ctx['name']!r}: protocol {kind!r} needs the key {e}") from e
