"""Output-space ensembles: the paper's baselines that mix predictions instead of weights.

- ``ose`` mixes logits, (1−α)·f(x, θ_0) + α·f(x, θ_1) (paper Fig. 10, Table 13). For a linear classifier on
  shared features this equals WiSE-FT exactly (paper Eq. 1 and App. F).
- ``ose_prob`` mixes softmax probabilities (Fig. 13); its "logits" are the log of the mixed probabilities,
  so argmax and max-pooling projections behave as for logits.
- ``random_interp`` lets each example use θ_1 with probability α and θ_0 otherwise (Fig. 13). The draw is
  seeded per example index, so it does not depend on batching, chunking or sharding.

The evaluation engine computes these from the endpoint logits of the same pass (:class:`OutputSetting`),
so an output-space sweep costs no extra forward passes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from .errors import WiseftError

__all__ = ["OUTPUT_METHODS", "OutputSetting", "mix_logits", "mix_probabilities", "example_uniforms",
           "random_interpolation", "output_settings"]

#: Output-space methods and the row ``method`` they record.
OUTPUT_METHODS = ("ose", "ose_prob", "random_interp")


def mix_logits(logits0: torch.Tensor, logits1: torch.Tensor, alpha: float) -> torch.Tensor:
    """(1−α)·logits0 + α·logits1 (``torch.lerp``: exact at α = 0 and α = 1)."""
    return torch.lerp(logits0.float(), logits1.float(), float(alpha))


def mix_probabilities(logits0: torch.Tensor, logits1: torch.Tensor, alpha: float) -> torch.Tensor:
    """log((1−α)·softmax(logits0) + α·softmax(logits1)), computed stably in log space."""
    alpha = float(alpha)
    lp0, lp1 = torch.log_softmax(logits0.float(), -1), torch.log_softmax(logits1.float(), -1)
    if alpha <= 0.0:
        return lp0
    if alpha >= 1.0:
        return lp1
    w0 = torch.log(torch.tensor(1.0 - alpha, dtype=lp0.dtype, device=lp0.device))
    w1 = torch.log(torch.tensor(alpha, dtype=lp0.dtype, device=lp0.device))
    return torch.logaddexp(lp0 + w0, lp1 + w1)


def example_uniforms(n: int, seed: int) -> torch.Tensor:
    """``n`` uniforms in [0, 1), one per example index, from a generator seeded with ``seed``."""
    generator = torch.Generator().manual_seed(int(seed))
    return torch.rand(n, generator=generator, dtype=torch.float64)


def random_interpolation(logits0: torch.Tensor, logits1: torch.Tensor, alpha: float,
                         uniforms: torch.Tensor) -> torch.Tensor:
    """Per example, logits1 where ``uniforms < α`` and logits0 elsewhere.

    Args:
        uniforms: one value per row of the logits (e.g. ``example_uniforms(len(dataset), seed)[indices]``).
    """
    pick = (uniforms.to(logits0.device) < float(alpha)).unsqueeze(-1)
    return torch.where(pick, logits1.float(), logits0.float())


@dataclass
class OutputSetting:
    """An output-space ensemble of two weight settings of the same evaluation pass.

    Attributes:
        label: unique name in the sweep.
        method: ``ose``, ``ose_prob`` or ``random_interp``.
        alpha: weight of the second source.
        sources: labels of the two weight settings whose model logits are mixed (θ_0 first).
        mode: ``e2e`` or ``lc`` for the results rows.
        seed: seed of ``random_interp``'s per-example draws.
        extra: recorded in the rows' ``extra``.
    """

    label: str
    method: str
    alpha: float
    sources: tuple[str, str]
    mode: str | None = None
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method not in OUTPUT_METHODS:
            raise WiseftError(f"output setting {self.label!r}: unknown method {self.method!r}; "
                              f"choose one of {', '.join(OUTPUT_METHODS)}")
        if not 0.0 <= float(self.alpha) <= 1.0:
            raise WiseftError(f"output setting {self.label!r}: alpha {self.alpha!r} outside [0, 1]")

    def combine(self, logits0: torch.Tensor, logits1: torch.Tensor, indices: torch.Tensor,
                num_examples: int) -> torch.Tensor:
        """Mixed logits for the examples ``indices`` (global indices into an evaluation set of ``num_examples``)."""
        if self.method == "ose":
            return mix_logits(logits0, logits1, self.alpha)
        if self.method == "ose_prob":
            return mix_probabilities(logits0, logits1, self.alpha)
        return random_interpolation(logits0, logits1, self.alpha,
                                    example_uniforms(num_examples, self.seed)[indices.cpu()])


def output_settings(alphas: Sequence[float], sources: tuple[str, str], method: str = "ose",
                    mode: str | None = None, seed: int = 0) -> list[OutputSetting]:
    """One :class:`OutputSetting` per α, labelled ``"<method> α=<alpha>"``."""
    return [OutputSetting(label=f"{method} α={float(a):g}", method=method, alpha=float(a), sources=tuple(sources),
                          mode=mode, seed=seed) for a in alphas]
