"""Which looks make up each dataset of the world.

A recipe turns ``(rng, digit)`` into a :class:`~wiseft.world.render.Look`.

- Pretraining is broad: ten fonts (STIX and Computer Modern), handwriting, pen strokes, random colours and
  backgrounds, rotations, outlines, blur and noise.
- The reference task is narrow: clean printed digits in the three DejaVu fonts, black on white, upright. The
  pretraining never shows the DejaVu families, so it covers the reference only loosely (through similar fonts):
  the zero-shot model is good but not perfect on it, and fine-tuning has something to learn.
- The shifts are other renditions of the digits, as ImageNet-R or -Sketch are of ImageNet: the pretraining fonts in
  black on white ("fonts"), in colour, rotated, as outlines, under noise and blur, and handwriting.

Every factor of a shift occurs in pretraining, so the zero-shot model is robust to it; fine-tuning on the narrow
reference forgets part of that.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .render import FONT_FILES, Look, handwritten_digits

__all__ = ["REFERENCE_FONTS", "SHIFT_FONTS", "SHIFT_BASE_FONTS", "PRETRAIN_FONTS", "SHIFTS", "RECIPES",
           "handwritten_pool", "recipe"]

#: the fonts of the reference task (fine-tuned on).
REFERENCE_FONTS = ("dejavu-sans", "dejavu-serif", "dejavu-mono")
#: fonts of pretraining: every bundled family except the reference's.
PRETRAIN_FONTS = tuple(f for f in FONT_FILES if not f.startswith("dejavu"))
#: fonts of the "fonts" shift (black on white).
SHIFT_FONTS = ("stix", "stix-italic", "cm-roman", "cm-italic", "cm-sans", "cm-typewriter", "cm-oldstyle")
#: fonts of the colour, rotation, sketch and noise shifts.
SHIFT_BASE_FONTS = PRETRAIN_FONTS

#: the named distribution shifts of the reference task.
SHIFTS = ("handwritten", "fonts", "colour", "rotation", "sketch", "noise")

# Severity of the shifts and the make-up of the pretraining set (tuned so that the zero-shot model is robust
# to the shifts and fine-tuning on the reference loses part of that robustness).
ROTATION_DEGREES = (20.0, 40.0)  # |angle| of the rotation shift
SKETCH_WEIGHT = (3, 6)  # stroke dilation before outlining (bolder glyphs give readable outlines)
NOISE_STD = (0.08, 0.16)  # pixel noise of the noise shift
BLUR_RADIUS = (0.4, 0.8)  # Gaussian blur of the noise shift
PRETRAIN_PLAIN = 0.15  # fraction of pretraining images that are dark ink on light paper, like the reference
PRETRAIN_SOURCES = (0.55, 0.25, 0.2)  # pretraining glyphs: fonts, scikit-learn handwriting, pen strokes


def handwritten_pool(split: str) -> np.ndarray:
    """Indices of scikit-learn digits for ``"pretrain"`` (first half) or ``"shift"`` (second half).

    The halves never overlap, so the handwritten shift shows writing the zero-shot model has not seen.
    """
    n = len(handwritten_digits()[1])
    half = n // 2
    return np.arange(0, half) if split == "pretrain" else np.arange(half, n)


def _luma(rgb: np.ndarray) -> float:
    return float(rgb @ np.array([0.299, 0.587, 0.114]) / 255.0)


def _contrasting(rng: np.random.Generator, against: tuple[int, int, int], min_contrast: float = 0.4) -> tuple:
    """A random colour whose brightness differs from ``against`` by at least ``min_contrast``.

    A colour too close is blended toward black or white (whichever is farther) just enough, so hue stays random
    and no rejection loop is needed.
    """
    c = rng.integers(0, 256, 3).astype(np.float64)
    lc, la = _luma(c), _luma(np.asarray(against, np.float64))
    if abs(lc - la) < min_contrast:
        target, want = (0.0, la - min_contrast) if la > 0.5 else (255.0, la + min_contrast)
        c = c + (want - lc) / (target / 255.0 - lc) * (target - c)
    return tuple(int(round(v)) for v in np.clip(c, 0, 255))


def _contrasting_pair(rng: np.random.Generator) -> tuple[tuple, tuple]:
    """Random ink and paper colours that contrast (either may be the lighter one)."""
    paper = tuple(int(v) for v in rng.integers(0, 256, 3))
    ink = _contrasting(rng, paper)
    return (ink, paper) if rng.random() < 0.5 else (paper, ink)


def _ink_on_paper(rng: np.random.Generator) -> tuple[tuple, tuple]:
    ink, paper = int(rng.integers(0, 40)), int(rng.integers(220, 256))
    return (ink, ink, ink), (paper, paper, paper)


def _reference_geometry(rng: np.random.Generator) -> dict:
    return dict(height=rng.uniform(0.55, 0.85), aspect=rng.uniform(0.85, 1.15), rotation=rng.uniform(-8, 8),
                dx=rng.uniform(-0.1, 0.1), dy=rng.uniform(-0.08, 0.08), weight=int(rng.integers(-1, 3)))


def _reference(rng: np.random.Generator, digit: int, fonts: tuple[str, ...] = REFERENCE_FONTS, **over) -> Look:
    fg, bg = _ink_on_paper(rng)
    kw = dict(digit=digit, source="font", font=str(rng.choice(fonts)), fg=fg, bg=bg,
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
    bg2 = _contrasting(rng, fg)  # the second background colour contrasts with the ink too
    kind = str(rng.choice(["flat", "gradient"], p=[0.6, 0.4]))
    return _reference(rng, digit, SHIFT_BASE_FONTS, fg=fg, bg=bg, bg2=bg2 if kind != "flat" else None, background=kind)


def _shift_rotation(rng: np.random.Generator, digit: int) -> Look:
    angle = rng.uniform(*ROTATION_DEGREES) * rng.choice([-1, 1])
    return _reference(rng, digit, SHIFT_BASE_FONTS, rotation=float(angle))


def _shift_sketch(rng: np.random.Generator, digit: int) -> Look:
    weight = int(rng.integers(SKETCH_WEIGHT[0], SKETCH_WEIGHT[1]))
    return _reference(rng, digit, SHIFT_BASE_FONTS, outline=True, weight=weight)


def _shift_noise(rng: np.random.Generator, digit: int) -> Look:
    # noisy, blurred "photographs" of printed digits: random inks and papers, as pretraining shows them
    fg, bg = _contrasting_pair(rng)
    return _reference(rng, digit, SHIFT_BASE_FONTS, fg=fg, bg=bg, blur=rng.uniform(*BLUR_RADIUS),
                      noise=rng.uniform(*NOISE_STD))


def _pretrain(rng: np.random.Generator, digit: int, pool: np.ndarray) -> Look:
    """The broad pretraining distribution: every factor varies, each often enough to be learned."""
    source = str(rng.choice(["font", "handwritten", "pen"], p=PRETRAIN_SOURCES))
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
    if rng.random() < PRETRAIN_PLAIN:
        kw["fg"], kw["bg"] = _ink_on_paper(rng)
    else:
        kw["fg"], kw["bg"] = _contrasting_pair(rng)
        kind = str(rng.choice(["flat", "gradient", "texture"], p=[0.5, 0.3, 0.2]))
        if kind != "flat":
            kw["background"], kw["bg2"] = kind, _contrasting(rng, kw["fg"])
    outline = rng.random() < 0.2
    if outline:
        kw["outline"], kw["weight"] = True, int(rng.integers(2, 5))
    # captions never name blur or noise, so the image must stay readable: outlines (1 px contours) are not
    # blurred and get at most mild noise
    if rng.random() < 0.25 and not outline:
        kw["blur"] = rng.uniform(0.5, 1.2)
    if rng.random() < 0.25:
        kw["noise"] = rng.uniform(0.05, 0.25) * (0.5 if outline else 1.0)
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
