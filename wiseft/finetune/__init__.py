"""Fine-tuning: the paper's end-to-end (E2E) and linear-classifier (LC) protocols.

* :func:`finetune_e2e`: every weight, AdamW + warm-up/cosine, resumable, DDP under torchrun.
* :func:`search_linear` / :func:`train_linear`: a linear head on frozen, cached features (:func:`cached_features`),
  with the paper's random hyperparameter search scored on held-out training data.
* :func:`kshot_indices`: seeded k-images-per-class subsets (Fig. 17).
"""

from __future__ import annotations

from .augment import Preprocess, eval_transform, preprocess_of, train_transform
from .e2e import E2EResult, build_optimizer, finetune_e2e
from .features import FeatureSet, cached_features, compute_features, dataset_fingerprint, module_fingerprint
from .kshot import dataset_labels, kshot_indices
from .linear import LCHparams, LinearHead, linear_accuracy, train_linear
from .schedule import WarmupCosine, warmup_cosine_lr
from .search import LCResult, heldout_split, sample_trials, search_linear

__all__ = [
    "finetune_e2e", "E2EResult", "build_optimizer", "WarmupCosine", "warmup_cosine_lr",
    "Preprocess", "preprocess_of", "train_transform", "eval_transform",
    "FeatureSet", "cached_features", "compute_features", "dataset_fingerprint", "module_fingerprint",
    "LCHparams", "LinearHead", "train_linear", "linear_accuracy",
    "LCResult", "sample_trials", "heldout_split", "search_linear",
    "kshot_indices", "dataset_labels",
]
