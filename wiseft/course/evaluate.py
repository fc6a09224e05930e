"""What the assignments give students so they write the method, not the plumbing: scoring a model on one
evaluation set, the sets held in memory for fast sweeps, wiseft's own numbers to compare with, and which shifts
to look at.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .report import CourseError

__all__ = ["accuracy", "preload", "reference_sweep", "losing_shifts", "PREFERRED_SHIFTS"]

#: The `mini` world's shifts the course plots: both lose accuracy under fine-tuning (world-fonts gains).
PREFERRED_SHIFTS = ("world-handwritten", "world-rotation")


def accuracy(model: Any, eval_set: Any, *, device: Any = "cpu", batch_size: int = 256) -> float:
    """The primary metric (top-1 for most sets) of ``model`` on one :class:`~wiseft.datasets.EvalSet`, a fraction.

    Scores logits through the set's protocol, as wiseft's evaluation engine does, so the numbers compare with
    the run's results.
    """
    import torch

    model = model.to(device).eval()
    loader = torch.utils.data.DataLoader(eval_set.dataset, batch_size=batch_size, shuffle=False)
    preds, labels = [], []
    with torch.no_grad():
        for images, targets in loader:
            logits = eval_set.protocol.project_logits(model(images.to(device)))
            preds.append(logits.argmax(dim=-1).cpu().numpy())
            labels.append(np.asarray(targets).reshape(-1))
    metrics = eval_set.protocol.metrics(np.concatenate(preds), np.concatenate(labels), eval_set.metadata)
    return float(next(iter(metrics.values())))


def preload(eval_set: Any, batch_size: int = 256) -> Any:
    """A copy of ``eval_set`` whose images are decoded and preprocessed once and held in memory.

    A sweep scores the same images at every α; decoding them each time costs more than the model on the `mini`
    world. Only for sets that fit in memory (the `mini` world's: 12 MB each).
    """
    import torch

    images, labels = [], []
    for x, y in torch.utils.data.DataLoader(eval_set.dataset, batch_size=batch_size, shuffle=False):
        images.append(x)
        labels.append(torch.as_tensor(y).reshape(-1))
    data = torch.utils.data.TensorDataset(torch.cat(images), torch.cat(labels))
    return dataclasses.replace(eval_set, dataset=data)


def reference_sweep(ctx: Any, alphas: Sequence[float], datasets: Sequence[str], mode: str = "e2e") -> pd.DataFrame:
    """wiseft's own WiSE-FT rows of a run, at ``alphas`` on ``datasets``: what the checks compare with.

    Raises:
        CourseError: when the run has no such sweep yet, saying which step produces it.
    """
    from ..results import load_results

    frame = load_results(ctx.results_path)
    wanted = {round(float(a), 4) for a in alphas}
    if not frame.empty:
        frame = frame[(frame["method"] == "wiseft") & (frame["mode"] == mode) & frame["dataset"].isin(list(datasets))]
        frame = frame[frame["alpha"].round(4).isin(wanted)]
    if frame.empty:
        raise CourseError(f"{ctx.results_path} holds no WiSE-FT {mode} sweep on {', '.join(datasets)}; run the "
                          f"pipeline first: wiseft run --profile {ctx.profile.name} (or its notebooks 01 to 04)")
    return frame.reset_index(drop=True)


def losing_shifts(reference: pd.DataFrame, prefer: Sequence[str] = PREFERRED_SHIFTS, count: int = 2) -> list[str]:
    """Shifts on which the fine-tuned model (α = 1) scores below the zero-shot one (α = 0) in ``reference``.

    The ``prefer`` ones that lose come first (on `mini`: handwritten and rotation); the rest of the list is the
    other losing shifts, largest loss first; at most ``count``. A shift that *gains* under fine-tuning (`mini`'s
    world-fonts) tells nothing about robustness lost, so it is never chosen. Empty when no shift loses.

    Args:
        reference: wiseft's sweep rows (:func:`reference_sweep`), with α = 0 and α = 1 and the ``role`` column.
    """
    shifts = reference[reference["role"] == "shift"]
    wide = shifts.pivot_table(index="alpha", columns="dataset", values="value")
    if not {0.0, 1.0} <= set(wide.index.round(4)):
        raise CourseError("losing_shifts needs wiseft's numbers at α = 0 and α = 1; add them to the α list")
    loss = (wide.loc[0.0] - wide.loc[1.0]).sort_values(ascending=False)
    losing = [d for d, v in loss.items() if v > 0]
    return ([d for d in prefer if d in losing] + [d for d in losing if d not in prefer])[:count]
