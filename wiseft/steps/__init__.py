"""Pipeline steps: profile in, checkpoints and results rows out. The notebooks and the CLI both call these.

- :func:`run_data` — check (or build, for the offline world) every dataset of the profile.
- :func:`run_zeroshot` — build θ_0 from prompts and score it (``checkpoints/zeroshot``).
- :func:`run_finetune` / :func:`evaluate_finetuned` — θ_1 by E2E and LC fine-tuning (plus variants, k-shot).
- :func:`run_interpolation`, :func:`run_variant_sweeps`, :func:`run_kshot_sweeps` — one-pass α sweeps.
- :func:`run_baselines` — L2-SP, EMA, LP-FT, LC L2-SP and distillation (``checkpoints/baselines``);
  :func:`run_analyses` — the diversity analyses (``analyses.csv``); :func:`choose_alpha` — α on the held-out split.
- :func:`summary_table` — the paper's table layout of a results frame.
"""

from .analyses import choose_alpha, run_analyses
from .baselines import baseline_rows, run_baselines
from .common import eval_sets, load_endpoint, summary_table
from .data import check_data, prepare_world, run_data
from .finetune import evaluate_all_finetuned, evaluate_finetuned, run_finetune
from .interpolate import run_interpolation, run_kshot_sweeps, run_variant_sweeps, sweep
from .zeroshot import build_zeroshot, evaluate_zeroshot, run_zeroshot

__all__ = [
    "eval_sets",
    "load_endpoint",
    "summary_table",
    "run_data",
    "prepare_world",
    "check_data",
    "run_zeroshot",
    "build_zeroshot",
    "evaluate_zeroshot",
    "run_finetune",
    "evaluate_finetuned",
    "evaluate_all_finetuned",
    "run_interpolation",
    "run_variant_sweeps",
    "run_kshot_sweeps",
    "sweep",
    "run_baselines",
    "baseline_rows",
    "run_analyses",
    "choose_alpha",
]
