"""Statistics several features share, one definition each (the features' own statistics live with them).

* :func:`wilson_interval`: the Wilson score interval of a binomial proportion, the one used for every
  rate with an interval (the phase comparison's rates in :mod:`backend.analytics`, the calibration
  bins of realized performance in :mod:`backend.monitoring`). statsmodels computes it.
* :func:`auc_interval`: the Hanley-McNeil interval of an AUC, the one used for realized performance
  (:mod:`backend.monitoring`) and for the less-discriminatory-alternatives frontier (:mod:`backend.training`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054  # two-sided 95% normal quantile
BAD_COUNTS = "Counts must satisfy 0 <= successes <= trials and trials > 0 (got {x} of {n})."
BAD_ALPHA = "alpha must be between 0 and 0.5 (got {alpha})."


@dataclass(frozen=True)
class Interval:
    """A point estimate with its two-sided ``1 - alpha`` confidence interval."""

    estimate: float
    low: float
    high: float

    def excludes(self, value: float) -> bool:
        return bool(self.low > value or self.high < value)


def check_alpha(alpha: float) -> None:
    if not 0 < alpha < 0.5:
        raise ValueError(BAD_ALPHA.format(alpha=alpha))


def check_counts(x: float, n: float) -> None:
    if not (n > 0 and 0 <= x <= n) or math.isnan(x) or math.isnan(n):
        raise ValueError(BAD_COUNTS.format(x=x, n=n))


def wilson_interval(x: float, n: float, *, alpha: float = 0.05) -> Interval:
    """Wilson score interval for a binomial proportion (E. B. Wilson, JASA 22, 1927).

    Parameters
    ----------
    x, n : float
        Successes and trials (``0 <= x <= n``, ``n > 0``).
    alpha : float
        One minus the confidence level (``0 < alpha < 0.5``).

    Returns
    -------
    Interval
        ``x / n`` with statsmodels' ``proportion_confint(x, n, alpha, method="wilson")``: the score
        interval, which stays inside [0, 1] and keeps close to nominal coverage for small ``n`` and
        rates near 0 or 1, unlike the Wald interval.

    Raises
    ------
    ValueError
        Counts outside ``0 <= x <= n``, ``n <= 0``, or ``alpha`` outside (0, 0.5), with a one-line message.
    """
    check_counts(x, n)
    check_alpha(alpha)
    from statsmodels.stats.proportion import proportion_confint  # imported on first use: pages load faster

    low, high = proportion_confint(x, n, alpha=alpha, method="wilson")
    # the limits at x = 0 and x = n are exactly 0 and 1 (statsmodels leaves a rounding residue there)
    return Interval(x / n, 0.0 if x == 0 else max(0.0, float(low)), 1.0 if x == n else min(1.0, float(high)))


def auc_interval(value: float | None, n_pos: int, n_neg: int, z: float = Z95) -> tuple[float, float] | None:
    """Approximate confidence interval of an AUC (Hanley & McNeil, 1982); hand-written: scikit-learn,
    scipy and statsmodels offer no AUC interval.

    Parameters
    ----------
    value : float or None
        The AUC.
    n_pos, n_neg : int
        Defaulters and non-defaulters it was computed from.
    z : float
        Normal quantile (1.96: 95%).

    Returns
    -------
    tuple of float or None
        ``(lo, hi)`` clipped to [0, 1], from the standard error
        ``sqrt((A(1-A) + (n1-1)(Q1-A^2) + (n2-1)(Q2-A^2)) / (n1 n2))`` with ``Q1 = A/(2-A)`` and
        ``Q2 = 2A^2/(1+A)``; ``None`` when the AUC is undefined.
    """
    if value is None or n_pos <= 0 or n_neg <= 0:
        return None
    a = value
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = (a * (1 - a) + (n_pos - 1) * (q1 - a * a) + (n_neg - 1) * (q2 - a * a)) / (n_pos * n_neg)
    se = math.sqrt(max(var, 0.0))
    return max(0.0, a - z * se), min(1.0, a + z * se)
