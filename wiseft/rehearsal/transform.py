"""A rehearsal is a profile transform: the same pipeline, notebooks and code paths, at toy sizes on the CPU.

``wiseft run --profile NAME --rehearse`` loads the profile as usual, then :func:`rehearsal_profile` rewrites
it (big_vision's "runlocal" idea): the model becomes its reduced twin at random init (nothing is downloaded),
the data root becomes fixture datasets in each dataset's real on-disk layout (built by the data step), and
every size shrinks (a few images per class and per evaluation set, one short epoch, five α, the first values
of each baseline grid). The rewritten profile carries ``rehearsal: true``: the data step then accepts fixture
counts, every results row says so, and the report opens with a banner. Its run folder is its own
(``runs/<profile>-rehearsal``); :func:`check_run_kind` keeps rehearsal numbers and real numbers apart.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import yaml

from ..errors import PipelineError
from ..profile import Profile
from ..twins import describe_twin, twin_name

__all__ = ["REHEARSAL_SUFFIX", "WORLD_TWIN", "rehearsal_profile", "rehearsal_run_dir", "check_run_kind",
           "describe_rehearsal", "BANNER"]

#: Default run folder of a rehearsal: ``runs/<profile><suffix>``.
REHEARSAL_SUFFIX = "-rehearsal"
#: The offline world a rehearsal of a ``world:`` profile draws instead (a few hundred images, 4 pretraining steps).
WORLD_TWIN = "world:tiny"
#: The first line under a rehearsal report's title.
BANNER = ("> **REHEARSAL** — toy data in the real layouts and a reduced model at random init: this run checks that "
          "the pipeline works end to end; its numbers mean nothing and are never mixed with a real run's.")

#: The rehearsal's sizes: images per evaluation set, fine-tuning steps and batch, the α grid.
EVAL_IMAGES = 24
E2E_STEPS = 2
E2E_BATCH = 8
ALPHAS = [0.0, 0.25, 0.5, 0.75, 1.0]


def rehearsal_run_dir(profile_name: str) -> Path:
    """``runs/<profile>-rehearsal``."""
    from ..paths import default_run_dir

    return default_run_dir(profile_name + REHEARSAL_SUFFIX)


def _first(values: list, n: int = 1) -> list:
    return list(values[:n])


def rehearsal_profile(profile: Profile, data_root: str | Path) -> Profile:
    """The rehearsal of ``profile``: same steps and figures, reduced model, fixture data, toy sizes.

    Args:
        profile: the resolved profile (overrides applied).
        data_root: where the data step builds the fixture datasets.
    """
    p = copy.deepcopy(profile)
    p.rehearsal = True
    p.device = "cpu"
    p.description = f"REHEARSAL of {profile.name}: {profile.description}".strip().rstrip(":")
    pretrained = profile.model.pretrained or ""
    if pretrained.startswith("world:"):  # the offline world's CLIP is small already: draw the tiny world instead
        p.model.pretrained = WORLD_TWIN
        p.world.name = None
        p.world.packaged_weights = False
    else:
        p.model.name = twin_name(profile.model.name)
        p.model.pretrained = None
        p.data.root = str(Path(data_root).resolve())
    p.eval = dataclasses.replace(p.eval, batch_size=16, num_workers=0, precision="fp32", max_images=EVAL_IMAGES,
                                 chunk_images=64)
    e2e = p.finetune.e2e
    micro = None if e2e.micro_batch_size is None else E2E_BATCH // 2  # accumulation stays exercised where used
    p.finetune.e2e = dataclasses.replace(e2e, epochs=1, max_steps=E2E_STEPS, batch_size=E2E_BATCH,
                                         micro_batch_size=micro, warmup_steps=1, num_workers=0, precision="fp32",
                                         log_every_steps=1, checkpoint_every_steps=0, tensorboard=False)
    lc = p.finetune.lc
    p.finetune.lc = dataclasses.replace(lc, search_trials=1, max_epochs=1, batch_sizes=_first(lc.batch_sizes),
                                        regularizers=_first(lc.regularizers), shots=_first(lc.shots, 2))
    p.finetune.variants = [{**v, "epochs": 1} for v in p.finetune.variants]
    keep = [a for a in p.interpolation.keep if a in ALPHAS] or [0.5]
    secondary = None if p.interpolation.secondary_alphas is None else [0.0, 0.5, 1.0]
    p.interpolation = dataclasses.replace(p.interpolation, alphas=list(ALPHAS), keep=keep,
                                          secondary_alphas=secondary, fisher_samples=8)
    b = p.baselines
    p.baselines = dataclasses.replace(
        b, l2sp_lambdas=_first(b.l2sp_lambdas), lc_l2sp_lambdas=_first(b.lc_l2sp_lambdas),
        ema_decays=_first(b.ema_decays), ema_biased_decays=_first(b.ema_biased_decays),
        distill_alphas=_first(b.distill_alphas), cka_max_samples=64,
        e2e_overrides={**b.e2e_overrides, "epochs": 1, "max_steps": E2E_STEPS, "warmup_steps": 1})
    return p


def describe_rehearsal(profile: Profile) -> str:
    """Which model stands in for the real one, in one line (the CLI prints it; the report shows it)."""
    if (profile.model.pretrained or "").startswith("world:"):
        return (f"model: {profile.model.name} with the '{WORLD_TWIN[6:]}' offline world's weights (4 pretraining "
                f"steps from random init) and that world's images")
    return "model: " + describe_twin(profile.model.name)


def _recorded_kind(run_dir: Path) -> bool | None:
    """Whether the run folder holds a rehearsal (``True``), a real run (``False``) or nothing yet (``None``)."""
    path = run_dir / "profile.yaml"
    if not path.is_file():
        return None
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None  # an unreadable profile.yaml is rewritten by the run; the kind cannot be told from it
    return bool(raw.get("rehearsal", False)) if isinstance(raw, dict) else None


def check_run_kind(run_dir: str | Path, rehearsal: bool) -> None:
    """Refuse to write a rehearsal into a real run's folder, or a real run into a rehearsal's.

    Raises:
        PipelineError: naming the folder, what it holds and the fix.
    """
    run_dir = Path(run_dir)
    recorded = _recorded_kind(run_dir)
    if recorded is None or recorded == rehearsal:
        return
    if rehearsal:
        raise PipelineError(f"{run_dir} holds a real run; a rehearsal never writes its numbers there: choose "
                            f"another --out (the default is runs/<profile>{REHEARSAL_SUFFIX})")
    raise PipelineError(f"{run_dir} holds a rehearsal (toy data, random model); a real run never writes its numbers "
                        f"there: choose another --out, or delete that folder")
