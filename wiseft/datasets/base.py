"""The types shared by datasets and the evaluation engine: :class:`EvalSet` and :class:`Protocol`.

A protocol is how a model's logits are scored on one evaluation set: which columns of the model's logits
belong to the set's classes (ImageNet-A/R keep 200 of 1000), how several model classes merge into one
(ObjectNet max-pools), and which metrics are reported (top-1, macro-F1, worst-region accuracy, pm-k).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

__all__ = ["Protocol", "EvalSet", "top1"]


def top1(preds: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of predictions equal to the labels (0.0 for an empty set)."""
    preds, labels = np.asarray(preds), np.asarray(labels)
    return float((preds == labels).mean()) if labels.size else 0.0


class Protocol:
    """Identity projection and top-1 accuracy; subclasses override what their dataset needs.

    Attributes:
        primary_metric: the metric a figure plots for this set; the first key :meth:`metrics` returns.
    """

    primary_metric = "top1"

    def project_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """Map model logits ``[N, C_model]`` to the set's classes ``[N, C_task]``."""
        return logits

    def metrics(self, preds: np.ndarray, labels: np.ndarray, metadata: dict[str, np.ndarray] | None = None
                ) -> dict[str, float]:
        """Metrics from predicted and true task labels, each a fraction in [0, 1], primary metric first."""
        return {"top1": top1(preds, labels)}

    def describe(self) -> dict[str, Any]:
        """A JSON-able description recorded with results, so a number says how it was computed."""
        return {"type": type(self).__name__, "primary_metric": self.primary_metric}


@dataclass
class EvalSet:
    """An evaluation set ready for the engine.

    Attributes:
        name: registry name (``"imagenet-a"``).
        dataset: ``__getitem__(i) -> (image_tensor, label)``, labels index into ``classnames``.
        classnames: the task's classes.
        protocol: how logits are scored.
        role: ``"reference"``, ``"shift"`` or ``"extra"``.
        metadata: per-index arrays the metrics need (WILDS regions, video frame groups, …).
        skipped: unreadable image files left out (``skip_bad_images``); results record ``n_skipped``.
        preprocessing: protocol choices applied to the images before the model's transform (``border_crop`` of
            a set whose registry entry or profile sets one), recorded in every results row's ``extra``.
    """

    name: str
    dataset: torch.utils.data.Dataset
    classnames: list[str]
    protocol: Protocol
    role: str = "shift"
    metadata: dict[str, np.ndarray] | None = None
    skipped: list[str] = field(default_factory=list)
    preprocessing: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def n_skipped(self) -> int:
        """How many unreadable images were left out of this set."""
        return len(self.skipped)
