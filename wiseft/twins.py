"""Reduced twins of open_clip models: the same family and input geometry, a fraction of the width and depth.

A rehearsal runs a profile's whole pipeline on the CPU in minutes, so a ViT-L/14@336px cannot take part as it
is. Its twin ``rehearsal-ViT-L-14-336`` keeps what the pipeline's code paths depend on (a ViT image tower with
the same patch size, open_clip's preprocessing and tokenizer, the same text context and vocabulary) and shrinks
what only costs time: widths, depths, heads, and the number of patches (a 4×4 grid, so 56 px for /14).
The twin is an ordinary open_clip model config, registered with ``open_clip.add_model_config`` on first use,
so every process (each notebook kernel too) resolves the name the same way.
"""

from __future__ import annotations

import copy
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["TWIN_PREFIX", "TWIN_SIZES", "twin_name", "is_twin", "twin_config", "register_twin", "describe_twin"]

#: Model names that start with this are rehearsal twins of the open_clip model named by the rest.
TWIN_PREFIX = "rehearsal-"

#: The twin's sizes: widths and depths small enough for a CPU, heads of 32 channels as open_clip's ViTs, and a
#: ViT's image cut to ``vision_patches`` × ``vision_patches`` patches of the real patch size (a 4×4 grid of 16 px
#: patches, 64 px, for ViT-B/16), so that a 336 px model costs no more than a 224 px one.
TWIN_SIZES = {"embed_dim": 32, "vision_width": 64, "vision_layers": 2, "vision_head_width": 32,
              "vision_patches": 4, "text_width": 32, "text_layers": 1, "text_heads": 1}


def twin_name(model_name: str) -> str:
    """The twin of ``model_name`` (a twin is its own twin)."""
    return model_name if is_twin(model_name) else f"{TWIN_PREFIX}{model_name}"


def is_twin(model_name: str) -> bool:
    return model_name.startswith(TWIN_PREFIX)


def twin_config(model_name: str) -> dict[str, Any] | None:
    """The open_clip config of ``model_name``'s twin, or ``None`` when open_clip does not know the model.

    Args:
        model_name: the real model (``ViT-B-16``) or its twin's name (``rehearsal-ViT-B-16``).
    """
    import open_clip

    real = model_name[len(TWIN_PREFIX):] if is_twin(model_name) else model_name
    cfg = open_clip.get_model_config(real)
    if cfg is None:
        return None
    cfg = copy.deepcopy(cfg)
    s = TWIN_SIZES
    cfg["embed_dim"] = s["embed_dim"]
    vision, text = cfg.get("vision_cfg", {}), cfg.get("text_cfg", {})
    if "timm_model_name" not in vision:  # open_clip's own ViT (or ResNet): shrink it in place
        if isinstance(vision.get("layers"), int):
            if "patch_size" in vision:
                vision["image_size"] = int(vision["patch_size"]) * s["vision_patches"]
            vision["layers"] = s["vision_layers"]
            vision["width"] = s["vision_width"]
            vision["head_width"] = s["vision_head_width"]
        else:  # ModifiedResNet: layers per stage
            vision["layers"] = [1] * len(vision.get("layers") or [1, 1, 1, 1])
            vision["width"] = s["vision_width"]
    text.update(width=s["text_width"], layers=s["text_layers"], heads=s["text_heads"])
    return cfg


def register_twin(model_name: str) -> bool:
    """Register the twin ``model_name`` (``rehearsal-<real>``) with open_clip; ``False`` for an unknown model."""
    import open_clip

    if not is_twin(model_name):
        return False
    if open_clip.get_model_config(model_name) is not None:
        return True
    cfg = twin_config(model_name)
    if cfg is None:
        return False
    with tempfile.TemporaryDirectory(prefix="wiseft-twin-") as tmp:
        path = Path(tmp) / f"{model_name}.json"  # open_clip names the config after the file's stem
        path.write_text(json.dumps(cfg), encoding="utf-8")
        open_clip.add_model_config(path)
    log.debug("registered rehearsal twin %s", model_name)
    return True


def describe_twin(model_name: str) -> str:
    """One line: which model the twin stands for and how it is reduced."""
    cfg = twin_config(model_name)
    real = model_name[len(TWIN_PREFIX):] if is_twin(model_name) else model_name
    if cfg is None:
        return f"{model_name}: no open_clip config for {real!r}"
    v, t = cfg["vision_cfg"], cfg["text_cfg"]
    tower = f"patch {v['patch_size']}, " if "patch_size" in v else ""
    return (f"{twin_name(model_name)}: twin of {real} at random init (image tower {tower}{v.get('image_size')} px, "
            f"width {v.get('width')}, {v.get('layers')} layer(s); text width {t['width']}, {t['layers']} layer(s); "
            f"embedding {cfg['embed_dim']})")
