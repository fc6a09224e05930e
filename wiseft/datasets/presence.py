"""Is the data there at all? A cheap check, in one line, that runs before anything is loaded or downloaded."""

from __future__ import annotations

import os
from collections.abc import Sequence

from ..errors import DatasetError
from .layout import join_inside
from .loaders import fetch_hint
from .registry import get_dataset_cfg, resolve_dataset_root

__all__ = ["require_data"]


def require_data(reference: str, others: Sequence[str], root: str | os.PathLike | None, who: str = "this run"
                 ) -> None:
    """Fail fast, in one line, when a split that will be read is not on disk at all.

    Only checks that each split's folder exists (the reference's training, evaluation and held-out splits; the
    evaluation split of every other set), so it costs a few ``stat`` calls and imports nothing heavy; the
    zero-shot step and the CLI call it before any weights are fetched, so a user without data hears about the
    data first. ``wiseft data verify`` checks everything else.

    Raises:
        DatasetError: naming every missing split, where it was expected, and the command that fetches it.
    """
    missing, hints = [], []
    for name in dict.fromkeys([reference, *others]):
        cfg = get_dataset_cfg(name)
        keys = ("train_split", "eval_split", "heldout_split") if name == reference else ("eval_split",)
        base = resolve_dataset_root(cfg, root)
        for split in dict.fromkeys(cfg[k] for k in keys if cfg.get(k)):
            where = join_inside(base, cfg["splits"][split].get("path", "."))
            if not where.exists():
                missing.append(f"{name}/{split} (expected at {where})")
                hints.append(fetch_hint(cfg, base))
    if missing:
        more = " Likewise for the others." if len(set(hints)) > 1 else ""
        raise DatasetError(f"{len(missing)} dataset split(s) of {who} are not on disk: {'; '.join(missing)}. "
                           f"{hints[0]}{more}")
