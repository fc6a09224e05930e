"""Which looks make up each dataset of the world.

A recipe turns ``(rng, digit)`` into a :class:`~wiseft.world.render.Look`. The pretraining recipe is broad (every
font, handwriting, pen strokes, colours, backgrounds, rotations, outlines, blur and noise); the reference recipe is
narrow (clean printed digits in a few fonts, black on white); each shift changes one factor of the reference.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .render import FONT_FILES, Look, handwritten_digits

__all__ = ["REFERENCE_FONTS", "SHIFT_FONTS", "PRETRAIN_FONTS", "SHIFTS", "RECIPES", "handwritten_pool", "recipe"]

#: the fonts of the reference task (fine-tuned on).
REFERENCE_FONTS = ("dejavu-sans", "dejavu-serif", "dejavu-mono")
#: fonts of the "fonts" shift: never seen in fine-tuning, seen among many others in pretraining.
SHIFT_FONTS = ("stix", "stix-italic", "cm-roman", "cm-italic", "cm-sans", "cm-typewriter", "cm-oldstyle",
               "dejavu-serif-bolditalic")
PRETRAIN_FONTS = tuple(FONT_FILES)

#: the named distribution shifts of the reference task.
SHIFTS = ("handwritten", "fonts", "colour", "rotation", "sketch", "noise")


def handwritten_pool(split: str) -> np.ndarray:
    """Indices of scikit-learn digits for ``"pretrain"`` (first half) or ``"shift"`` (second half).

    The halves never overlap, so the handwritten shift shows writing the zero-shot model has not seen.
    """
    n = len(handwritten_digits()[1])
    half = n // 2
    return np.arange(0, half) if split == "pretrain" else np.arange(half, n)


def _luma(rgb: np.ndarray) -> float:
    return float(rgb @ np.array([0.299, 0.587, 0.114]) / 255.0)


def _contrasting_pair(rng: np.random.Generator, min_contrast: float = 0.4) -> tuple[tuple, tuple]:
    """Random foreground and background colours whose brightness differs by at least ``min_contrast``.

    A foreground too close to the background is blended toward black or white (whichever is farther) just
    enough, so hue stays random and no rejection loop is needed.
    """
    fg, bg = rng.integers(0, 256, 3).astype(np.float64), rng.integers(0, 256, 3).astype(np.float64)
    lf, lb = _luma(fg), _luma(bg)
    if abs(lf - lb) < min_contrast:
        target, want = (0.0, lb - min_contrast) if lb > 0.5 else (255.0, lb + min_contrast)
        t = (want - lf) / (target / 255.0 - lf)
        fg = fg + t * (target - fg)
    if rng.random() < 0.5:
        fg, bg = bg, fg
    return tuple(int(round(v)) for v in np.clip(fg, 0, 255)), tuple(int(v) for v in bg)


def _ink_on_paper(rng: np.random.Generator) -> tuple[tuple, tuple]:
    ink, paper = int(rng.integers(0, 40)), int(rng.integers(220, 256))
    return (ink, ink, ink), (paper, paper, paper)


def _reference_geometry(rng: np.random.Generator) -> dict:
    return dict(height=rng.uniform(0.55, 0.85), aspect=rng.uniform(0.85, 1.15), rotation=rng.uniform(-8, 8),
                dx=rng.uniform(-0.1, 0.1), dy=rng.uniform(-0.08, 0.08), weight=int(rng.integers(-1, 3)))


def _reference(rng: np.random.Generator, digit: int, **over) -> Look:
    fg, bg = _ink_on_paper(rng)
    kw = dict(digit=digit, source="font", font=str(rng.choice(REFERENCE_FONTS)), fg=fg, bg=bg,
              **_reference_geometry(rng))
    kw.update(over)
    return Look(**kw)


def _shift_handwritten(rng: np.random.Generator, digit: int, pool: np.ndarray) -> Look:
    labels = handwritten_digits()[1]
    candidates = pool[labels[pool] == digit]
    look = _reference(rng, digit, source="handwritten", font=None, sample=int(rng.choice(candidates)))
    return look


def _shift_fonts(rng: np.random.Generator, digit: int) -> Look:
    return _reference(rng, digit, font=str(rng.choice(SHIFT_FONTS)))


def _shift_colour(rng: np.random.Generator, digit: int) -> Look:
    fg, bg = _contrasting_pair(rng)
    _, bg2 = _contrasting_pair(rng)
    kind = str(rng.choice(["flat", "gradient"], p=[0.6, 0.4]))
    return _reference(rng, digit, fg=fg, bg=bg, bg2=bg2 if kind != "flat" else None, background=kind)


def _shift_rotation(rng: np.random.Generator, digit: int) -> Look:
    angle = rng.uniform(25, 50) * rng.choice([-1, 1])
    return _reference(rng, digit, rotation=float(angle))


def _shift_sketch(rng: np.random.Generator, digit: int) -> Look:
    return _reference(rng, digit, outline=True, weight=int(rng.integers(2, 5)))


def _shift_noise(rng: np.random.Generator, digit: int) -> Look:
    return _reference(rng, digit, blur=rng.uniform(0.6, 1.1), noise=rng.uniform(0.15, 0.3))


def _pretrain(rng: np.random.Generator, digit: int, pool: np.ndarray) -> Look:
    """The broad pretraining distribution: every factor varies, each often enough to be learned."""
    source = str(rng.choice(["font", "handwritten", "pen"], p=[0.6, 0.2, 0.2]))
    kw: dict = dict(digit=digit, source=source)
    if source == "font":
        kw["font"] = str(rng.choice(PRETRAIN_FONTS))
    elif source == "handwritten":
        labels = handwritten_digits()[1]
        kw["sample"] = int(rng.choice(pool[labels[pool] == digit]))
    kw.update(height=rng.uniform(0.45, 0.9), aspect=rng.uniform(0.75, 1.25),
              shear=rng.uniform(-0.2, 0.2) * (rng.random() < 0.3),
              dx=rng.uniform(-0.15, 0.15), dy=rng.uniform(-0.12, 0.12), weight=int(rng.integers(-1, 4)))
    kw["rotation"] = rng.uniform(-12, 12) if rng.random() < 0.7 else rng.uniform(20, 55) * rng.choice([-1, 1])
    if rng.random() < 0.35:
        kw["fg"], kw["bg"] = _ink_on_paper(rng)
    else:
        kw["fg"], kw["bg"] = _contrasting_pair(rng)
        kind = str(rng.choice(["flat", "gradient", "texture"], p=[0.5, 0.3, 0.2]))
        if kind != "flat":
            kw["background"], kw["bg2"] = kind, _contrasting_pair(rng)[1]
    if rng.random() < 0.2:
        kw["outline"], kw["weight"] = True, int(rng.integers(2, 5))
    if rng.random() < 0.25:
        kw["blur"] = rng.uniform(0.5, 1.2)
    if rng.random() < 0.25:
        kw["noise"] = rng.uniform(0.08, 0.3)
    return Look(**kw)


def recipe(name: str) -> Callable[[np.random.Generator, int], Look]:
    """The look sampler of dataset ``name`` (``"pretrain"``, ``"reference"`` or a shift)."""
    if name == "pretrain":
        pool = handwritten_pool("pretrain")
        return lambda rng, digit: _pretrain(rng, digit, pool)
    if name == "handwritten":
        pool = handwritten_pool("shift")
        return lambda rng, digit: _shift_handwritten(rng, digit, pool)
    if name not in RECIPES:
        raise KeyError(f"unknown world recipe {name!r}; known: {', '.join(['pretrain', 'handwritten', *RECIPES])}")
    return RECIPES[name]


RECIPES: dict[str, Callable[[np.random.Generator, int], Look]] = {
    "reference": _reference,
    "fonts": _shift_fonts,
    "colour": _shift_colour,
    "rotation": _shift_rotation,
    "sketch": _shift_sketch,
    "noise": _shift_noise,
}
