"""Fine-tuning: the paper's end-to-end (E2E) and linear-classifier (LC) protocols.

* :func:`finetune_e2e`: every weight, AdamW + warm-up/cosine, resumable, DDP under torchrun.
* :func:`search_linear` / :func:`train_linear`: a linear head on frozen, cached features (:func:`cached_features`),
  with the paper's random hyperparameter search scored on held-out training data.
* :func:`kshot_indices`: seeded k-images-per-class subsets (Fig. 17).
* :class:`E2ECfg` / :class:`LCCfg` (:mod:`wiseft.finetune.config`): the engines' settings, which a profile composes.

The names below are imported on first use, so that a profile (which composes the configs) loads without torch.
"""

from __future__ import annotations

from .._lazy import lazy_exports

#: public name -> the submodule that defines it
_EXPORTS = {
    "E2ECfg": "config", "LCCfg": "config",
    "finetune_e2e": "e2e", "E2EResult": "e2e", "build_optimizer": "e2e",
    "WarmupCosine": "schedule", "warmup_cosine_lr": "schedule",
    "Preprocess": "augment", "preprocess_of": "augment", "train_transform": "augment", "eval_transform": "augment",
    "FeatureSet": "features", "cached_features": "features", "compute_features": "features",
    "dataset_fingerprint": "features", "module_fingerprint": "features",
    "LCHparams": "linear", "LinearHead": "linear", "train_linear": "linear", "linear_accuracy": "linear",
    "LCResult": "search", "sample_trials": "search", "heldout_split": "search", "search_linear": "search",
    "kshot_indices": "kshot", "dataset_labels": "kshot",
}

__all__ = list(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
