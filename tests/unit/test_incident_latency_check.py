"""The incident verification's latency check (backend.operations.incidents._latency_back) on samples drawn
from known distributions: an unchanged latency is rarely called a regression, a real one is caught."""

from __future__ import annotations

import numpy as np

from backend.analytics.latency import LatencyFigure, latency_figure
from backend.operations.incidents import LATENCY_SLACK, VERIFY_MIN_REQUESTS, _latency_back


def _rates(scale_after: float, n_after: int, trials: int = 1000) -> tuple[float, float]:
    """(share called 'not back' by this check, by the old point comparison) over ``trials`` histories with
    the simulator's LLM latency (lognormal, median 2.6 s, sigma 0.42) before, and ``scale_after`` x it after."""
    rng = np.random.default_rng(7)
    new = old = 0
    for _ in range(trials):
        before = latency_figure(np.exp(np.log(2600) + 0.42 * rng.standard_normal(400)))
        after = latency_figure(scale_after * np.exp(np.log(2600) + 0.42 * rng.standard_normal(n_after)))
        new += _latency_back(before, after) is False
        old += not (after.p95_s <= before.p95_s * LATENCY_SLACK)
    return new / trials, old / trials


def test_an_unchanged_latency_is_rarely_called_a_regression() -> None:
    new, old = _rates(1.0, VERIFY_MIN_REQUESTS)
    assert old > 0.03  # the point comparison failed about one verification in twenty (5.5% here)
    assert new < 0.01, new


def test_a_doubled_latency_is_caught_once_enough_requests_are_read() -> None:
    new, _ = _rates(2.0, 60, trials=400)
    assert new > 0.95, new


def test_missing_or_too_small_windows_are_inconclusive() -> None:
    some = latency_figure(np.full(50, 2600.0))
    assert _latency_back(LatencyFigure(None, None, None, 0), some) is None
    assert _latency_back(some, LatencyFigure(None, None, None, 0)) is None
    assert _latency_back(some, latency_figure(np.array([9000.0]))) is None  # one request gives no lower limit
    assert _latency_back(some, latency_figure(np.full(30, 2700.0))) is True
    assert _latency_back(some, latency_figure(np.full(30, 9000.0))) is False
