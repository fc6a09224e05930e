"""Profiles: one YAML file per experimental setting, validated against one schema.

A profile names a model, a reference dataset and its shifts, and the knobs of every pipeline step. Packaged
profiles live in ``wiseft/profiles/*.yaml``; a user profile is any YAML path, and may start from a packaged one
with ``extends: <name>``. ``--set a.b=c`` overrides any key (the value is parsed as YAML).

Validation is strict: an unknown key, a wrong type, an α outside [0, 1], an unknown dataset or model, or a
missing file raises :class:`~wiseft.errors.ProfileError` naming the file, the key and the bad value.

Example:
    >>> from wiseft.profile import load_profile
    >>> cfg = load_profile("mini", overrides=["finetune.e2e.lr=1e-4"])
    >>> cfg.finetune.e2e.lr
    0.0001
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import re
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Sequence

import yaml

from .errors import ProfileError
from .finetune.config import E2ECfg, LCCfg, Precision

__all__ = [
    "Profile",
    "ModelCfg",
    "DataCfg",
    "EvalCfg",
    "E2ECfg",
    "LCCfg",
    "FinetuneCfg",
    "InterpolationCfg",
    "BaselinesCfg",
    "FiguresCfg",
    "WorldCfg",
    "load_profile",
    "list_profiles",
    "profile_from_dict",
    "profile_to_dict",
    "apply_overrides",
]

# --------------------------------------------------------------------------------------------------- schema
@dataclass
class ModelCfg:
    #: open_clip model name (``ViT-B-16``) or a model config registered by wiseft (``wiseft-mini-clip``).
    name: str
    #: open_clip pretrained tag (``openai``), a local weights file, or ``world:<name>`` for the offline world.
    pretrained: str | None = None


@dataclass
class DataCfg:
    #: registry name of the reference dataset (fine-tuned on, evaluated as "reference").
    reference: str
    #: registry names of the distribution shifts.
    shifts: list[str] = field(default_factory=list)
    #: further evaluation sets (class-subsampled references for the Fig. 7 x-axes, …).
    extra: list[str] = field(default_factory=list)
    #: folder holding the datasets; ``null`` means ``$WISEFT_DATA`` or ``<cache>/data``.
    root: str | None = None
    #: skip unreadable images (counted in the results) instead of stopping with an error.
    skip_bad_images: bool = False
    #: YAML files describing your own datasets (docs/datasets.md), registered before the names are checked;
    #: relative paths are relative to the profile file.
    configs: list[str] = field(default_factory=list)
    #: pixels cut from every image border per dataset, over the registry's ``border_crop``: ``{objectnet: 2}`` runs the
    #: crop the official code intended; the default (registry: 0) is what it ran for the paper (docs/protocols.md).
    border_crop: dict[str, int] = field(default_factory=dict)


@dataclass
class EvalCfg:
    batch_size: int = 256
    num_workers: int = 2
    #: ``fp32`` as the official code evaluates (the paper's numbers); ``amp_bf16``/``amp_fp16`` are faster options.
    precision: Precision = "fp32"
    #: cap on images per evaluation set (quick looks); ``null`` evaluates everything.
    max_images: int | None = None
    #: at most this many images decoded and held per chunk of a one-pass sweep (each chunk is scored by every α).
    chunk_images: int = 2048
    #: bound in GiB on a chunk's decoded images (uint8 where the transform allows, else float32): it sizes the
    #: chunk whatever the dataset, so an evaluation's peak memory is about 3 model copies plus this.
    memory_gb: float = 1.0
    #: ``cpu``: loader workers decode (PIL); ``device``: ``torchvision.io.decode_jpeg`` on the evaluation device.
    decode: Literal["cpu", "device"] = "cpu"
    #: feed the model ``channels_last`` tensors (faster patch embedding on GPUs).
    channels_last: bool = False


@dataclass
class FinetuneCfg:
    e2e: E2ECfg = field(default_factory=E2ECfg)
    lc: LCCfg = field(default_factory=LCCfg)
    #: extra E2E runs for Fig. 3: each item is ``{name: ..., <E2E key>: value, ...}``.
    variants: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class InterpolationCfg:
    #: explicit α values; ``null`` means 0 … 1 in steps of ``alpha_step`` (the paper's 21 values); the step must
    #: divide 1.
    alphas: list[float] | None = None
    alpha_step: float = 0.05
    #: α grid of the sweeps of fine-tuning variants and k-shot runs (``null``: the main grid); a coarser grid
    #: keeps Figs. 3 and 17 cheap.
    secondary_alphas: list[float] | None = None
    #: α values whose interpolated weights are written as checkpoints (the sweep itself stays in memory).
    keep: list[float] = field(default_factory=lambda: [0.5])
    #: output-space ensemble of the zero-shot and fine-tuned logits (the paper's Fig. 10 baseline).
    ose: bool = True
    #: Fisher-weighted merges (the official code's ``--fisher``; not in the paper) beside WiSE-FT in the E2E sweep.
    fisher: bool = False
    #: examples per Fisher, a seeded class-balanced sample (``null``: the whole split, as the official code runs).
    fisher_samples: int | None = 1000
    #: the reference split the Fisher is estimated on, with the evaluation transform: ``eval`` (its evaluation
    #: split, what the official code runs) or ``train`` (its training split; no test image is ever used).
    fisher_split: Literal["eval", "train"] = "eval"
    #: floor on Fisher entries (the official ``--fisher_floor`` default, 1e-8).
    fisher_floor: float = 1e-8

    def alpha_grid(self) -> list[float]:
        """The α values of the sweep, rounded to 6 decimals so that 0.35 prints as 0.35."""
        if self.alphas is not None:
            return [round(float(a), 6) for a in self.alphas]
        n = int(round(1.0 / self.alpha_step))  # the checks admit only steps that divide 1: the grid ends at 1
        return [round(i / n, 6) for i in range(n + 1)]


@dataclass
class BaselinesCfg:
    """The appendix's alternatives to WiSE-FT (paper Figs. 10–13) and the diversity analyses (Fig. 5)."""

    #: which baselines to run: E2E ``l2sp``, ``ema`` (debiased), ``ema_biased`` (started at θ_zero-shot), ``lpft``;
    #: LC ``lc_l2sp``, ``distill``; output-space ``ose_prob``, ``random_interp``.
    methods: list[Literal["l2sp", "ema", "ema_biased", "lpft", "lc_l2sp", "distill", "ose_prob", "random_interp"]] = \
        field(default_factory=list)
    #: E2E λ‖θ − θ_zero-shot‖² (Fig. 3c): the paper gives no grid; five decades are wiseft's choice.
    l2sp_lambdas: list[float] = field(default_factory=lambda: [1e-4, 1e-3, 1e-2, 1e-1, 1.0])
    #: LC λ‖W − W_zero-shot‖²_F (Fig. 13): the paper's grid 1e-8, 5e-8, 1e-7, …, 5e2.
    lc_l2sp_lambdas: list[float] = field(default_factory=lambda: [
        1e-8, 5e-8, 1e-7, 5e-7, 1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 1e-1, 5e-1,
        1.0, 5.0, 1e1, 5e1, 1e2, 5e2])
    #: debiased EMA (Fig. 11): the paper's decays 0.99 … 0.999999.
    ema_decays: list[float] = field(default_factory=lambda: [0.99, 0.999, 0.9999, 0.99999, 0.999999])
    #: EMA started at θ_zero-shot (Fig. 12): the paper's decays.
    ema_biased_decays: list[float] = field(default_factory=lambda: [0.9999, 0.99992, 0.99994, 0.99997, 0.99999])
    distill_alphas: list[float] = field(default_factory=lambda: [0.25, 0.5, 0.75])
    #: ``finetune.e2e`` keys overridden for the baselines' end-to-end runs (L2-SP, EMA, LP-FT), e.g.
    #: ``{epochs: 1, warmup_steps: 10}`` to keep them cheap; ``{}`` trains them exactly like the main E2E run (then
    #: EMA at decay → 0 reproduces ``finetuned_e2e``). A shorter budget moves them toward the zero-shot model.
    e2e_overrides: dict[str, Any] = field(default_factory=dict)
    analyses: bool = False
    cka_max_samples: int = 10000


@dataclass
class FiguresCfg:
    #: figure and table names to draw (``null``: every one the profile's data can feed).
    include: list[str] | None = None
    formats: list[Literal["png", "pdf", "svg"]] = field(default_factory=lambda: ["png", "pdf"])
    #: CSV of extra models for Fig. 1 (columns: name, group, dataset, top1).
    baseline_models: str | None = None
    #: the paper's table whose numbers are printed beside the run's (``table5_vitb16`` …).
    paper_table: str | None = None


@dataclass
class WorldCfg:
    """The embedded offline world (``wiseft.world``); read only when ``model.pretrained`` is ``world:<name>``."""

    #: packaged world (``wiseft/world/worlds.yaml``: ``mini``, ``tiny``); ``null`` means the one named by
    #: ``model.pretrained: world:<name>``.
    name: str | None = None
    #: seed of the world's images and of its pretraining; ``null`` keeps the world's own. Another seed is another
    #: world, built and cached separately.
    seed: int | None = None
    #: processes drawing the world's images (the images do not depend on it).
    workers: int = 1
    #: device of the one-off contrastive pretraining; only ``cpu`` repeats bit for bit (it is part of the cache key).
    pretrain_device: str = "cpu"
    #: folder of built worlds and pretrained models; ``null`` means ``<cache>/world``.
    root: str | None = None
    #: use the pretrained CLIP that ships with wiseft when it is this very setting (same world, seed, pretraining,
    #: device type and library versions); ``false`` pretrains here (≈5 min on 2 cores), cached as usual.
    packaged_weights: bool = True


@dataclass
class Profile:
    name: str
    model: ModelCfg
    data: DataCfg
    description: str = ""
    #: free text for the README's profiles table.
    hardware: str = ""
    expected_runtime: str = ""
    seed: int = 0
    device: str = "auto"
    #: template set for the zero-shot head; ``null`` uses the reference dataset's own.
    templates: str | None = None
    #: pipeline steps to run (``null``: all).
    steps: list[str] | None = None
    eval: EvalCfg = field(default_factory=EvalCfg)
    finetune: FinetuneCfg = field(default_factory=FinetuneCfg)
    interpolation: InterpolationCfg = field(default_factory=InterpolationCfg)
    baselines: BaselinesCfg = field(default_factory=BaselinesCfg)
    figures: FiguresCfg = field(default_factory=FiguresCfg)
    #: reference datasets run one after another with these settings (transfer, Table 2 / Fig. 16); each member
    #: is this profile with ``data.reference`` replaced, no shifts, and the name ``<name>-<dataset>``.
    suite: list[str] = field(default_factory=list)
    #: settings of the embedded offline world (only for ``world:`` models).
    world: WorldCfg = field(default_factory=WorldCfg)
    #: a rehearsal (``wiseft run --rehearse``): toy data and a reduced model at random init; set by the rehearsal
    #: transform (``wiseft.rehearsal``), never mixed with a real run's numbers.
    rehearsal: bool = False
    #: where the profile came from (set by the loader, not by users).
    source: str = ""

    @property
    def datasets(self) -> list[str]:
        """Every dataset the profile evaluates: reference, shifts, extras."""
        return [self.data.reference, *self.data.shifts, *self.data.extra]

    def suite_members(self) -> list["Profile"]:
        """The member profiles of a suite (an empty list for an ordinary profile)."""
        members = []
        for reference in self.suite:
            member = copy.deepcopy(self)
            member.suite = []
            member.name = f"{self.name}-{reference}"
            member.data = DataCfg(reference=reference, shifts=[], extra=[], root=self.data.root,
                                  skip_bad_images=self.data.skip_bad_images, configs=list(self.data.configs),
                                  border_crop=dict(self.data.border_crop))
            members.append(member)
        return members


# ------------------------------------------------------------------------------------------ range checks
_FILE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_SAFE_CHARS_RE = re.compile(r"[^A-Za-z0-9._+-]+")


def _require(cond: bool, source: str, key: str, value: Any, expected: str) -> None:
    if not cond:
        raise ProfileError(f"{source}: key '{key}': {expected}, got {value!r}")


def _check_ranges(p: Profile, src: str) -> None:
    """Checks the type system cannot express: ranges, finiteness, consistency."""

    def unit(key: str, v: float) -> None:
        _require(isinstance(v, float) and 0.0 <= v <= 1.0, src, key, v, "expected a value in [0, 1]")

    def positive(key: str, v: float | int) -> None:
        _require(math.isfinite(v) and v > 0, src, key, v, "expected a positive finite number")

    def non_negative(key: str, v: float | int) -> None:
        _require(math.isfinite(v) and v >= 0, src, key, v, "expected a non-negative finite number")

    def pair(key: str, v: list[float], lo: float | None = None) -> None:
        _require(len(v) == 2 and v[0] <= v[1], src, key, v, "expected [low, high] with low <= high")
        if lo is not None:
            _require(v[0] >= lo, src, key, v, f"expected values >= {lo}")

    for a in p.interpolation.alphas or []:
        unit("interpolation.alphas", a)
    for a in p.interpolation.keep:
        unit("interpolation.keep", a)
    for a in p.interpolation.secondary_alphas or []:
        unit("interpolation.secondary_alphas", a)
    step = p.interpolation.alpha_step
    _require(0 < step <= 1 and abs(round(1.0 / step) * step - 1.0) <= 1e-6, src, "interpolation.alpha_step", step,
             "expected a step that divides 1, so that the grid runs from α = 0 to exactly α = 1 (e.g. 0.05, 0.1, "
             "0.125, 0.2, 0.25, 0.5 or 1; 1/n in general)")
    for key in ("alphas", "secondary_alphas"):
        grid = getattr(p.interpolation, key)
        _require(grid is None or len(grid) > 0, src, f"interpolation.{key}", grid,
                 "expected at least one α (or null for the grid of interpolation.alpha_step)")
    if p.interpolation.fisher_samples is not None:
        positive("interpolation.fisher_samples", p.interpolation.fisher_samples)
    non_negative("interpolation.fisher_floor", p.interpolation.fisher_floor)
    for key in ("batch_size", "chunk_images", "memory_gb"):
        positive(f"eval.{key}", getattr(p.eval, key))
    non_negative("eval.num_workers", p.eval.num_workers)
    for name, pixels in p.data.border_crop.items():
        _require(isinstance(pixels, int) and not isinstance(pixels, bool) and pixels >= 0, src,
                 f"data.border_crop.{name}", pixels, "expected a whole number of pixels >= 0")
    if p.eval.max_images is not None:
        positive("eval.max_images", p.eval.max_images)
    e = p.finetune.e2e
    for key in ("epochs", "batch_size", "lr", "log_every_steps"):
        positive(f"finetune.e2e.{key}", getattr(e, key))
    for key in ("weight_decay", "warmup_steps", "label_smoothing", "checkpoint_every_steps", "num_workers", "eps"):
        non_negative(f"finetune.e2e.{key}", getattr(e, key))
    for key in ("max_steps", "micro_batch_size", "grad_clip", "prefetch_factor"):
        if getattr(e, key) is not None:
            positive(f"finetune.e2e.{key}", getattr(e, key))
    _require(e.label_smoothing < 1, src, "finetune.e2e.label_smoothing", e.label_smoothing, "expected a value in [0, 1)")
    _require(len(e.betas) == 2 and all(0 <= b < 1 for b in e.betas), src, "finetune.e2e.betas", e.betas,
             "expected two values in [0, 1)")
    pair("finetune.e2e.crop_scale", e.crop_scale, lo=0.0)
    _require(e.crop_scale[1] <= 1.0 and e.crop_scale[0] > 0, src, "finetune.e2e.crop_scale", e.crop_scale,
             "expected 0 < low <= high <= 1")
    lc = p.finetune.lc
    positive("finetune.lc.search_trials", lc.search_trials)
    if lc.max_epochs is not None:
        positive("finetune.lc.max_epochs", lc.max_epochs)
    positive("finetune.lc.epoch_search_limit", lc.epoch_search_limit)
    non_negative("finetune.lc.epoch_search_tolerance", lc.epoch_search_tolerance)
    _require(0 < lc.heldout_fraction < 1, src, "finetune.lc.heldout_fraction", lc.heldout_fraction,
             "expected a fraction in (0, 1)")
    for key in ("lr_exponent", "wd_exponent", "l1_exponent", "label_smoothing"):
        pair(f"finetune.lc.{key}", getattr(lc, key))
    for b in lc.batch_sizes:
        positive("finetune.lc.batch_sizes", b)
    for k in lc.shots:
        positive("finetune.lc.shots", k)
    if lc.fixed is not None:
        allowed = {"lr", "weight_decay", "l1", "label_smoothing", "batch_size", "epochs"}
        for key in lc.fixed:
            _require(key in allowed, src, f"finetune.lc.fixed.{key}", lc.fixed[key],
                     f"unknown key; expected one of {sorted(allowed)}")
    for i, variant in enumerate(p.finetune.variants):
        _check_variant(variant, src, f"finetune.variants[{i}]", e)
    for key in ("distill_alphas",):
        for v in getattr(p.baselines, key):
            unit(f"baselines.{key}", v)
    for key in ("ema_decays", "ema_biased_decays"):
        for v in getattr(p.baselines, key):
            _require(0.0 < v < 1.0, src, f"baselines.{key}", v, "expected a decay in (0, 1)")
    for key in ("l2sp_lambdas", "lc_l2sp_lambdas"):
        for v in getattr(p.baselines, key):
            non_negative(f"baselines.{key}", v)
    positive("baselines.cka_max_samples", p.baselines.cka_max_samples)
    merged = {**dataclasses.asdict(e), **p.baselines.e2e_overrides}
    _build(E2ECfg, merged, "baselines.e2e_overrides", src)
    positive("world.workers", p.world.workers)
    from .device import PRECISIONS  # noqa: F401  (Literal already enforces; import keeps the list in one place)


def _check_variant(variant: dict[str, Any], src: str, key: str, base: E2ECfg) -> None:
    if "name" not in variant or not isinstance(variant["name"], str):
        raise ProfileError(f"{src}: key '{key}.name': every variant needs a name, got {variant.get('name')!r}")
    # The name becomes part of file names (checkpoints/finetuned_e2e_<name>.safetensors, train_e2e_<name>/).
    _require(bool(_FILE_NAME_RE.match(variant["name"])) and ".." not in variant["name"], src, f"{key}.name",
             variant["name"], "expected a name of letters, digits and '._+-' (it becomes part of file names)")
    merged = {**dataclasses.asdict(base), **{k: v for k, v in variant.items() if k != "name"}}
    _build(E2ECfg, merged, key, src)


# --------------------------------------------------------------------------------------- generic builder
def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        (inner,) = typing.get_args(tp) or (Any,)
        return f"a list of {_type_name(inner)}"
    if origin is dict:
        return "a mapping"
    if tp is type(None):
        return "null"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(tp, str(tp))


def _coerce(tp: Any, value: Any, key: str, src: str) -> Any:
    """Check ``value`` against the type hint ``tp`` and return it in canonical form."""

    def fail() -> typing.NoReturn:
        raise ProfileError(f"{src}: key '{key}': expected {_type_name(tp)}, got {value!r}")

    if tp is Any:
        return value
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            fail()
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, key, src)
            except ProfileError:
                if len([a for a in args if a is not type(None)]) == 1:
                    raise
        fail()
    if origin is Literal:
        if isinstance(value, str) and value in typing.get_args(tp):
            return value
        fail()
    if origin is list:
        if not isinstance(value, (list, tuple)):
            fail()
        (inner,) = typing.get_args(tp)
        return [_coerce(inner, v, f"{key}[{i}]", src) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            fail()
        return copy.deepcopy(value)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key, src)
    if tp is bool:
        if isinstance(value, bool):
            return value
        fail()
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        fail()
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "3e-5" as a string
            try:
                return float(value)
            except ValueError:
                fail()
        fail()
    if tp is str:
        if isinstance(value, str):
            return value
        fail()
    raise TypeError(f"unsupported type hint {tp!r} for key {key}")  # a schema bug, not a user error


def _build(cls: type, data: Any, where: str, src: str) -> Any:
    if not isinstance(data, dict):
        raise ProfileError(f"{src}: key '{where or '<top level>'}': expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields_by_name = {f.name: f for f in dataclasses.fields(cls)}
    for k in data:
        if not isinstance(k, str) or k not in fields_by_name or k == "source":
            close = difflib.get_close_matches(str(k), list(fields_by_name), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(sorted(fields_by_name))}"
            raise ProfileError(f"{src}: unknown key '{_join(where, k)}'{hint}")
    kwargs = {}
    for name, f in fields_by_name.items():
        if name in data:
            kwargs[name] = _coerce(hints[name], data[name], _join(where, name), src)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ProfileError(f"{src}: missing required key '{_join(where, name)}'")
    return cls(**kwargs)


def _join(where: str, key: Any) -> str:
    return f"{where}.{key}" if where else str(key)


# ------------------------------------------------------------------------------------------------ loading
def _packaged_dir():
    return resources.files("wiseft").joinpath("profiles")


def list_profiles() -> list[tuple[str, str]]:
    """``(name, description)`` of every packaged profile, sorted by name."""
    out = []
    for entry in sorted(_packaged_dir().iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            raw = yaml.safe_load(entry.read_text(encoding="utf-8")) or {}
            out.append((entry.name[:-5], str(raw.get("description", "")).strip()))
    return out


def _read_yaml(name_or_path: str | Path) -> tuple[dict[str, Any], str]:
    """Read a packaged profile by name or a YAML file by path; return the mapping and its source label."""
    text = str(name_or_path)
    path = Path(text).expanduser()
    if text.endswith((".yaml", ".yml")) or path.exists():
        if not path.is_file():
            raise ProfileError(f"profile file {str(path)!r} does not exist")
        source = str(path)
        try:
            body = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ProfileError(f"{source}: cannot be read as UTF-8 text ({e})") from e
    else:
        entry = _packaged_dir().joinpath(f"{text}.yaml")
        if not entry.is_file():
            known = ", ".join(n for n, _ in list_profiles())
            raise ProfileError(f"unknown profile {text!r}; packaged profiles: {known} (or give a path to a .yaml file)")
        source, body = f"wiseft/profiles/{text}.yaml", entry.read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(body)
    except yaml.YAMLError as e:
        raise ProfileError(f"{source}: not valid YAML: {e}") from e
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ProfileError(f"{source}: expected a mapping of keys at the top level, got {type(raw).__name__}")
    _check_extent(raw, source)  # before `extends` merges it into another profile
    return raw, source


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in top.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _resolve_extends(raw: dict[str, Any], source: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    parent = raw.get("extends")
    if parent is None:
        return raw
    if not isinstance(parent, str):
        raise ProfileError(f"{source}: key 'extends': expected a profile name or path, got {parent!r}")
    if parent in seen:
        raise ProfileError(f"{source}: key 'extends': circular inheritance through {parent!r}")
    base_raw, base_src = _read_yaml(parent)
    base_raw = _resolve_extends(base_raw, base_src, (*seen, parent))
    child = {k: v for k, v in raw.items() if k != "extends"}
    merged = _deep_merge(base_raw, child)
    if "name" not in child:  # a derived profile is its own run, not its parent's
        merged.pop("name", None)
    return merged


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` strings to a raw profile mapping; values are parsed as YAML.

    Raises:
        ProfileError: for a malformed override or a path through a non-mapping.
    """
    out = copy.deepcopy(raw)
    for item in overrides:
        if not isinstance(item, str) or "=" not in item:
            raise ProfileError(f"--set {item!r}: expected key=value, for example finetune.e2e.lr=1e-5")
        key, _, text = item.partition("=")
        key = key.strip()
        parts = key.split(".")
        if not key or any(not p for p in parts):
            raise ProfileError(f"--set {item!r}: empty key")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as e:
            raise ProfileError(f"--set {item!r}: value is not valid YAML: {e}") from e
        node = out
        for i, part in enumerate(parts[:-1]):
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            if not isinstance(nxt, dict):
                raise ProfileError(f"--set {item!r}: '{'.'.join(parts[: i + 1])}' is not a mapping")
            node = nxt
        node[parts[-1]] = value
    return out


def profile_from_dict(raw: Any, source: str = "<profile>", default_name: str | None = None,
                      check_references: bool = True, base_dir: str | Path | None = None) -> Profile:
    """Validate a raw mapping and build a :class:`Profile`.

    Args:
        raw: the mapping read from YAML (after ``extends`` and overrides).
        source: file name used in error messages.
        default_name: the name to use when the mapping has none (the file's stem).
        check_references: also check that datasets, models, template sets and files exist.
        base_dir: folder that relative paths in the profile (``data.configs``) are relative to.

    Raises:
        ProfileError: for every kind of invalid input; never another exception type.
    """
    if not isinstance(raw, dict):
        raise ProfileError(f"{source}: expected a mapping of keys at the top level, got {type(raw).__name__}")
    _check_extent(raw, source)
    raw = dict(raw)
    if "name" not in raw and default_name is not None:
        raw["name"] = default_name
    profile = _build(Profile, raw, "", source)
    profile.source = source
    _require(bool(profile.name.strip()), source, "name", profile.name, "expected a non-empty name")
    # The run folder is runs/<safe_name(name)>: a name must keep at least one usable character.
    _require(bool(_SAFE_CHARS_RE.sub("", profile.name).strip("._")), source, "name", profile.name,
             "expected a name with letters or digits (it names the run folder)")
    _check_ranges(profile, source)
    if check_references:
        _check_references(profile, source, Path(base_dir) if base_dir is not None else None)
    return profile


#: A profile is a few hundred values; YAML aliases can make a short file expand to billions, or refer to itself.
_MAX_VALUES = 100_000
_MAX_DEPTH = 64


def _check_extent(raw: Any, source: str) -> None:
    """Refuse a mapping that expands to too many values or nests too deeply (self-referring YAML aliases), before
    anything copies, hashes or dumps it."""
    stack, seen = [(raw, 0)], 0
    while stack:
        node, depth = stack.pop()
        seen += 1
        if seen > _MAX_VALUES:
            raise ProfileError(f"{source}: the profile expands to more than {_MAX_VALUES} values (YAML aliases "
                               f"repeated inside each other?); write the values out instead")
        if depth > _MAX_DEPTH:
            raise ProfileError(f"{source}: values nested more than {_MAX_DEPTH} levels deep (a YAML alias that "
                               f"refers to itself?)")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, (list, tuple)):
            stack.extend((v, depth + 1) for v in node)


def load_profile(name_or_path: str | Path, overrides: Sequence[str] = (), check_references: bool = True) -> Profile:
    """Load a packaged profile by name, or a YAML file by path, apply ``--set`` overrides and validate.

    Raises:
        ProfileError: naming the file, the key and the bad value.
    """
    raw, source = _read_yaml(name_or_path)
    raw = _resolve_extends(raw, source)
    raw = apply_overrides(raw, list(overrides))
    stem = Path(str(name_or_path)).stem
    base_dir = Path(source).parent if Path(source).is_file() else None
    if overrides:
        source = f"{source} (with --set {' '.join(overrides)})"
    return profile_from_dict(raw, source, default_name=stem, check_references=check_references, base_dir=base_dir)


def profile_to_dict(profile: Profile) -> dict[str, Any]:
    """A plain mapping of the profile (for ``profile.yaml`` in a run folder and for hashing)."""
    out = dataclasses.asdict(profile)
    out.pop("source", None)
    return out


def dump_profile(profile: Profile) -> str:
    """The profile as YAML text."""
    return yaml.safe_dump(profile_to_dict(profile), sort_keys=False)


# ------------------------------------------------------------------------------------ reference checks
def _check_references(p: Profile, src: str, base_dir: Path | None = None) -> None:
    """Names that must exist somewhere else: datasets, models, template sets, files."""
    from . import registries

    base = base_dir or Path(".")
    for i, item in enumerate(p.data.configs):
        path = Path(item).expanduser()
        path = path if path.is_absolute() or path.is_file() else base / path
        if not path.is_file():
            raise ProfileError(f"{src}: key 'data.configs[{i}]': dataset config file {item!r} does not exist")
        problem = registries.add_datasets(path)
        if problem:
            raise ProfileError(f"{src}: key 'data.configs[{i}]': {problem}")
        p.data.configs[i] = str(path.resolve())
    for key, names in (("data.reference", [p.data.reference]), ("data.shifts", p.data.shifts),
                       ("data.extra", p.data.extra), ("suite", p.suite),
                       ("data.border_crop", list(p.data.border_crop))):
        for name in names:
            problem = registries.check_dataset(name)
            if problem:
                raise ProfileError(f"{src}: key '{key}': {problem}")
    problem = registries.check_model(p.model.name, p.model.pretrained)
    if problem:
        raise ProfileError(f"{src}: key 'model': {problem}")
    if p.templates is not None:
        problem = registries.check_templates(p.templates)
        if problem:
            raise ProfileError(f"{src}: key 'templates': {problem}")
    if p.world.name is not None:
        from .world import check_world_tag

        problem = check_world_tag(f"world:{p.world.name}")
        if problem:
            raise ProfileError(f"{src}: key 'world.name': {problem}")
    if p.figures.baseline_models is not None and not Path(p.figures.baseline_models).expanduser().is_file():
        raise ProfileError(f"{src}: key 'figures.baseline_models': file {p.figures.baseline_models!r} does not exist")
