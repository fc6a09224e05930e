"""Drawing one digit image: a glyph source, a geometry and a style.

Everything is drawn from material that ships inside installed packages, so the world needs no network:

- ``font``: a numeral from one of matplotlib's bundled TrueType fonts (``matplotlib/mpl-data/fonts/ttf``);
- ``handwritten``: one of scikit-learn's 1,797 handwritten 8×8 digits (``sklearn.datasets.load_digits``);
- ``pen``: a digit drawn procedurally as jittered pen strokes.

The glyph is placed on a supersampled canvas (rotation, scale, shear, shift, stroke weight, optional outline),
reduced to the output size, coloured over a background, then blurred and noised. An image is a pure function of
its :class:`Look` and a NumPy generator, so a seed gives the same pixels on every run.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

__all__ = ["Look", "render", "font_path", "FONT_FILES", "handwritten_digits", "DIGIT_WORDS"]

#: English names of the ten classes, in label order.
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

#: matplotlib's bundled fonts that have all ten numerals, by short name (symbol-only fonts left out).
FONT_FILES = {
    "dejavu-sans": "DejaVuSans.ttf",
    "dejavu-sans-bold": "DejaVuSans-Bold.ttf",
    "dejavu-sans-oblique": "DejaVuSans-Oblique.ttf",
    "dejavu-sans-boldoblique": "DejaVuSans-BoldOblique.ttf",
    "dejavu-mono": "DejaVuSansMono.ttf",
    "dejavu-mono-bold": "DejaVuSansMono-Bold.ttf",
    "dejavu-mono-oblique": "DejaVuSansMono-Oblique.ttf",
    "dejavu-mono-boldoblique": "DejaVuSansMono-BoldOblique.ttf",
    "dejavu-serif": "DejaVuSerif.ttf",
    "dejavu-serif-bold": "DejaVuSerif-Bold.ttf",
    "dejavu-serif-italic": "DejaVuSerif-Italic.ttf",
    "dejavu-serif-bolditalic": "DejaVuSerif-BoldItalic.ttf",
    "stix": "STIXGeneral.ttf",
    "stix-bold": "STIXGeneralBol.ttf",
    "stix-italic": "STIXGeneralItalic.ttf",
    "stix-bolditalic": "STIXGeneralBolIta.ttf",
    "cm-roman": "cmr10.ttf",
    "cm-bold": "cmb10.ttf",
    "cm-italic": "cmti10.ttf",
    "cm-sans": "cmss10.ttf",
    "cm-typewriter": "cmtt10.ttf",
    "cm-oldstyle": "cmmi10.ttf",  # math italic: old-style numerals
}

_SUPERSAMPLE = 4  # glyphs are drawn at 4× the output size and reduced with a box filter (anti-aliasing)


@dataclass(frozen=True)
class Look:
    """Every choice behind one image. Lengths are fractions of the image side; colours are RGB in 0–255."""

    digit: int
    source: str = "font"  # "font" | "handwritten" | "pen"
    font: str | None = None  # a key of FONT_FILES (source "font")
    sample: int = 0  # index into scikit-learn's digits (source "handwritten")
    height: float = 0.7  # glyph height
    aspect: float = 1.0  # horizontal stretch
    rotation: float = 0.0  # degrees, counter-clockwise
    shear: float = 0.0  # horizontal shear factor
    dx: float = 0.0  # offset of the glyph centre
    dy: float = 0.0
    weight: int = 0  # stroke dilation (>0) or erosion (<0), in supersampled pixels
    outline: bool = False  # keep only the contour of the strokes (sketch)
    fg: tuple[int, int, int] = (0, 0, 0)
    bg: tuple[int, int, int] = (255, 255, 255)
    bg2: tuple[int, int, int] | None = None  # second background colour (gradient or texture)
    background: str = "flat"  # "flat" | "gradient" | "texture"
    blur: float = 0.0  # Gaussian blur radius in output pixels
    noise: float = 0.0  # std of additive Gaussian noise (intensity in 0–1)


def font_path(name: str) -> str:
    """Absolute path of a bundled matplotlib font, by its short name (a key of :data:`FONT_FILES`)."""
    import matplotlib

    return os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "fonts", "ttf", FONT_FILES[name])


@functools.lru_cache(maxsize=None)
def handwritten_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's handwritten digits: images ``[1797, 8, 8]`` in 0–16 and labels ``[1797]`` (bundled, offline)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images.astype(np.float32), d.target.astype(np.int64)


@functools.lru_cache(maxsize=None)
def _font_glyph(name: str, digit: int) -> Image.Image:
    """The numeral ``digit`` of font ``name`` as a tight ``L`` ink mask, about 160 px tall."""
    font = ImageFont.truetype(font_path(name), 160)
    canvas = Image.new("L", (320, 320), 0)
    ImageDraw.Draw(canvas).text((160, 160), str(digit), font=font, fill=255, anchor="mm")
    return canvas.crop(canvas.getbbox())


def _handwritten_glyph(sample: int) -> Image.Image:
    images, _ = handwritten_digits()
    small = Image.fromarray(np.clip(images[sample] * (255.0 / 16.0), 0, 255).astype(np.uint8))
    # bicubic from 8×8 makes smooth strokes; the tight box drops the empty margin the scans have
    big = small.resize((96, 96), Image.BICUBIC).point(lambda v: 0 if v < 40 else v)
    box = big.getbbox()
    return big.crop(box) if box else big


def _arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int = 12) -> list[tuple[float, float]]:
    """Points on an ellipse from angle a0 to a1 (degrees, 0 = right, 90 = down)."""
    return [(cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a)))
            for a in np.linspace(a0, a1, n)]


# Pen strokes of each digit in a unit box (x right, y down); one list of points per stroke.
_PEN_STROKES: dict[int, list[list[tuple[float, float]]]] = {
    0: [_arc(0.5, 0.5, 0.3, 0.45, -90, 270, 20)],
    1: [[(0.32, 0.22), (0.55, 0.04), (0.55, 0.96)]],
    2: [_arc(0.5, 0.3, 0.26, 0.25, 200, 370, 10) + [(0.22, 0.95), (0.8, 0.95)]],
    3: [_arc(0.48, 0.27, 0.25, 0.22, 200, 450, 12) + _arc(0.48, 0.72, 0.28, 0.24, 270, 520, 12)],
    4: [[(0.66, 0.96), (0.66, 0.04), (0.18, 0.66), (0.84, 0.66)]],
    5: [[(0.76, 0.05), (0.32, 0.05), (0.28, 0.45)] + _arc(0.5, 0.68, 0.27, 0.27, 230, 500, 12)],
    6: [[(0.72, 0.06), (0.45, 0.25), (0.28, 0.6)] + _arc(0.5, 0.71, 0.23, 0.24, 180, 540, 16)],
    7: [[(0.2, 0.05), (0.8, 0.05), (0.42, 0.96)]],
    8: [_arc(0.5, 0.27, 0.2, 0.22, 90, 450, 14), _arc(0.5, 0.72, 0.26, 0.24, -90, 270, 14)],
    9: [_arc(0.5, 0.3, 0.23, 0.25, 0, 360, 16) + [(0.7, 0.62), (0.4, 0.96)]],
}


def _pen_glyph(digit: int, rng: np.random.Generator) -> Image.Image:
    """A digit drawn as jittered strokes; jitter and pen width come from ``rng``."""
    side = 128
    canvas = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(canvas)
    width = int(rng.uniform(0.07, 0.14) * side)
    wobble = rng.uniform(0.01, 0.035)
    for stroke in _PEN_STROKES[digit]:
        pts = np.asarray(stroke) + rng.normal(0, wobble, (len(stroke), 2))
        pts = (0.1 + 0.8 * pts) * side
        draw.line([tuple(p) for p in pts], fill=255, width=width, joint="curve")
        r = width / 2  # round caps
        for x, y in (pts[0], pts[-1]):
            draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    box = canvas.getbbox()
    return canvas.crop(box) if box else canvas


def _place(glyph: Image.Image, look: Look, side: int) -> Image.Image:
    """Scale, stretch, shear, rotate and shift the glyph onto a ``side``×``side`` canvas."""
    gw, gh = glyph.size
    s = look.height * side / max(gh, 1)
    th = math.radians(look.rotation)
    c, si = math.cos(th), math.sin(th)
    # forward map (glyph px -> canvas px): translate to centre · rotate · shear · scale
    a = np.array([[s * look.aspect, look.shear * s], [0.0, s]])
    r = np.array([[c, si], [-si, c]])  # y points down, so this turns counter-clockwise on screen
    m = r @ a
    centre = np.array([side / 2 + look.dx * side, side / 2 + look.dy * side])
    offset = centre - m @ np.array([gw / 2, gh / 2])
    inv = np.linalg.inv(m)
    inv_off = -inv @ offset
    coeffs = (inv[0, 0], inv[0, 1], inv_off[0], inv[1, 0], inv[1, 1], inv_off[1])
    return glyph.transform((side, side), Image.AFFINE, coeffs, resample=Image.BILINEAR, fillcolor=0)


def _stroke_filter(mask: np.ndarray, look: Look) -> np.ndarray:
    """Thicken or thin the strokes, and hollow them out for an outline (sketch)."""
    from scipy import ndimage  # separable min/max filters: much faster than PIL's rank filters

    if look.weight > 0:
        mask = ndimage.maximum_filter(mask, size=2 * look.weight + 1)
    elif look.weight < 0:
        mask = ndimage.minimum_filter(mask, size=-2 * look.weight + 1)
    if look.outline:
        solid = np.where(mask >= 128, 255, 0).astype(np.uint8)
        # a band about 1 output pixel wide astride the contour
        mask = ndimage.maximum_filter(solid, size=5) - ndimage.minimum_filter(solid, size=5)
    return mask


def _background(look: Look, size: int, rng: np.random.Generator) -> np.ndarray:
    bg = np.asarray(look.bg, np.float32) / 255.0
    if look.background == "flat" or look.bg2 is None:
        return np.broadcast_to(bg, (size, size, 3)).copy()
    bg2 = np.asarray(look.bg2, np.float32) / 255.0
    if look.background == "gradient":
        ang = rng.uniform(0, 2 * math.pi)
        yy, xx = np.mgrid[0:size, 0:size] / (size - 1) - 0.5
        t = np.clip(0.5 + (xx * math.cos(ang) + yy * math.sin(ang)), 0, 1)[..., None]
    else:  # "texture": smooth random blotches
        coarse = Image.fromarray((rng.random((4, 4)) * 255).astype(np.uint8))
        t = (np.asarray(coarse.resize((size, size), Image.BICUBIC), np.float32) / 255.0)[..., None]
    return bg * (1 - t) + bg2 * t


def glyph_mask(look: Look, size: int, rng: np.random.Generator) -> np.ndarray:
    """The ink coverage of the placed glyph at ``size``×``size``, as floats in [0, 1]."""
    if look.source == "font":
        glyph = _font_glyph(look.font, look.digit)
    elif look.source == "handwritten":
        glyph = _handwritten_glyph(look.sample)
    elif look.source == "pen":
        glyph = _pen_glyph(look.digit, rng)
    else:
        raise ValueError(f"unknown glyph source {look.source!r}; expected 'font', 'handwritten' or 'pen'")
    side = size * _SUPERSAMPLE
    mask = _stroke_filter(np.asarray(_place(glyph, look, side)), look)
    # box reduction of the supersampled canvas = exact area coverage of each output pixel
    mask = mask.reshape(size, _SUPERSAMPLE, size, _SUPERSAMPLE).astype(np.float32).mean(axis=(1, 3))
    return mask / 255.0


def render(look: Look, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """Draw ``look`` as an RGB ``uint8`` array ``[size, size, 3]``; ``rng`` supplies the per-image randomness."""
    m = glyph_mask(look, size, rng)[..., None]
    img = _background(look, size, rng) * (1 - m) + (np.asarray(look.fg, np.float32) / 255.0) * m
    if look.blur > 0:
        pil = Image.fromarray(np.round(img * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(look.blur))
        img = np.asarray(pil, np.float32) / 255.0
    if look.noise > 0:
        img = img + rng.normal(0.0, look.noise, img.shape).astype(np.float32)
    return np.round(np.clip(img, 0.0, 1.0) * 255).astype(np.uint8)
