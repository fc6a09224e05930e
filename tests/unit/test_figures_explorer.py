"""The α explorer: the slider moves the Fig. 1 point and updates the per-dataset accuracies (issue 17)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tests.helpers import synth_results as S  # noqa: E402
from wiseft.errors import WiseftError  # noqa: E402
from wiseft.figures.explorer import alpha_explorer  # noqa: E402


def test_slider_moves_the_point_and_updates_the_table(capsys, monkeypatch):
    ex = alpha_explorer(S.frame(S.core_rows()))
    assert ex.slider.value == 0.5
    first_png = ex.image.value
    ex.slider.value = 0.25  # what a user dragging the slider does
    x, y = ex.point.get_offsets()[0]
    assert x == pytest.approx(S.acc("imagenet", "e2e", 0.25))
    assert y == pytest.approx(np.mean([S.acc(d, "e2e", 0.25) for d in S.SHIFTS]))
    assert f"<b>{100 * S.acc('imagenet-r', 'e2e', 0.25):.1f}</b>" in ex.table.value
    assert f"<td>{100 * S.acc('imagenet-r', 'e2e', 0.0):.1f}</td>" in ex.table.value  # the zero-shot end beside it
    assert bytes(ex.image.value) != bytes(first_png) and bytes(ex.image.value).startswith(b"\x89PNG")
    assert ex.label.get_text() == "α = 0.25"
    monkeypatch.setenv("WISEFT_BATCH", "1")
    ex.show()
    assert "interactive only" in capsys.readouterr().out


def test_explorer_needs_a_sweep():
    rows = [r for r in S.core_rows() if r["method"] != "wiseft" or r["mode"] != "lc"]
    with pytest.raises(WiseftError, match="no WiSE-FT sweep in mode 'lc'"):
        alpha_explorer(S.frame(rows), mode="lc")
