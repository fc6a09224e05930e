"""Captions of the pretraining pairs: the digit and its style, never its colour.

A caption names the content ("the number seven", "a digit seven", "7") and the style (font family, handwriting,
pen, outline, rotation, blur, noise). Colours are left out on purpose: a prototype showed that captions naming
colours let a tiny CLIP match images to captions by colour alone, and its zero-shot accuracy stayed at chance.
"""

from __future__ import annotations

import numpy as np

from .render import DIGIT_WORDS, Look

__all__ = ["caption", "FONT_STYLE"]

#: how a caption describes each bundled font.
FONT_STYLE = {
    "dejavu-sans": "sans-serif",
    "dejavu-sans-bold": "bold sans-serif",
    "dejavu-sans-oblique": "slanted sans-serif",
    "dejavu-sans-boldoblique": "bold slanted sans-serif",
    "dejavu-mono": "monospace",
    "dejavu-mono-bold": "bold monospace",
    "dejavu-mono-oblique": "slanted monospace",
    "dejavu-mono-boldoblique": "bold slanted monospace",
    "dejavu-serif": "serif",
    "dejavu-serif-bold": "bold serif",
    "dejavu-serif-italic": "italic serif",
    "dejavu-serif-bolditalic": "bold italic serif",
    "stix": "roman",
    "stix-bold": "bold roman",
    "stix-italic": "italic roman",
    "stix-bolditalic": "bold italic roman",
    "cm-roman": "classic roman",
    "cm-bold": "classic bold",
    "cm-italic": "classic italic",
    "cm-sans": "classic sans-serif",
    "cm-typewriter": "typewriter",
    "cm-oldstyle": "old-style",
}

_CONTENT = ("the number {w}", "a digit {w}", "the digit {w}", "the numeral {w}", "the number {d}", "a {w}",
            "number {w}", "digit {w}")


def _pick(rng: np.random.Generator, options) -> str:
    return options[int(rng.integers(len(options)))]


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


# Which nuisances captions name. Like colour, blur, noise, outlines and rotation are left out: a caption that
# names a nuisance asks the model to encode it (and the tiny model then spends its 64 dimensions on it, so the
# zero-shot head, whose templates name no style, fails on such images), while an unnamed one teaches invariance.
NAME_QUALITY = False  # blur, noise
NAME_OUTLINE = False  # sketches (outlines)
NAME_ROTATION = False


def _image_phrase(look: Look, rng: np.random.Generator) -> str:
    adjectives = []
    if NAME_QUALITY and look.blur > 0:
        adjectives.append(_pick(rng, ("blurry", "blurred", "out-of-focus")))
    if NAME_QUALITY and look.noise > 0:
        adjectives.append(_pick(rng, ("noisy", "grainy")))
    if NAME_OUTLINE and look.outline:
        noun = _pick(rng, ("outline sketch", "sketch", "line drawing", "outline drawing"))
    else:
        noun = _pick(rng, ("picture", "image", "photo"))
    words = f"{', '.join(adjectives)} {noun}" if adjectives else noun
    return f"{_article(words)} {words} of "


def _source_phrase(look: Look, rng: np.random.Generator) -> str:
    if look.source == "font":
        style = FONT_STYLE[look.font]
        return _pick(rng, (f" in a {style} font", f", printed in {style} type", f" in {style} type",
                           f", typed in a {style} typeface"))
    if look.source == "handwritten":
        return _pick(rng, (", handwritten", ", written by hand", ", in handwriting", ", scribbled by hand"))
    return _pick(rng, (", drawn with a pen", ", drawn by hand with a marker", ", pen drawing"))


def caption(look: Look, rng: np.random.Generator) -> str:
    """A caption of ``look``: content and style in varied phrasing, drawn with ``rng``.

    Example:
        >>> caption(Look(digit=7, font="dejavu-serif"), np.random.default_rng(0))  # doctest: +SKIP
        'the digit seven, printed in serif type.'
    """
    word = DIGIT_WORDS[look.digit]
    content = _pick(rng, _CONTENT).format(w=word, d=look.digit)
    if content == f"a {word}":
        content = f"{_article(word)} {word}"
    lead = ""
    if (NAME_OUTLINE and look.outline) or rng.random() < 0.3:
        lead = _image_phrase(look, rng)
    tail = _source_phrase(look, rng) if rng.random() < 0.8 else ""
    if NAME_ROTATION and abs(look.rotation) > 20:
        tail += _pick(rng, (", rotated", ", tilted", ", turned sideways", ", at an angle"))
    if look.background != "flat" and rng.random() < 0.5:
        tail += _pick(rng, (" on a patterned background", " on a shaded background"))
    return f"{lead}{content}{tail}."
