"""The paper's alternatives to WiSE-FT and its diversity analyses, as engine-independent building blocks.

Each module does one job and takes tensors, arrays or modules, never a profile:

- :mod:`.analysis`: prediction diversity, kappa / KL / CKA complements, override fractions, confidence gaps
  between two models (paper Fig. 5, App. E, Figs. 27–30);
- :mod:`.ema`: debiased and zero-shot-biased weight EMAs over a grid of decays (Figs. 11, 12);
- :mod:`.regularizers`: L2-SP toward the zero-shot weights for E2E and LC (Figs. 3c, 13);
- :mod:`.distill`: the LC distillation loss from zero-shot soft targets (Fig. 13);
- :mod:`.lpft`: LP-FT's start, the zero-shot encoder with the trained probe's head (Kumar et al., 2022);
- :mod:`.select_alpha`: α chosen on the reference set's held-out split, beside the default 0.5.

Output-space ensembles (logits, probabilities) and random per-example interpolation are in
:mod:`wiseft.ensembles`.
"""

from __future__ import annotations

from .analysis import (
    COLUMNS,
    MEASURES,
    cka_complement,
    cohen_kappa,
    confidence_gap,
    diversity_frame,
    diversity_measures,
    kappa_complement,
    linear_cka,
    mean_kl_divergence,
    override_fractions,
    prediction_diversity,
)
from .distill import DistillationLoss, distillation_loss, soft_cross_entropy
from .ema import WeightEMA
from .lpft import lpft_init
from .regularizers import L2SPPenalty, l2sp_penalty, lc_l2sp_penalty
from .select_alpha import DEFAULT_ALPHA, AlphaChoice, select_alpha, select_alpha_from_results

__all__ = [
    "COLUMNS",
    "MEASURES",
    "prediction_diversity",
    "cohen_kappa",
    "kappa_complement",
    "mean_kl_divergence",
    "linear_cka",
    "cka_complement",
    "override_fractions",
    "confidence_gap",
    "diversity_measures",
    "diversity_frame",
    "WeightEMA",
    "L2SPPenalty",
    "l2sp_penalty",
    "lc_l2sp_penalty",
    "soft_cross_entropy",
    "distillation_loss",
    "DistillationLoss",
    "lpft_init",
    "DEFAULT_ALPHA",
    "AlphaChoice",
    "select_alpha",
    "select_alpha_from_results",
]
