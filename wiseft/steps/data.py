"""The data step: make sure every dataset of a profile is on disk and readable before anything is trained.

For each dataset of the profile (the reference with all its splits — training, evaluation, held-out — then the
shifts and the extra evaluation sets) :func:`run_data` counts classes and images, compares the count with the
registry's, decodes a fixed random sample of images, and says what to do when something is missing. For a
profile whose model is ``world:<name>`` (the embedded offline world), it first builds the world's images and
pretrains its CLIP when they are not cached yet (:func:`prepare_world`); for a rehearsal
(``wiseft run --rehearse``) it writes the fixture datasets first and accepts their counts.

Nothing here raises for missing data: the table says what is wrong, and :func:`check_data` turns the table into
one sentence or one :class:`~wiseft.errors.DatasetError` that lists every fix.
"""

from __future__ import annotations

import importlib
import logging
import shlex
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import DatasetError, WiseftError
from ..profile import Profile
from ..run import RunContext
from .common import data_root

log = logging.getLogger(__name__)

__all__ = ["DATA_COLUMNS", "run_data", "prepare_world", "world_settings", "data_problems", "check_data", "format_data",
           "describe_world"]

#: Columns of the table :func:`run_data` returns.
DATA_COLUMNS = ["dataset", "role", "split", "use", "classes", "images", "expected", "decoded", "unreadable",
                "status", "fix", "where"]

_WORLD_PREFIX = "world:"


# ------------------------------------------------------------------------------------------- the world
def world_settings(profile: Profile) -> dict[str, Any] | None:
    """The offline world a profile needs, or ``None`` when its model is not ``world:<name>``.

    Returns:
        ``name`` (the world), ``seed``, ``root``, ``workers``, ``pretrain_device`` and ``packaged_weights``,
        read from the profile's
        ``world`` section (a mapping or a settings object; missing keys take the world's defaults).
    """
    pretrained = profile.model.pretrained or ""
    if not pretrained.startswith(_WORLD_PREFIX):
        return None
    section = profile.world

    def get(key: str, default: Any = None) -> Any:
        value = section.get(key) if isinstance(section, dict) else getattr(section, key, None)
        return default if value is None else value

    return {"name": get("name", pretrained[len(_WORLD_PREFIX):]), "seed": get("seed"), "root": get("root"),
            "workers": int(get("workers", 1)), "pretrain_device": get("pretrain_device", "cpu"),
            "packaged_weights": bool(get("packaged_weights", True))}


def _world_module():
    """``wiseft.world``, or an error that names what is missing and how to get it."""
    try:
        return importlib.import_module("wiseft.world")
    except ModuleNotFoundError as e:
        if e.name not in ("wiseft.world",):
            raise
        raise WiseftError("this profile's model is an offline-world model (model.pretrained: world:<name>), but this "
                          "installation of wiseft has no wiseft.world module (the embedded world's generator and "
                          "pretraining). Update wiseft to a version that ships it, or choose a profile with real "
                          "data and weights (`wiseft profiles` lists them).") from e


def prepare_world(profile: Profile) -> dict[str, Any] | None:
    """Build the offline world and pretrain its CLIP when the profile needs them and they are not cached.

    This is the only place the data step touches :mod:`wiseft.world`: ``ensure_world`` draws the images (once
    per world setting) and ``ensure_pretrained`` trains the small CLIP (once per setting); both return
    immediately from the cache afterwards.

    Returns:
        ``None`` for a profile without a ``world:`` model, else ``{"world": name, "folder": Path,
        "weights": Path}``.

    Raises:
        WiseftError: when the world module is missing, or ProfileError for an unknown world name.
    """
    settings = world_settings(profile)
    if settings is None:
        return None
    world = _world_module()
    name, seed, root, workers = settings["name"], settings["seed"], settings["root"], settings["workers"]
    log.info("making sure the offline world %r exists (drawn once, then cached)", name)
    folder = world.ensure_world(name, seed=seed, root=root, workers=workers)
    weights = world.ensure_pretrained(name, seed=seed, root=root, device=settings["pretrain_device"],
                                      workers=workers, packaged=settings["packaged_weights"])
    return {"world": name, "folder": Path(folder), "weights": Path(weights)}


# ------------------------------------------------------------------------------------------ the table
def _fix(name: str, status: str, profile: Profile, root: Path | None, in_world: bool) -> str:
    if status == "ok":
        return ""
    if in_world:
        return ("the offline world's files are incomplete: delete the world folder named in 'where' and rerun this "
                "step (it is drawn again)")
    args = f" --root {shlex.quote(str(root))}" if root is not None else ""
    if status == "missing":
        return f"wiseft data download {name}{args}"
    return (f"wiseft data verify {name}{args}  (lists every problem; then fetch it again with "
            f"`wiseft data download {name}{args}`)")


def _uses(cfg: dict) -> dict[str, str]:
    uses: dict[str, list[str]] = {}
    for key, label in (("train_split", "train"), ("eval_split", "eval"), ("heldout_split", "held-out")):
        if cfg.get(key):
            uses.setdefault(cfg[key], []).append(label)
    return {split: "+".join(labels) for split, labels in uses.items()}


def _classes(name: str, root: Path | None) -> int | None:
    from ..datasets import get_classnames

    try:
        return len(get_classnames(name, root))
    except (DatasetError, OSError) as e:
        log.info("%s: class names not available (%s)", name, e)
        return None


def _dataset_rows(name: str, role: str, profile: Profile, sample: int | None) -> list[dict[str, Any]]:
    from ..datasets import get_dataset_cfg, verify_dataset

    cfg = get_dataset_cfg(name)
    root = data_root(profile)
    in_world = cfg.get("root") == "world"
    # A rehearsal's fixtures hold a few images per class: their counts are shown, never held against the registry.
    report = verify_dataset(name, root, sample=sample, decode=bool(sample), check_counts=not profile.rehearsal)
    classes = _classes(name, root)
    uses = _uses(cfg)
    rows = []
    for s in report.splits:
        status = "ok" if s.ok else "missing" if s.found == 0 else "problems"
        rows.append({
            "dataset": name, "role": role, "split": s.split, "use": uses.get(s.split, ""), "classes": classes,
            "images": s.found, "expected": s.expected, "decoded": s.decoded, "unreadable": len(s.unreadable),
            "status": status, "fix": _fix(name, status, profile, root, in_world), "where": s.where,
            "problems": list(s.problems) + [f"unreadable: {p} ({why})" for p, why in s.unreadable[:5]],
        })
    return rows


def run_data(ctx: RunContext, sample: int | None = 64) -> pd.DataFrame:
    """Check every dataset of the profile on disk; build the offline world first when the model needs it.

    Args:
        ctx: the run.
        sample: images decoded per split (a fixed random sample; ``None`` or 0 checks layout and counts only).
            Counts always cover every image.

    Returns:
        One row per dataset split, columns :data:`DATA_COLUMNS` (``status`` is ``ok``, ``missing`` or
        ``problems``; ``fix`` is the command to run). ``attrs['world']`` holds :func:`prepare_world`'s result,
        ``attrs['problems']`` the detailed problems per dataset.
    """
    profile = ctx.profile
    world = prepare_world(profile)
    if profile.rehearsal and profile.data.root is not None:
        from ..rehearsal.data import build_rehearsal_data

        build_rehearsal_data(profile)
    ctx.write_profile()
    rows: list[dict[str, Any]] = []
    for name, role in ([(profile.data.reference, "reference")] + [(n, "shift") for n in profile.data.shifts]
                       + [(n, "extra") for n in profile.data.extra]):
        rows += _dataset_rows(name, role, profile, sample)
    table = pd.DataFrame(rows, columns=[*DATA_COLUMNS, "problems"])
    problems = {f"{r['dataset']}/{r['split']}": r["problems"] for r in rows if r["problems"]}
    table = table.drop(columns="problems")
    table.attrs["world"] = world
    table.attrs["problems"] = problems
    for r in rows:
        if r["status"] != "ok":
            log.warning("%s/%s: %s; fix: %s", r["dataset"], r["split"], r["status"], r["fix"])
    return table


def data_problems(table: pd.DataFrame) -> str | None:
    """What is wrong with the data, one line per dataset split with its fix, or ``None`` when all is well."""
    bad = table[table["status"] != "ok"]
    if bad.empty:
        return None
    details = table.attrs.get("problems", {})
    lines = [f"{len(bad)} dataset split(s) are not ready:"]
    for r in bad.itertuples():
        what = "is missing" if r.status == "missing" else "has problems"
        lines.append(f"- {r.dataset}/{r.split} {what} (at {r.where}); fix: {r.fix}")
        lines += [f"    {p}" for p in details.get(f"{r.dataset}/{r.split}", [])[:5]]
    lines.append("Rerun this step once the data is in place.")
    return "\n".join(lines)


def check_data(table: pd.DataFrame) -> str:
    """One sentence when every dataset split is in place, else :class:`DatasetError` listing each fix.

    Raises:
        DatasetError: naming every missing or broken split and the command that fixes it.
    """
    problem = data_problems(table)
    if problem is not None:
        raise DatasetError(problem)
    datasets = table["dataset"].nunique()
    return (f"All {datasets} datasets are in place: {len(table)} splits, {int(table['images'].sum())} images, "
            f"{int(table['decoded'].sum())} decoded without error.")


def format_data(table: pd.DataFrame) -> str:
    """The table as text without the volatile columns (paths, fixes): what a notebook prints and nbval checks."""
    shown = table[["dataset", "role", "split", "use", "classes", "images", "expected", "decoded", "unreadable",
                   "status"]].astype(object).where(table.notna(), "")
    return shown.to_string(index=False)


def describe_world(table: pd.DataFrame) -> str:
    """Where the offline world's images and pretrained CLIP are (paths: volatile), or that there is none."""
    world = table.attrs.get("world")
    if not world:
        return "This profile uses no offline world: its datasets and weights come from outside wiseft."
    from ..paths import display_path

    return (f"Offline world {world['world']!r}: images in {display_path(world['folder'])}; pretrained CLIP weights "
            f"{display_path(world['weights'])} (both built once, then reused from the cache).")
