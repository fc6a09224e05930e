"""The embedded offline world: a laptop-scale replica of the paper's setting, and its small CLIP.

Ten digit classes drawn from material inside installed packages (matplotlib's fonts, scikit-learn's handwritten
digits, pen strokes drawn with PIL): a broad image–caption set for contrastive pretraining, a narrow reference task
(``world-print``: clean printed digits, black on white) and six shifts of it. A small open_clip CLIP
(``wiseft-mini-clip``) is pretrained on the pairs in under 5 minutes on 2 CPU cores (wiseft ships the ``mini``
result, see :func:`ensure_pretrained`). Both are cached by content hash, so they are built once per setting.
Importing this package after open_clip registers the model config with open_clip (and its image tower with timm);
otherwise :func:`register_model_configs` does. Importing it also registers ``pretrained: world:<name>`` with
:func:`wiseft.models.register_pretrained_resolver`.

Example:
    >>> import open_clip
    >>> from wiseft.world import ensure_world, resolve_world_pretrained
    >>> root = ensure_world("mini")                          # draws ~43k images once (about a minute)
    >>> weights = resolve_world_pretrained("world:mini")     # the shipped weights, or pretrains once (~5 min)
    >>> model, _, preprocess = open_clip.create_model_and_transforms("wiseft-mini-clip", pretrained=str(weights))
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import sys
import time
from importlib import resources
from pathlib import Path

from ..models import register_pretrained_resolver
from .build import REFERENCE_DATASET, WorldSpec, build_world, class_dir_names, world_dir, world_hash
from .pretrain import PretrainSpec, pretrain_clip, save_pretrained, zero_shot_accuracy
from .worlds import (WORLD_PREFIX, check_world_tag, classnames, get_world_cfg, list_worlds, parse_world_tag,
                     templates, world_datasets)

log = logging.getLogger(__name__)

__all__ = ["MODEL_NAME", "WORLD_PREFIX", "WorldSpec", "PretrainSpec", "register_model_configs", "list_worlds",
           "get_world_cfg", "world_spec", "pretrain_spec", "ensure_world", "ensure_pretrained", "pretrained_path",
           "resolve_world_pretrained", "world_root", "parse_world_tag", "check_world_tag", "classnames", "templates",
           "world_datasets", "class_dir_names", "world_hash"]

#: the open_clip model config of the world's CLIP.
MODEL_NAME = "wiseft-mini-clip"
#: the world this process prepared (JSON: name, folder, weights). An environment variable, so that processes
#: started afterwards (papermill kernels of a ``wiseft run``) find the same world as the run that drew it.
ACTIVE_ENV = "WISEFT_WORLD_ACTIVE"


def _active() -> dict:
    try:
        state = json.loads(os.environ.get(ACTIVE_ENV) or "{}")
    except ValueError:
        log.warning("ignoring $%s: not JSON", ACTIVE_ENV)
        return {}
    return state if isinstance(state, dict) else {}


def _remember(**items) -> None:
    state = _active()
    if items.get("name") != state.get("name"):
        state = {}
    state.update({k: str(v) for k, v in items.items()})
    os.environ[ACTIVE_ENV] = json.dumps(state)


def register_model_configs() -> None:
    """Register ``wiseft-mini-clip`` with open_clip and its image tower with timm (idempotent)."""
    import open_clip

    from . import towers  # noqa: F401  (importing registers ``wiseft_mini_convnext`` with timm)

    if MODEL_NAME in open_clip.list_models():
        return
    with resources.as_file(resources.files("wiseft.world").joinpath(f"{MODEL_NAME}.json")) as path:
        open_clip.add_model_config(Path(path))


def world_spec(name: str = "mini", seed: int | None = None) -> WorldSpec:
    """The generator settings of packaged world ``name``, with an optional seed override."""
    spec = WorldSpec.from_dict(get_world_cfg(name)["world"], where=f"worlds.yaml: {name}.world")
    return spec if seed is None else dataclasses.replace(spec, seed=seed)


def pretrain_spec(name: str = "mini", seed: int | None = None) -> PretrainSpec:
    """The pretraining settings of packaged world ``name``, with an optional seed override."""
    spec = PretrainSpec.from_dict(get_world_cfg(name)["pretrain"], where=f"worlds.yaml: {name}.pretrain")
    return spec if seed is None else dataclasses.replace(spec, seed=seed)


def _root(root: str | os.PathLike | None) -> Path:
    from ..paths import cache_dir

    return Path(root).expanduser() if root is not None else cache_dir() / "world"


def ensure_world(name: str = "mini", *, seed: int | None = None, root: str | os.PathLike | None = None,
                 workers: int = 1, spec: WorldSpec | None = None) -> Path:
    """The folder of a built world, drawing it first if it is not cached.

    Args:
        name: packaged world (``mini``, ``tiny``); ignored when ``spec`` is given.
        seed: overrides the world's seed (another seed is another world, cached separately).
        root: folder holding built worlds (default ``<cache>/world``).
        workers: processes drawing images (the images do not depend on it).
        spec: explicit generator settings (tests, experiments).

    Raises:
        ProfileError: for an unknown world name.
    """
    if spec is None:
        spec = world_spec(name, seed)
    folder = build_world(spec, _root(root), workers=workers)
    _remember(name=name, folder=folder)
    return folder


def world_root() -> Path:
    """The folder of the active world (the dataset registry's ``root: world``).

    That is the world last drawn or found by :func:`ensure_world` in this process or in the process that started
    it (``$WISEFT_WORLD_ACTIVE``), else the folder of the default ``mini`` world, which may not exist yet
    (``python data_prep/build_world.py`` draws it). Nothing is built here.
    """
    folder = _active().get("folder")
    if folder:
        return Path(folder)
    return world_dir(world_spec("mini"), _root(None))


#: the modules whose code decides the pretrained weights (the training loop and the image tower): hashed into
#: the weights' name, so that editing either pretrains anew instead of reusing (or shipping) stale weights.
PRETRAIN_CODE = ("pretrain.py", "towers.py")


def _model_key(wspec: WorldSpec, pspec: PretrainSpec, device_type: str) -> str:
    import open_clip
    import timm
    import torch

    from ..io import stable_hash

    register_model_configs()
    config = open_clip.get_model_config(pspec.model_name)
    code = hashlib.sha256()
    for module in PRETRAIN_CODE:
        code.update(resources.files("wiseft.world").joinpath(module).read_bytes())
    return stable_hash({"world": world_hash(wspec), "pretrain": dataclasses.asdict(pspec), "config": config,
                        "code": code.hexdigest(), "device": device_type,
                        "versions": [torch.__version__, open_clip.__version__, timm.__version__]})


def pretrained_path(name: str = "mini", *, seed: int | None = None, root: str | os.PathLike | None = None,
                    device: str = "cpu", world: WorldSpec | None = None, pretrain: PretrainSpec | None = None) -> Path:
    """Where the pretrained weights of a world live (whether or not they exist yet)."""
    from ..device import resolve_device

    wspec = world if world is not None else world_spec(name, seed)
    pspec = pretrain if pretrain is not None else pretrain_spec(name, seed)
    key = _model_key(wspec, pspec, resolve_device(device).type)
    return _root(root) / "models" / f"{pspec.model_name}-{key}.safetensors"


def ensure_pretrained(name: str = "mini", *, seed: int | None = None, root: str | os.PathLike | None = None,
                      device: str = "cpu", workers: int = 1, world: WorldSpec | None = None,
                      pretrain: PretrainSpec | None = None, packaged: bool = True) -> Path:
    """The safetensors file of a world's pretrained CLIP, building the world and pretraining first if needed.

    wiseft ships the ``mini`` world's CLIP (``wiseft/world/weights/``, made by ``python data_prep/build_world.py``):
    when a shipped file has the very name this setting would get (its name hashes the world, the pretraining
    settings and code, the device type and the torch/open_clip/timm versions), it is copied into the cache
    instead of pretraining again, which takes under 5 minutes on 2 cores.

    Args:
        name: packaged world (``mini``, ``tiny``); ignored for the parts given as ``world`` / ``pretrain``.
        seed: overrides both the world's and the pretraining's seed.
        root: folder holding built worlds and models (default ``<cache>/world``).
        device: where to pretrain; only ``"cpu"`` repeats bit for bit (and is part of the cache key).
        workers: processes drawing the world's images.
        world, pretrain: explicit settings (tests, experiments).
        packaged: use a shipped file of the same setting when there is one; ``False`` always pretrains here.

    Returns:
        Path of ``<model>-<hash>.safetensors``; ``<model>-<hash>.json`` beside it holds the provenance.

    Raises:
        ProfileError: for an unknown world name.
    """
    wspec = world if world is not None else world_spec(name, seed)
    pspec = pretrain if pretrain is not None else pretrain_spec(name, seed)
    path = pretrained_path(name, seed=seed, root=root, device=device, world=wspec, pretrain=pspec)

    def cached() -> bool:  # the weights and their sidecar (written last) are both there
        return path.is_file() and path.with_suffix(".json").is_file()

    if cached() or (packaged and _install_packaged(path)):
        log.debug("reusing the pretrained world CLIP at %s", path)
        _remember(name=name, folder=world_dir(wspec, _root(root)), weights=path)
        return path
    folder = build_world(wspec, _root(root), workers=workers)
    log.info("pretraining the world CLIP (%s, %d steps of %d pairs); this happens once per setting",
             pspec.model_name, pspec.steps, pspec.batch_size)
    model, stats = pretrain_clip(folder, pspec, device=device)
    zs = zero_shot_accuracy(model, folder, REFERENCE_DATASET, "val", pspec.model_name)
    log.info("pretrained in %.0f s (reading the pairs %.0f s, training %.0f s, %.0f CPU s); zero-shot top-1 on "
             "%s/val: %.1f%%", stats["load_seconds"] + stats["wall_seconds"], stats["load_seconds"],
             stats["wall_seconds"], stats["cpu_seconds"], REFERENCE_DATASET, 100 * zs)
    pp = model.visual.preprocess_cfg
    sidecar = {"format": "wiseft-world-clip", "model_name": pspec.model_name, "world": name,
               "world_hash": folder.name, "world_spec": dataclasses.asdict(wspec),
               "pretrain_spec": dataclasses.asdict(pspec), "stats": stats,
               "zero_shot_val_top1": round(zs, 5), "image_size": wspec.image_size,
               "normalization": {"mean": list(pp["mean"]), "std": list(pp["std"])},
               "classnames": classnames(), "templates": templates(),
               "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    save_pretrained(model, path, sidecar)
    _remember(name=name, folder=folder, weights=path)
    return path


#: where the pretrained world CLIPs that ship with wiseft lie (``<model>-<hash>.safetensors`` + ``.json``)
PACKAGED_WEIGHTS = "weights"


def packaged_weights_dir() -> Path:
    """The folder of the shipped pretrained world CLIPs inside the installed package."""
    return Path(str(resources.files("wiseft.world").joinpath(PACKAGED_WEIGHTS)))


def _install_packaged(path: Path) -> bool:
    """Copy the shipped weights named like ``path`` (and their sidecar) into the cache, checking their sha256.

    Returns ``False`` when nothing of that name ships (another seed, device or library version); a shipped file
    whose checksum does not match its sidecar raises :class:`CheckpointError` rather than being used.
    """
    import shutil

    from ..errors import CheckpointError
    from ..io import atomic_path, atomic_write_json, sha256_file

    source = packaged_weights_dir() / path.name
    sidecar = source.with_suffix(".json")
    if not (source.is_file() and sidecar.is_file()):
        return False
    meta = json.loads(sidecar.read_text(encoding="utf-8"))
    digest = sha256_file(source)
    if meta.get("tensors_sha256") != digest:
        raise CheckpointError(f"{source}: sha256 {digest} does not match {sidecar.name} "
                              f"({meta.get('tensors_sha256')}); reinstall wiseft or delete the file to pretrain")
    log.info("using the pretrained world CLIP that ships with wiseft (%s), made by pretraining this very "
             "setting; nothing is trained", source.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        shutil.copyfile(source, tmp)
    atomic_write_json(path.with_suffix(".json"), meta)
    return True


def resolve_world_pretrained(tag: str, **kwargs) -> Path:
    """Resolve a ``pretrained: world:<name>`` tag to its weights file, building the world and model if missing.

    Without keyword arguments, the weights this process (or its parent ``wiseft run``) prepared for that world
    are used, so a profile's ``world:`` overrides (seed, root) carry over; otherwise the keyword arguments go to
    :func:`ensure_pretrained` (``root``, ``device``, ``workers``, ``seed``).

    Raises:
        ProfileError: if ``tag`` is not ``world:<name>`` with a known name (the message lists the known worlds).
    """
    name = parse_world_tag(tag)
    active = _active()
    if not kwargs and active.get("name") == name and active.get("weights") and Path(active["weights"]).is_file():
        return Path(active["weights"])
    return ensure_pretrained(name, **kwargs)


# ``pretrained: world:<name>`` resolves here, and the world's CLIP config registers with open_clip when needed.
register_pretrained_resolver(WORLD_PREFIX.rstrip(":"), resolve_world_pretrained, register_model_configs)

# Register now only when open_clip is already loaded: importing it costs seconds, which notebooks that only read
# results should not pay. wiseft.models.ensure_model_config and the pretraining register it when they need it.
if "open_clip" in sys.modules:
    register_model_configs()
