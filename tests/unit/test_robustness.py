"""Effective-robustness helpers: logit axes, fits in logit space, Clopper–Pearson intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest

from wiseft.errors import WiseftError
from wiseft.robustness import clopper_pearson, effective_robustness, fit_logit_line, inv_logit, logit


def test_logit_round_trip_and_clipping():
    p = np.array([0.01, 0.3, 0.5, 0.92])
    assert np.allclose(inv_logit(logit(p)), p)
    assert logit(0.5) == 0.0 and isinstance(logit(0.5), float)
    assert math.isfinite(logit(0.0)) and math.isfinite(logit(1.0)) and logit(0.0) < -10


def test_fit_recovers_a_line_in_logit_space():
    ref = np.array([0.55, 0.62, 0.7, 0.78, 0.85])
    shift = inv_logit(0.8 * logit(ref) - 0.4)
    fit = fit_logit_line(ref, shift)
    assert fit.slope == pytest.approx(0.8) and fit.intercept == pytest.approx(-0.4) and fit.r2 == pytest.approx(1.0)
    assert fit.n == 5
    assert np.allclose(fit.predict(ref), shift)
    assert np.allclose(effective_robustness(ref, shift, fit), 0.0, atol=1e-12)
    above = float(inv_logit(0.8 * logit(0.75) - 0.4)) + 0.05
    assert effective_robustness(0.75, above, fit) == pytest.approx(0.05)


@pytest.mark.parametrize("ref, shift, message", [([0.5], [0.4], "at least two"), ([0.5, 0.6], [0.4], "equal length"),
                                                 ([0.5, 1.2], [0.4, 0.5], "fractions"),
                                                 ([0.5, 0.5], [0.4, 0.6], "all reference accuracies are equal")])
def test_fit_errors(ref, shift, message):
    with pytest.raises(WiseftError, match=message):
        fit_logit_line(ref, shift)


@pytest.mark.parametrize("k, n", [(0, 10), (3, 10), (10, 10), (7321, 10000), (1, 1)])
def test_clopper_pearson_matches_scipy_exact_interval(k, n):
    low, high = clopper_pearson(k, n)
    ref = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    assert low == pytest.approx(ref.low, abs=1e-9) and high == pytest.approx(ref.high, abs=1e-9)
    assert 0.0 <= low <= k / n <= high <= 1.0


def test_clopper_pearson_vectorised_and_errors():
    low, high = clopper_pearson(np.array([0, 5, 10]), np.array([10, 10, 10]))
    assert low.shape == (3,) and low[0] == 0.0 and high[2] == 1.0
    assert high[0] == pytest.approx(1 - 0.025 ** (1 / 10))
    with pytest.raises(WiseftError, match="0 ≤ k ≤ n"):
        clopper_pearson(11, 10)
