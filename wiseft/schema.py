"""Bounded reading of JSON that crossed a trust boundary (sidecars, results rows, done-markers).

``json.loads`` recurses once per nesting level: a file nesting 100,000 brackets raises ``RecursionError``, which no
reader expects. :func:`loads_bounded` turns that, and any document nested deeper than wiseft ever writes, into a
``ValueError`` naming the limit, so that every reader reports it like any other malformed file. The small predicates
below are the vocabulary of the readers' schemas (types *and* bounds).
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["MAX_DEPTH", "loads_bounded", "json_depth", "is_number", "is_int", "numbers_within", "is_text"]

#: deeper than anything wiseft writes (sidecars and rows nest 3–4 levels)
MAX_DEPTH = 32


def json_depth(obj: Any) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0), computed without recursion."""
    deepest, stack = 0, [(obj, 0)]
    while stack:
        value, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
    return deepest


def loads_bounded(text: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` that raises only ``ValueError`` (bad JSON, bad UTF-8, or nesting deeper than ``max_depth``)."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError(f"JSON nested deeper than {max_depth} levels") from None
    if json_depth(value) > max_depth:
        raise ValueError(f"JSON nested deeper than {max_depth} levels")
    return value


def is_number(v: Any) -> bool:
    """A finite int or float (``bool`` is not a number here)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def is_int(v: Any, lo: int | None = None, hi: int | None = None) -> bool:
    """An ``int`` (not ``bool``) within ``[lo, hi]``."""
    return (isinstance(v, int) and not isinstance(v, bool) and (lo is None or v >= lo) and (hi is None or v <= hi))


def numbers_within(v: Any, n: int, lo: float, hi: float) -> bool:
    """A list of exactly ``n`` finite numbers, each within ``[lo, hi]``."""
    return isinstance(v, list) and len(v) == n and all(is_number(x) and lo <= x <= hi for x in v)


def is_text(v: Any, max_len: int = 1000, empty: bool = False) -> bool:
    """A string of at most ``max_len`` characters (non-empty unless ``empty``)."""
    return isinstance(v, str) and len(v) <= max_len and (empty or bool(v))
