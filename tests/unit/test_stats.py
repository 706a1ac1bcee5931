"""backend.analytics.stats against statsmodels/scipy and textbook values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.contingency_tables import Table2x2
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportion_effectsize,
    proportions_ztest,
)

from backend.analytics import stats as st

CASES = [(0, 10), (1, 10), (9, 10), (10, 10), (81, 263), (15, 148), (1487, 20000), (3, 3000)]
PAIRS = [(56, 70, 48, 80), (9, 10, 3, 10), (0, 25, 3, 30), (1200, 14000, 1500, 14000), (5, 56, 0, 29),
         (10, 10, 0, 20), (37, 1487, 410, 13641)]


@pytest.mark.parametrize(("x", "n"), CASES)
@pytest.mark.parametrize("alpha", [0.05, 0.10, 0.01])
def test_wilson_matches_statsmodels(x: int, n: int, alpha: float) -> None:
    ci = st.wilson_interval(x, n, alpha=alpha)
    lo, hi = proportion_confint(x, n, alpha=alpha, method="wilson")
    assert ci.estimate == pytest.approx(x / n)
    assert (ci.low, ci.high) == pytest.approx((lo, hi), abs=1e-12)


def test_wilson_textbook_zero_of_ten() -> None:
    ci = st.wilson_interval(0, 10)
    z2 = sps.norm.ppf(0.975) ** 2
    assert ci.low == 0.0 and ci.high == pytest.approx(z2 / (10 + z2))  # 0.2775 in every textbook
    assert ci.high == pytest.approx(0.2775, abs=1e-4)


@pytest.mark.parametrize(("x1", "n1", "x2", "n2"), PAIRS)
def test_newcombe_matches_statsmodels(x1: int, n1: int, x2: int, n2: int) -> None:
    ci = st.diff_interval(x1, n1, x2, n2)
    lo, hi = confint_proportions_2indep(x1, n1, x2, n2, method="newcomb", compare="diff")
    assert ci.estimate == pytest.approx(x1 / n1 - x2 / n2)
    assert (ci.low, ci.high) == pytest.approx((lo, hi), abs=1e-10)


def test_newcombe_textbook_example() -> None:
    """Newcombe (1998), Table II example (a): 56/70 - 48/80, method 10: 0.0524 to 0.3339."""
    ci = st.diff_interval(56, 70, 48, 80)
    assert (round(ci.low, 4), round(ci.high, 4)) == (0.0524, 0.3339)


@pytest.mark.parametrize(("x1", "n1", "x2", "n2"), PAIRS)
def test_ztest_matches_statsmodels(x1: int, n1: int, x2: int, n2: int) -> None:
    res = st.two_proportion_ztest(x1, n1, x2, n2)
    pooled = (x1 + x2) / (n1 + n2)
    if pooled in (0.0, 1.0):
        assert (res.statistic, res.p_value) == (0.0, 1.0)
        return
    z, p = proportions_ztest([x1, x2], [n1, n2])
    assert res.statistic == pytest.approx(z) and res.p_value == pytest.approx(p)


def test_ztest_identical_extremes_are_no_evidence() -> None:
    assert st.two_proportion_ztest(0, 10, 0, 30) == st.TestResult(0.0, 1.0)


@pytest.mark.parametrize(("x1", "n1", "x2", "n2"), [(56, 70, 48, 80), (37, 1487, 410, 13641), (3, 40, 9, 41)])
def test_relative_risk_matches_statsmodels(x1: int, n1: int, x2: int, n2: int) -> None:
    rr = st.relative_risk(x1, n1, x2, n2)
    table = Table2x2(np.array([[x1, n1 - x1], [x2, n2 - x2]]))
    assert rr.estimate == pytest.approx(table.riskratio)
    assert (rr.low, rr.high) == pytest.approx(tuple(table.riskratio_confint()), rel=1e-10)


def test_relative_risk_without_events_has_no_interval() -> None:
    rr = st.relative_risk(0, 50, 3, 50)
    assert rr.estimate == 0.0 and math.isnan(rr.low) and math.isnan(rr.high)


@pytest.mark.parametrize("bad", [(-1, 10), (11, 10), (0, 0)])
def test_bad_counts_are_refused(bad: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match="Counts must satisfy"):
        st.wilson_interval(*bad)
    with pytest.raises(ValueError, match=r"0 <= successes"):
        st.diff_interval(*bad, 1, 2)


def test_bad_alpha_is_refused() -> None:
    with pytest.raises(ValueError) as exc:
        st.wilson_interval(1, 2, alpha=0.7)
    assert str(exc.value) == st.BAD_ALPHA.format(alpha=0.7)


def test_mann_whitney_matches_scipy() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.lognormal(3.6, 0.45, 300), rng.lognormal(12.6, 0.55, 280)
    res, prob = st.mann_whitney(a, b)
    ref = sps.mannwhitneyu(a, b, alternative="two-sided")
    assert res.statistic == ref.statistic and res.p_value == ref.pvalue
    assert prob == pytest.approx(ref.statistic / (300 * 280)) and prob < 0.01
    with pytest.raises(ValueError, match="at least one value"):
        st.mann_whitney([], [1.0])


def test_bootstrap_median_difference_is_seeded_and_agrees_with_scipy() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.exponential(40, 400), rng.exponential(60, 500)
    ci = st.bootstrap_median_diff(a, b, n_boot=2000, seed=9)
    assert ci == st.bootstrap_median_diff(a, b, n_boot=2000, seed=9)  # same seed, same interval
    assert ci.estimate == pytest.approx(np.median(a) - np.median(b))
    ref = sps.bootstrap((a, b), lambda x, y, axis: np.median(x, axis=axis) - np.median(y, axis=axis),
                        method="percentile", n_resamples=4000, random_state=1, vectorized=True).confidence_interval
    assert ci.low == pytest.approx(ref.low, abs=4.0) and ci.high == pytest.approx(ref.high, abs=4.0)
    assert ci.low < ci.estimate < ci.high


def test_bootstrap_handles_large_arms() -> None:
    a = np.arange(200_001, dtype=float)
    ci = st.bootstrap_median_diff(a, a + 5, seed=1)
    assert ci.estimate == -5 and ci.low < -5 < ci.high


@pytest.mark.parametrize("n", [7, 8, 50, 201])
def test_exact_bootstrap_medians_match_brute_force_resampling(n: int) -> None:
    x = np.random.default_rng(n).exponential(size=n)
    exact = st.boot_medians(x, 40_000, np.random.default_rng(1))
    idx = np.random.default_rng(2).integers(0, n, (40_000, n))
    brute = np.median(x[idx], axis=1)
    assert sps.ks_2samp(exact, brute).pvalue > 0.001
    assert np.quantile(exact, [0.025, 0.5, 0.975]) == pytest.approx(np.quantile(brute, [0.025, 0.5, 0.975]),
                                                                    rel=0.05)


def test_quantile_interval_order_statistics() -> None:
    x = np.arange(1, 101, dtype=float)  # 1..100
    ci = st.quantile_interval(x, 0.5)
    lo, hi = sps.binom.ppf(0.025, 100, 0.5), sps.binom.ppf(0.975, 100, 0.5) + 1
    assert ci.estimate == pytest.approx(50.5) and (ci.low, ci.high) == (lo, hi) == (40.0, 61.0)
    assert sps.binom.cdf(hi - 1, 100, 0.5) - sps.binom.cdf(lo - 1, 100, 0.5) >= 0.95
    small = st.quantile_interval([3.0, 1.0, 2.0], 0.95)  # three values cannot bound a p95 from above
    assert small.high == math.inf


def test_quantile_interval_covers() -> None:
    rng = np.random.default_rng(2)
    true_p95 = sps.expon.ppf(0.95)
    hits = [st.quantile_interval(rng.exponential(size=200), 0.95).excludes(true_p95) for _ in range(400)]
    assert np.mean(hits) <= 0.05 + 0.025


@pytest.mark.parametrize(("baseline", "mde", "ratio"), [(0.05, -0.01, 1.0), (0.05, 0.01, 1.0), (0.70, 0.03, 9.0),
                                                       (0.03, -0.008, 1.0), (0.5, 0.1, 0.25)])
@pytest.mark.parametrize(("alpha", "power"), [(0.05, 0.8), (0.01, 0.9)])
def test_sample_size_matches_statsmodels(baseline: float, mde: float, ratio: float, alpha: float, power: float) -> None:
    n_ai, n_control = st.sample_size_per_arm(baseline, mde, alpha=alpha, power=power, ratio=ratio)
    h = proportion_effectsize(baseline + mde, baseline)
    ref = NormalIndPower().solve_power(effect_size=h, alpha=alpha, power=power, ratio=ratio)
    assert n_ai == math.ceil(ref - 1e-6)
    assert n_control == math.ceil(n_ai * ratio - 1e-9)
    achieved = NormalIndPower().power(effect_size=h, nobs1=n_ai, alpha=alpha, ratio=ratio)
    assert achieved >= power - 1e-9


def test_sample_size_textbook_value() -> None:
    """Cohen (1988) Table 6.4.1: h = 0.2, alpha = 0.05 two-sided, power 0.80 -> n = 392.4 per group
    (his table rounds to 392; a sample size is rounded up)."""
    p1 = 0.5
    p2 = math.sin(math.asin(math.sqrt(p1)) + 0.1) ** 2  # h = 0.2 exactly
    assert st.sample_size_per_arm(p1, p2 - p1) == (393, 393)


@pytest.mark.parametrize(("args", "message"), [((0.05, 0.0), st.ZERO_EFFECT),
                                               ((0.05, -0.06), st.BAD_RATE.format(p1=0.05, p2=0.05 - 0.06))])
def test_sample_size_refuses_bad_input(args: tuple[float, float], message: str) -> None:
    with pytest.raises(ValueError) as exc:
        st.sample_size_per_arm(*args)
    assert str(exc.value) == message


def test_weeks_needed() -> None:
    assert st.weeks_needed(1000, 9000, 100, 900) == 10
    assert st.weeks_needed(1000, 1000, 100, 50) == 20
    assert st.weeks_needed(10, 10, 0, 5) == math.inf


def test_nps_adjusted_wald_by_hand() -> None:
    scores = [10] * 9 + [8] * 6 + [5] * 5  # 9 promoters, 6 passives, 5 detractors, n = 20
    ci = st.nps_interval(scores)
    assert ci.estimate == pytest.approx((9 - 5) / 20)
    n = 23
    p, d = 9.75 / n, 5.75 / n
    half = sps.norm.ppf(0.975) * math.sqrt((p + d - (p - d) ** 2) / n)
    assert (ci.low, ci.high) == pytest.approx((p - d - half, p - d + half))


def test_nps_bounds_and_bad_answers() -> None:
    ci = st.nps_interval([10] * 5)
    assert ci.estimate == 1.0 and ci.high <= 1.0 and ci.low < 1.0
    with pytest.raises(ValueError) as exc:
        st.nps_interval([11, 3])
    assert str(exc.value) == st.BAD_NPS


@pytest.mark.parametrize(("interval", "direction", "verdict"), [
    (st.Interval(0.08, 0.06, 0.095), "max", st.MET),
    (st.Interval(0.08, 0.05, 0.12), "max", st.LIKELY),
    (st.Interval(0.12, 0.09, 0.15), "max", st.NOT_MET),
    (st.Interval(0.97, 0.96, 0.98), "min", st.MET),
    (st.Interval(0.96, 0.94, 0.98), "min", st.LIKELY),
    (st.Interval(0.93, 0.90, 0.96), "min", st.NOT_MET),
    (None, "min", st.NO_DATA),
])
def test_judge(interval: st.Interval | None, direction: str, verdict: str) -> None:
    target = 0.10 if direction == "max" else 0.95
    assert st.judge(interval, target, direction) == verdict
