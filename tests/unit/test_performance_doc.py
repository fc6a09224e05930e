"""docs/performance.md's ImageNet prediction agrees with `wiseft plan` (issue 18): the plan's totals the page
quotes are what the plan computes today, and the page's own step-by-step derivation stays within 10% of them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from wiseft.plan import make_plan
from wiseft.profile import load_profile

DOC = Path(__file__).resolve().parents[2] / "docs" / "performance.md"


def _quoted_plan_hours(text: str) -> tuple[float, float]:
    m = re.search(r"predicts\s+\*\*([\d.]+) h\*\* on 1 GPU and \*\*([\d.]+) h\*\* on 8 GPUs", text)
    assert m, "docs/performance.md no longer quotes the plan's 1- and 8-GPU totals"
    return float(m.group(1)), float(m.group(2))


def _page_totals(text: str) -> tuple[float, float]:
    row = next(line for line in text.splitlines() if line.startswith("| **total, wiseft**"))
    hours = re.findall(r"\*\*([\d.]+) h\*\*", row)
    return float(hours[0]), float(hours[1])


@pytest.mark.parametrize("gpus, index", [(1, 0), (8, 1)])
def test_the_page_quotes_the_plan_and_agrees_with_it(gpus, index):
    text = DOC.read_text(encoding="utf-8")
    plan_hours = make_plan(load_profile("imagenet-vitb16"), gpus=gpus, gpu_type="a100").seconds / 3600
    quoted = _quoted_plan_hours(text)[index]
    assert quoted == pytest.approx(plan_hours, abs=0.05)
    assert _page_totals(text)[index] == pytest.approx(plan_hours, rel=0.10)
