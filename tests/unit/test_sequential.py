"""backend.analytics.sequential: weekly looks do not inflate false positives.

Simulations are vectorized over repetitions (2000 phases of 26 weekly looks each) and seeded.
"""

from __future__ import annotations

import numpy as np
import pytest

from backend.analytics import sequential as sq

ALPHA = 0.05
REPS, WEEKS = 2000, 26
TOLERANCE = 0.015  # Monte Carlo error of a rate near 0.05 over 2000 repetitions is about 0.005


def _stream(rng: np.random.Generator, p_ai: float, p_control: float, n_ai: int, n_control: int):
    """Cumulative counts after each week: (x_ai, n_ai, x_control, n_control), shape (REPS, WEEKS)."""
    x1 = rng.binomial(n_ai, p_ai, (REPS, WEEKS)).cumsum(axis=1)
    x2 = rng.binomial(n_control, p_control, (REPS, WEEKS)).cumsum(axis=1)
    weeks = np.arange(1, WEEKS + 1)
    return x1, weeks * n_ai, x2, weeks * n_control


# (rate, AI per week, control per week): a 50/50 default rate, a 10% pilot's approval rate, rare events
DESIGNS = [(0.05, 300, 300), (0.70, 100, 900), (0.02, 60, 540), (0.15, 40, 40)]


@pytest.mark.parametrize(("p", "n_ai", "n_control"), DESIGNS)
def test_confidence_sequence_holds_alpha_under_weekly_looks_while_naive_z_does_not(p: float, n_ai: int,
                                                                                    n_control: int) -> None:
    rng = np.random.default_rng([7, int(p * 100), n_ai])
    x1, n1, x2, n2 = _stream(rng, p, p, n_ai, n_control)
    cs = sq.confidence_sequence_diff(x1, n1, x2, n2, alpha=ALPHA)
    cs_false_positive = cs.excludes_zero().any(axis=1).mean()
    naive_false_positive = (np.abs(sq.naive_z(x1, n1, x2, n2)) > 1.959964).any(axis=1).mean()
    assert cs_false_positive <= ALPHA + TOLERANCE
    assert naive_false_positive > 2 * ALPHA  # peeking every week with a fixed-sample test: ~0.2-0.3
    # the fixed-sample test read once, at the end, is fine (a check on the simulation itself)
    assert (np.abs(sq.naive_z(x1, n1, x2, n2)[:, -1]) > 1.959964).mean() <= ALPHA + TOLERANCE


@pytest.mark.parametrize(("p_ai", "p_control", "n_ai", "n_control"),
                         [(0.042, 0.051, 400, 400), (0.75, 0.70, 100, 900), (0.30, 0.20, 50, 50)])
def test_confidence_sequence_covers_the_true_difference_at_every_look(p_ai: float, p_control: float, n_ai: int,
                                                                       n_control: int) -> None:
    rng = np.random.default_rng([11, n_ai, n_control])
    x1, n1, x2, n2 = _stream(rng, p_ai, p_control, n_ai, n_control)
    cs = sq.confidence_sequence_diff(x1, n1, x2, n2, alpha=ALPHA)
    delta = p_ai - p_control
    missed = ((cs.low > delta) | (cs.high < delta)).any(axis=1).mean()
    assert missed <= ALPHA + TOLERANCE
    assert np.all(np.diff(n1 + n2) > 0)


def test_confidence_sequence_detects_a_real_difference() -> None:
    rng = np.random.default_rng(3)
    x1, n1, x2, n2 = _stream(rng, 0.75, 0.70, 500, 500)
    cs = sq.confidence_sequence_diff(x1, n1, x2, n2, alpha=ALPHA)
    detected = (cs.low > 0).any(axis=1).mean()
    assert detected > 0.8  # 13,000 per arm by week 26: a 5-point difference is found in most phases
    assert not (cs.high < 0).any()  # and never in the wrong direction


def test_intervals_need_events_in_both_arms() -> None:
    cs = sq.confidence_sequence_diff([0, 2, 6, 9], [50, 100, 150, 200], [1, 4, 9, 12], [50, 100, 150, 200])
    assert list(cs.ready) == [False, False, True, True]
    assert np.isinf(cs.low[:2]).all() and np.isinf(cs.high[:2]).all()
    assert np.isfinite(cs.low[2:]).all()
    assert cs.estimate[0] == pytest.approx(-0.02)
    empty = sq.confidence_sequence_diff([0], [0], [3], [40])
    assert np.isnan(empty.estimate[0]) and not empty.ready[0]


def test_sequence_is_wider_than_a_fixed_sample_interval_but_shrinks() -> None:
    n = np.arange(1, 27) * 400.0
    half = sq.cs_half_width(np.ones_like(n), n, alpha=ALPHA)
    assert np.all(np.diff(half) < 0)
    assert np.all(half > 1.959964 / np.sqrt(n))  # the price of looking every week
    assert half[-1] < 1.7 * 1.959964 / np.sqrt(n[-1])  # about 1.6 times wider near the tuning size
    assert np.isinf(sq.cs_half_width(1.0, 0, alpha=ALPHA))


def test_bad_alpha_is_refused() -> None:
    with pytest.raises(ValueError) as exc:
        sq.confidence_sequence_diff([1], [10], [1], [10], alpha=0.6)
    assert str(exc.value) == sq.BAD_ALPHA.format(alpha=0.6)


# -- alpha spending -------------------------------------------------------------------------------------
def test_obrien_fleming_bounds_match_published_values() -> None:
    """Five equally spaced looks, two-sided alpha 0.05 (ldbounds / gsDesign sfLDOF):
    4.8769, 3.3569, 2.6803, 2.2898, 2.0310."""
    bounds = sq.spending_bounds([0.2, 0.4, 0.6, 0.8, 1.0], ALPHA)
    assert bounds == pytest.approx([4.8769, 3.3569, 2.6803, 2.2898, 2.0310], abs=2e-4)
    assert sq.obf_spending([1.0], ALPHA)[0] == pytest.approx(ALPHA)


def test_spending_bounds_hold_alpha_under_weekly_looks() -> None:
    rng = np.random.default_rng(21)
    x1, n1, x2, n2 = _stream(rng, 0.10, 0.10, 200, 200)
    bounds = sq.spending_bounds(np.arange(1, WEEKS + 1) / WEEKS, ALPHA)
    z = sq.naive_z(x1, n1, x2, n2)
    rejected = (np.abs(z) >= bounds).any(axis=1).mean()
    assert rejected <= ALPHA + TOLERANCE
    assert rejected > ALPHA / 3  # it spends its alpha (unlike a needlessly strict rule)


def test_spending_bounds_refuse_bad_fractions() -> None:
    with pytest.raises(ValueError, match="increasing and positive"):
        sq.spending_bounds([0.5, 0.3])
    with pytest.raises(ValueError, match="increasing and positive"):
        sq.spending_bounds([])
