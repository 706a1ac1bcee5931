"""Library statistics vs the hand-written code they replaced, and the hand-written code that stays.

Run: ``.venv/bin/python bench/stats_library.py [--repeat 30]``

Baselines are copies of the hand-written implementations removed at commit b0356b6 (below, ``old_*``); the
current code is what ``backend.analytics.stats``, ``backend.platform.stats`` and
``backend.monitoring.performance_metrics`` call now (statsmodels, scipy, scikit-learn). Every line prints
the median time per call of each and the ratio new / old, in the same run. Two rows measure code that
stayed hand-written: the exact order-statistic bootstrap of a median difference against
``scipy.stats.bootstrap`` (what it would be replaced by), and the realized-performance ``evaluate`` of one
vintage group (the unit a refresh repeats for every vintage, arm and model version). Timings depend on
the machine and its load (printed).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import optimize
from scipy import stats as sps

from backend.analytics import stats as st
from backend.monitoring import performance_metrics as pm


# -- the removed hand-written implementations (baselines) ----------------------------------------------
def old_wilson(x: float, n: float, z: float = 1.959963984540054) -> tuple[float, float]:
    p = x / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, center - half), min(1.0, center + half)


def old_newcombe(x1: float, n1: float, x2: float, n2: float) -> tuple[float, float]:
    (l1, h1), (l2, h2) = old_wilson(x1, n1), old_wilson(x2, n2)
    p1, p2 = x1 / n1, x2 / n2
    d = p1 - p2
    return d - math.sqrt((p1 - l1) ** 2 + (h2 - p2) ** 2), d + math.sqrt((h1 - p1) ** 2 + (p2 - l2) ** 2)


def old_ztest(x1: float, n1: float, x2: float, n2: float) -> tuple[float, float]:
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = (x1 / n1 - x2 / n2) / se
    return z, float(2 * sps.norm.sf(abs(z)))


def old_sample_size(baseline: float, mde: float, ratio: float = 1.0) -> int:
    z, zp = float(sps.norm.ppf(0.975)), float(sps.norm.ppf(0.8))
    h = abs(2 * math.asin(math.sqrt(baseline + mde)) - 2 * math.asin(math.sqrt(baseline)))
    k = 1 + 1 / ratio

    def achieved(n1: float) -> float:
        shift = h * math.sqrt(n1 / k)
        return float(sps.norm.cdf(shift - z) + sps.norm.cdf(-shift - z)) - 0.8

    return math.ceil(optimize.brentq(achieved, 1e-9, k * ((z + zp) / h) ** 2 * 2 + 10, xtol=1e-10) - 1e-9)


def old_quantile_interval(x: np.ndarray, q: float, alpha: float = 0.05) -> tuple[float, float, float]:
    x = np.sort(x)
    n = x.size
    lo_rank = int(sps.binom.ppf(alpha / 2, n, q))
    hi_rank = int(sps.binom.ppf(1 - alpha / 2, n, q)) + 1
    return (float(np.quantile(x, q)), float(x[lo_rank - 1]) if lo_rank >= 1 else -math.inf,
            float(x[hi_rank - 1]) if hi_rank <= n else math.inf)


def old_auc(y: np.ndarray, s: np.ndarray) -> float:
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    avg_rank = np.cumsum(counts) - (counts - 1) / 2.0
    n_pos = int(y.sum())
    return (float(avg_rank[inverse][y == 1].sum()) - n_pos * (n_pos + 1) / 2.0) / (n_pos * (y.size - n_pos))


def old_ks(y: np.ndarray, s: np.ndarray) -> float:
    bad, good = np.sort(s[y == 1]), np.sort(s[y == 0])
    grid = np.concatenate([bad, good])
    return float(np.max(np.abs(np.searchsorted(bad, grid, side="right") / bad.size
                               - np.searchsorted(good, grid, side="right") / good.size)))


def old_group(y: np.ndarray, p: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    """The four figures the library now computes, as the old code did them."""
    tpr, tnr = float(pred[y == 1].mean()), float(1 - pred[y == 0].mean())
    return {"auc": old_auc(y, p), "ks": old_ks(y, p), "brier": float(np.mean((p - y) ** 2)),
            "balanced_accuracy": (tpr + tnr) / 2, "accuracy": float((y == pred).mean())}


def new_group(y: np.ndarray, p: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    area, ks = pm.discrimination(y, p)  # one ROC curve, as evaluate() does
    return {"auc": area, "ks": ks, "brier": pm.brier(y, p),
            "balanced_accuracy": pm.balanced_accuracy(y, pred), "accuracy": pm.accuracy(y, pred)}


# -- timing -----------------------------------------------------------------------------------------
def timed(fn: Callable[[], Any], repeat: int) -> float:
    fn()  # warm: imports, caches
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs) * 1000


def row(name: str, old: Callable[[], Any], new: Callable[[], Any], repeat: int, labels: tuple[str, str]) -> None:
    a, b = timed(old, repeat), timed(new, repeat)
    print(f"{name:<44} {labels[0]} {a:9.3f} ms   {labels[1]} {b:9.3f} ms   ratio {b / a:7.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=30)
    r = ap.parse_args().repeat
    print(f"cpus {os.cpu_count()}, load {os.getloadavg()[0]:.2f}; median of {r} runs; ratio = new / old")
    lib = ("old", "new")
    row("Wilson interval (81 of 263)", lambda: old_wilson(81, 263), lambda: st.wilson_interval(81, 263), r, lib)
    row("Newcombe interval", lambda: old_newcombe(37, 1487, 410, 13641), lambda: st.diff_interval(37, 1487, 410, 13641),
        r, lib)
    row("two-proportion z-test", lambda: old_ztest(37, 1487, 410, 13641),
        lambda: st.two_proportion_ztest(37, 1487, 410, 13641), r, lib)
    row("sample size per arm", lambda: old_sample_size(0.3, -0.02, 9.0),
        lambda: st.sample_size_per_arm(0.3, -0.02, ratio=9.0), r, lib)
    x = np.random.default_rng(0).lognormal(8, 0.6, 200_000)
    row("p95 with its interval, 200,000 values", lambda: old_quantile_interval(x, 0.95),
        lambda: st.quantile_interval(x, 0.95), r, lib)
    rng = np.random.default_rng(1)
    for n in (300, 5_000, 50_000):
        y = (rng.random(n) < 0.1).astype(np.int8)
        p = np.clip(rng.beta(2, 8, n) + 0.1 * y, 0, 1)
        pred = (p > 0.3).astype(np.int8)
        row(f"AUC, KS, Brier, accuracies: {n:,} loans", lambda y=y, p=p, pred=pred: old_group(y, p, pred),
            lambda y=y, p=p, pred=pred: new_group(y, p, pred), r, lib)
    # stays hand-written: the exact bootstrap of medians vs scipy.stats.bootstrap on the same question
    a, b = rng.exponential(40, 5_000), rng.exponential(60, 4_000)

    def scipy_boot() -> Any:
        return sps.bootstrap((a, b), lambda u, v, axis: np.median(u, axis=axis) - np.median(v, axis=axis),
                             method="percentile", n_resamples=2000, random_state=1, vectorized=True,
                             batch=200).confidence_interval

    row("median difference, 2,000 resamples (kept)", scipy_boot, lambda: st.bootstrap_median_diff(a, b, seed=1),
        max(3, r // 10), ("scipy", "ours"))


if __name__ == "__main__":
    main()
