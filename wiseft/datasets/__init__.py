"""Datasets of the paper behind one registry, and the evaluation types they share with the engine.

Front doors:

- :func:`list_datasets`, :func:`get_dataset_cfg`, :func:`add_dataset_config`: the YAML registry;
- :func:`create_eval_set` → :class:`EvalSet` (images, labels, class names, the scoring :class:`Protocol`);
- :func:`create_train_set`, :func:`get_classnames`, :func:`default_templates`;
- :func:`verify_dataset` and :func:`download_dataset` (also ``wiseft data verify|download``).

Heavy modules (torch datasets, wilds, download code) load on first use, so ``list_datasets()`` stays cheap.
"""

from __future__ import annotations

from typing import Any

from .base import EvalSet, Protocol, top1
from .registry import add_dataset_config, get_dataset_cfg, list_datasets, register_root_resolver

__all__ = [
    "EvalSet",
    "Protocol",
    "top1",
    "list_datasets",
    "get_dataset_cfg",
    "add_dataset_config",
    "register_root_resolver",
    "create_eval_set",
    "create_train_set",
    "get_classnames",
    "default_templates",
    "verify_dataset",
    "VerifyReport",
    "download_dataset",
    "convert_imagenet_val",
]

_LAZY = {
    "create_eval_set": "factory", "create_train_set": "factory", "get_classnames": "factory",
    "default_templates": "factory", "verify_dataset": "verify", "VerifyReport": "verify",
    "download_dataset": "download", "convert_imagenet_val": "imagenet_val",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
