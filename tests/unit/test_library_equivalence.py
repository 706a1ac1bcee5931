"""The library calls that replaced hand-written statistics give the old numbers.

Every expected value below was computed once by the hand-written implementations this change removed
(``backend/analytics/stats.py`` and ``backend/monitoring/performance_metrics.py`` at commit b0356b6:
Wilson, Newcombe, the pooled z-test, the Katz ratio interval, the arcsine sample size, the
order-statistic quantile interval, rank AUC, KS by searchsorted, Brier, balanced accuracy, accuracy,
the calibration bins' Wilson limits) and frozen here with the tolerance they agree to. The inputs are
literal or arithmetic (no random generator, whose streams may change between numpy versions).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from backend.analytics import stats as st
from backend.monitoring import performance_metrics as pm
from backend.platform.stats import wilson_interval

WILSON = {  # (x, n, alpha): (low, high)
    (0, 10, 0.05): (0.0, 0.2775327998628892),
    (0, 10, 0.01): (0.0, 0.3988540933049081),
    (1, 10, 0.05): (0.017876213095072896, 0.4041500267952385),
    (1, 10, 0.01): (0.011851503411032943, 0.5072317712328935),
    (9, 10, 0.05): (0.5958499732047615, 0.9821237869049271),
    (9, 10, 0.01): (0.4927682287671065, 0.9881484965889671),
    (10, 10, 0.05): (0.7224672001371107, 0.9999999999999999),
    (10, 10, 0.01): (0.6011459066950919, 1.0),
    (81, 263, 0.05): (0.2552885198782742, 0.36620957698280004),
    (81, 263, 0.01): (0.24013690268760773, 0.38528250231822986),
    (15, 148, 0.05): (0.0623863995307363, 0.16048724172330803),
    (15, 148, 0.01): (0.05364486961396486, 0.1832673501131525),
    (1487, 20000, 0.05): (0.07079539558333978, 0.07806808471122209),
    (1487, 20000, 0.01): (0.06971164961139041, 0.07927067110399431),
    (3, 3000, 0.05): (0.00034014721903916404, 0.002936143808836147),
    (3, 3000, 0.01): (0.00025262417712601103, 0.003949713996792236),
}
NAN = math.nan
PAIRS = {  # (x1, n1, x2, n2): (Newcombe (low, high), z-test (z, p), Katz (rr, low, high)), alpha 0.05
    (56, 70, 48, 80): ((0.05243147240236498, 0.333872654036906), (2.6501719512585336, 0.00804508136819656),
                       (1.3333333333333335, 1.076626422763193, 1.651248511266387)),
    (9, 10, 3, 10): ((0.17052272393450302, 0.8090179735354881), (2.738612787525831, 0.006169899320544151),
                     (3.0, 1.13835035744767, 7.906177514784793)),
    (0, 25, 3, 30): ((-0.25621082579184085, 0.04838244593640961), (-1.6261090889699772, 0.1039264508717432),
                     (0.0, NAN, NAN)),
    (1200, 14000, 1500, 14000): ((-0.028345102778651432, -0.014519302238977383),
                                 (-6.073767001317859, 1.2494398007245233e-09),
                                 (0.8, 0.7442729169971181, 0.8598996220125503)),
    (5, 56, 0, 29): ((-0.03813714790353688, 0.19256001385511162), (1.6586488692392285, 0.09718656817057973),
                     (NAN, NAN, NAN)),
    (10, 10, 0, 20): ((0.6790860371419147, 1.0), (5.47722557505166, 4.320463057827506e-08), (NAN, NAN, NAN)),
    (37, 1487, 410, 13641): ((-0.012585439850898127, 0.0044482759660258026),
                             (-1.118859220827219, 0.2632002023595448),
                             (0.8278527728115209, 0.5938811795476804, 1.154002243300085)),
}
SIZES = {  # (baseline, mde, alpha, power, ratio): (n_ai, n_control)
    (0.3, -0.02, 0.05, 0.8, 1.0): (8079, 8079),
    (0.05, 0.01, 0.05, 0.9, 9.0): (6056, 54504),
    (0.62, -0.05, 0.01, 0.8, 0.25): (5624, 1406),
    (0.1, 0.005, 0.1, 0.8, 1 / 9): (227460, 25274),
}
QUANTILES = {  # (first n values of SAMPLE, q): (estimate, low, high), alpha 0.05
    (5, 0.5): (7.170103092783505, -math.inf, math.inf),
    (5, 0.95): (9.109278350515464, 8.24742268041237, math.inf),
    (20, 0.5): (8.061855670103093, 6.092783505154639, 9.623711340206185),
    (20, 0.95): (13.277835051546393, 11.108247422680412, math.inf),
    (100, 0.5): (8.809278350515465, 7.876288659793815, 9.551546391752577),
    (100, 0.95): (13.390463917525773, 12.783505154639176, 14.278350515463918),
    (300, 0.5): (8.394329896907216, 7.706185567010309, 9.082474226804123),
    (300, 0.95): (14.039175257731959, 13.618556701030927, 14.515463917525773),
}
SAMPLE = np.array([((i * 7919) % 1009) / 97.0 + (i % 13) * 0.5 for i in range(1, 301)])
# a book of 2,000 loans: PDs spread over (0.01, 0.99), defaults where a second sequence falls below 0.6 PD
_I = np.arange(1, 2001)
PD = ((_I * 7919) % 1000) / 1000 * 0.98 + 0.01
Y = ((((_I * 104729) % 1000) / 1000) < PD * 0.6).astype(int)
PRED = (PD > 0.5).astype(int)
PERFORMANCE = {"bad_rate": 0.313, "auc": 0.7535750659207278, "ks": 0.41888378884904964,
               "balanced_accuracy": 0.6948858536676107, "accuracy": 0.668, "brier": 0.22297829339999997,
               "auc_lo": 0.7292304561730742, "auc_hi": 0.7779196756683813}
TIED = {"auc": 0.7344917709539555, "ks": 0.3198422553027238, "brier": 0.23014999999999997}  # PDs rounded to 0.1
CALIBRATION = [(0.0027466581335444384, 0.0357217617161768), (0.049840585889759974, 0.12598948826714396),
               (0.10713593562241995, 0.20605579284166659), (0.15928412069979, 0.2716461685990246),
               (0.22236889773949026, 0.3459230458665071), (0.28728824127358077, 0.4183653566395992),
               (0.34415674908482885, 0.4792354096630791), (0.411791663783233, 0.5489621492718576),
               (0.48075615138475697, 0.6173593159775166), (0.5409374595716976, 0.6749165686253038)]


def _same(got: float, want: float, *, rel: float = 1e-12, abs_: float = 1e-15) -> bool:
    if math.isnan(want):
        return math.isnan(got)
    if math.isinf(want):
        return got == want
    return got == pytest.approx(want, rel=rel, abs=abs_)


@pytest.mark.parametrize(("key", "want"), list(WILSON.items()))
def test_wilson_gives_the_old_limits(key: tuple[int, int, float], want: tuple[float, float]) -> None:
    x, n, alpha = key
    ci = wilson_interval(x, n, alpha=alpha)
    assert ci.estimate == x / n
    assert _same(ci.low, want[0]) and _same(ci.high, want[1])
    assert st.wilson_interval is wilson_interval  # the analytics name is the same one function


@pytest.mark.parametrize(("key", "want"), list(PAIRS.items()))
def test_two_proportion_statistics_give_the_old_values(key: tuple[int, int, int, int], want: tuple) -> None:
    (lo, hi), (z, p), (rr, rr_lo, rr_hi) = want
    d = st.diff_interval(*key)
    assert _same(d.low, lo) and _same(d.high, hi)
    t = st.two_proportion_ztest(*key)
    assert _same(t.statistic, z, rel=1e-10) and _same(t.p_value, p, rel=1e-9)
    r = st.relative_risk(*key)
    assert _same(r.estimate, rr) and _same(r.low, rr_lo, rel=1e-10) and _same(r.high, rr_hi, rel=1e-10)


@pytest.mark.parametrize(("key", "want"), list(SIZES.items()))
def test_sample_sizes_are_the_old_ones(key: tuple[float, ...], want: tuple[int, int]) -> None:
    baseline, mde, alpha, power, ratio = key
    assert st.sample_size_per_arm(baseline, mde, alpha=alpha, power=power, ratio=ratio) == want


@pytest.mark.parametrize(("key", "want"), list(QUANTILES.items()))
def test_quantile_intervals_are_the_old_order_statistics(key: tuple[int, float], want: tuple[float, ...]) -> None:
    n, q = key
    ci = st.quantile_interval(SAMPLE[:n], q)
    assert all(_same(g, w) for g, w in zip((ci.estimate, ci.low, ci.high), want, strict=True))


def test_realized_performance_figures_are_the_old_ones() -> None:
    out = pm.evaluate(Y, PD, PRED)
    assert out["n"] == 2000 and out["defaults"] == 626
    for key, want in PERFORMANCE.items():
        assert _same(out[key], want, rel=1e-12), key
    tied = np.round(PD, 1)
    assert _same(pm.auc(Y, tied), TIED["auc"]) and _same(pm.ks_statistic(Y, tied), TIED["ks"])
    assert _same(pm.brier(Y, tied), TIED["brier"])
    bins = [(r["obs_lo"], r["obs_hi"]) for r in out["calibration"]]
    assert len(bins) == len(CALIBRATION)
    assert all(_same(g, w) for got, want in zip(bins, CALIBRATION, strict=True) for g, w in zip(got, want, strict=True))
