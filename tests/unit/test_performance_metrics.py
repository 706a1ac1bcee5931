"""Realized-performance metrics against scikit-learn and scipy on random data, by hand on small
cases, and on degenerate input (empty, one class) where they answer None with a reason."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import ks_2samp
from sklearn.metrics import accuracy_score, balanced_accuracy_score, brier_score_loss, roc_auc_score

from backend.monitoring.performance_metrics import (
    BAD_LABELS,
    BAD_PROBS,
    BAD_SCORES,
    LENGTH_MISMATCH,
    NO_ROWS,
    ONE_CLASS,
    accuracy,
    auc,
    auc_interval,
    bad_rate,
    balanced_accuracy,
    brier,
    calibration_check,
    calibration_table,
    evaluate,
    expected_bad_rate,
    ks_statistic,
    why_undefined,
)


def _data(seed: int, n: int, *, ties: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.beta(1.2, 30, n)
    if ties:
        p = np.round(p, 2)  # many equal scores
    y = (rng.random(n) < np.clip(p * 1.5, 0, 1)).astype(int)
    y[:2] = [0, 1]  # both classes always present
    pred = (p >= np.quantile(p, 0.8)).astype(int)
    return y, p, pred


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("ties", [False, True])
def test_metrics_match_sklearn_and_scipy(seed, ties):
    y, p, pred = _data(seed, 500 + 400 * seed, ties=ties)
    assert auc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert ks_statistic(y, p) == pytest.approx(ks_2samp(p[y == 1], p[y == 0]).statistic, abs=1e-12)
    assert balanced_accuracy(y, pred) == pytest.approx(balanced_accuracy_score(y, pred), abs=1e-12)
    assert accuracy(y, pred) == pytest.approx(accuracy_score(y, pred), abs=1e-12)
    assert brier(y, p) == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    assert bad_rate(y) == pytest.approx(y.mean())


def test_booleans_and_lists_are_accepted():
    y = [True, False, True, False]
    s = [0.9, 0.1, 0.4, 0.6]
    assert auc(y, s) == pytest.approx(roc_auc_score(y, s))
    assert accuracy(y, [1, 0, 0, 0]) == 0.75


def test_small_cases_by_hand():
    y, s = [0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]
    assert auc(y, s) == 0.75  # 3 of 4 (default, repaid) pairs ordered right
    assert ks_statistic(y, s) == 0.5
    assert auc([0, 1], [0.3, 0.3]) == 0.5  # a tie counts one half
    assert ks_statistic([0, 1], [0.2, 0.2]) == 0.0
    assert balanced_accuracy([0, 0, 0, 1], [0, 0, 1, 1]) == pytest.approx((1 + 2 / 3) / 2)
    assert brier([0, 1], [0.2, 0.6]) == pytest.approx((0.04 + 0.16) / 2)


@pytest.mark.parametrize("y", [[], [0, 0, 0], [1, 1]])
def test_degenerate_input_gives_none_with_a_reason(y):
    p = [0.1] * len(y)
    assert auc(y, p) is None and ks_statistic(y, p) is None and balanced_accuracy(y, [0] * len(y)) is None
    reason = why_undefined(y)
    assert reason == (NO_ROWS if not y else ONE_CLASS.format(defaults=sum(y), n=len(y)))
    out = evaluate(y, p, [0] * len(y))
    assert out["auc"] is None and out["undefined"]["auc"] == reason
    assert set(out["undefined"]) >= {"auc", "ks", "balanced_accuracy"}
    if y:  # defined with one class: rate, accuracy, Brier, calibration
        assert out["bad_rate"] == sum(y) / len(y) and out["accuracy"] is not None and out["brier"] is not None
        assert "accuracy" not in out["undefined"] and out["calibration"]
    else:
        assert out["bad_rate"] is None and out["accuracy"] is None and out["calibration"] == []
        assert out["calibration_check"] is None and out["undefined"]["bad_rate"] == NO_ROWS
    assert expected_bad_rate([]) is None


def test_bad_input_is_refused_with_a_clear_message():
    with pytest.raises(ValueError, match=r"differ in length \(3 vs 2\)"):
        auc([0, 1, 0], [0.1, 0.2])
    assert LENGTH_MISMATCH.format(a=3, b=2) == "The inputs differ in length (3 vs 2)."
    with pytest.raises(ValueError) as exc:
        auc([0, 2, 1], [0.1, 0.2, 0.3])
    assert str(exc.value) == BAD_LABELS.format(value=2)
    with pytest.raises(ValueError) as exc:
        bad_rate([0, None, 1])
    assert str(exc.value) == BAD_LABELS.format(value=None) == "Labels must be 0/1 or booleans (got None)."
    with pytest.raises(ValueError) as exc:
        bad_rate(["0", "1"])
    assert str(exc.value) == BAD_LABELS.format(value="0")
    with pytest.raises(ValueError) as exc:
        bad_rate([0.0, float("nan")])
    assert "Labels must be 0/1" in str(exc.value)
    with pytest.raises(ValueError) as exc:
        auc([0, 1], [0.1, float("inf")])
    assert str(exc.value) == BAD_SCORES
    with pytest.raises(ValueError) as exc:
        brier([0, 1], [0.1, 1.2])
    assert str(exc.value) == BAD_PROBS
    with pytest.raises(ValueError) as exc:
        expected_bad_rate(["a"])
    assert str(exc.value) == BAD_PROBS
    with pytest.raises(ValueError, match="differ in length"):
        accuracy([0, 1], [1])


def test_calibration_table_bins_and_intervals():
    y, p, _ = _data(3, 5000)
    rows = calibration_table(y, p, bins=10)
    assert len(rows) == 10 and sum(r["n"] for r in rows) == 5000 and sum(r["defaults"] for r in rows) == y.sum()
    assert all(a["hi"] <= b["lo"] for a, b in zip(rows, rows[1:], strict=False))  # PD-ordered, no overlap
    for r in rows:
        assert r["lo"] <= r["mean_pd"] <= r["hi"] and r["obs_lo"] <= r["observed_rate"] <= r["obs_hi"]
    assert rows[-1]["observed_rate"] > rows[0]["observed_rate"]  # risk rises with the PD
    tied = calibration_table([0, 1, 0, 1, 0], [0.2, 0.2, 0.2, 0.2, 0.9], bins=4)  # ties never split
    assert [r["n"] for r in tied] == [4, 1]
    assert calibration_table([0, 1], [0.1, 0.2], bins=10) == calibration_table([0, 1], [0.1, 0.2], bins=2)
    with pytest.raises(ValueError, match="bins"):
        calibration_table([0], [0.1], bins=0)


def test_calibration_bins_use_the_one_wilson_interval():
    from statsmodels.stats.proportion import proportion_confint

    rows = calibration_table([0, 1, 0, 0, 1, 1, 0, 0], [0.1, 0.2, 0.2, 0.3, 0.5, 0.6, 0.7, 0.9], bins=2)
    for r in rows:
        lo, hi = proportion_confint(r["defaults"], r["n"], alpha=0.05, method="wilson")
        assert (r["obs_lo"], r["obs_hi"]) == pytest.approx((lo, hi), abs=1e-12)


def test_expected_bad_rate_and_calibration_check():
    p = np.full(10_000, 0.02)
    exp = expected_bad_rate(p)
    assert exp["mean"] == pytest.approx(0.02) and exp["n"] == 10_000
    sd = math.sqrt(10_000 * 0.02 * 0.98) / 10_000
    assert exp["sd"] == pytest.approx(sd) and exp["lo"] == pytest.approx(0.02 - 1.96 * sd, abs=1e-6)
    y = np.zeros(10_000, dtype=int)
    y[:200] = 1  # exactly as expected
    check = calibration_check(y, p)
    assert check["ratio"] == pytest.approx(1.0) and check["z"] == pytest.approx(0.0) and check["within"]
    y[:300] = 1  # 1.5x the expected defaults: far outside chance
    check = calibration_check(y, p)
    assert check["ratio"] == pytest.approx(1.5) and check["z"] > 5 and not check["within"]
    assert check["p_value"] < 1e-6 and check["expected_defaults"] == pytest.approx(200)
    # a calibrated simulation stays within its interval most of the time
    rng = np.random.default_rng(0)
    pds = rng.beta(1.2, 40, 4000)
    inside = sum(calibration_check((rng.random(4000) < pds).astype(int), pds)["within"] for _ in range(200))
    assert 180 <= inside <= 200


def test_auc_interval_is_close_to_the_bootstrap():
    y, p, pred = _data(11, 3000)
    a = auc(y, p)
    lo, hi = auc_interval(a, int(y.sum()), int(len(y) - y.sum()))
    rng = np.random.default_rng(1)
    boot = []
    for _ in range(300):
        i = rng.integers(0, len(y), len(y))
        if 0 < y[i].sum() < len(i):
            boot.append(roc_auc_score(y[i], p[i]))
    se_boot = float(np.std(boot))
    assert (hi - lo) / (2 * 1.959963984540054) == pytest.approx(se_boot, rel=0.25)
    assert lo < a < hi
    out = evaluate(y, p, pred)
    assert (out["auc_lo"], out["auc_hi"]) == (lo, hi)
    assert auc_interval(None, 3, 4) is None and auc_interval(0.7, 0, 5) is None
    assert auc_interval(1.0, 5, 5) == (1.0, 1.0)
