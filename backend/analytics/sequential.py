"""Always-valid inference for a lead who looks at the AI-vs-control difference every week.

A fixed-sample z-test read after every week of a phase rejects a true null far more often than
``alpha`` (26 weekly looks at alpha = 0.05 flag about one null experiment in five). Two remedies:

Hand-written: statsmodels, scipy and scikit-learn implement neither, and no confidence-sequence or
group-sequential package is a dependency.

**Confidence sequence (the default).** :func:`confidence_sequence_diff` gives, for every week
``t``, an interval ``C_t`` for ``delta = p_ai - p_control`` such that
``P(delta in C_t for all t) >= 1 - alpha`` (asymptotically): the lead may look every week, stop at
any time, and the interval in hand is still valid. Method: the asymptotic confidence sequence of
Waudby-Smith, Arnold, Wu, Howard and Ramdas [1]_ (Theorem 2.2, the two-sided normal-mixture
boundary of Robbins [2]_ with an estimated variance), applied to the difference in means: after
``n = n_ai + n_control`` observations,

    C_n = delta_hat +- sigma_hat * sqrt( 2 (n rho^2 + 1) / (n^2 rho^2) * log( sqrt(n rho^2 + 1) / alpha ) )

with ``sigma_hat^2 = n (p_ai (1 - p_ai) / n_ai + p_c (1 - p_c) / n_c)`` (the influence-function
variance of the difference in means; we take the larger of this and the pooled variance, which
keeps the sequence valid when an arm has few events) and ``rho`` tuning where the boundary is tightest:
``rho^2 = (-2 log alpha + log(1 - 2 log alpha)) / n_tuning``. Assumptions: observations are
independent, arms are assigned at random with a share that does not change within the phase
(one phase at a time), the variance is estimated consistently (so the guarantee is asymptotic:
no interval is given before each arm has :data:`MIN_EVENTS` events and non-events), and
``n_tuning`` is fixed before looking (it changes the width, never the validity). Weeks are
batches: the sequence is valid at every batch boundary.

**Alpha spending (the alternative).** :func:`spending_bounds` computes two-sided group-sequential
boundaries for a planned maximum sample with the Lan-DeMets O'Brien-Fleming-type spending function
[3]_ on each side (``alpha/2`` per side: ``alpha(t) = 4 - 4 Phi(z_{alpha/4} / sqrt(t))`` in all, as
the R packages ldbounds and gsDesign), by the usual recursive numerical integration
of the Brownian-motion score process [4]_. It is sharper near the planned end but needs that end
fixed in advance; looks past it spend nothing more.

References
----------
.. [1] I. Waudby-Smith, D. Arnold, J. M. Wu, S. R. Howard, A. Ramdas (2024). Time-uniform central
   limit theory and asymptotic confidence sequences. Annals of Statistics 52(6), 2613-2640.
.. [2] H. Robbins (1970). Statistical methods related to the law of the iterated logarithm.
   Annals of Mathematical Statistics 41(5), 1397-1409.
.. [3] K. K. G. Lan, D. L. DeMets (1983). Discrete sequential boundaries for clinical trials.
   Biometrika 70(3), 659-663.
.. [4] C. Jennison, B. W. Turnbull (2000). Group Sequential Methods with Applications to Clinical
   Trials, chapter 19.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import optimize, stats

#: Where the confidence sequence is tightest (total observations, both arms) unless told otherwise.
DEFAULT_TUNING_N = 5_000
#: Events and non-events each arm needs before the sequence gives an interval.
MIN_EVENTS = 5
BAD_FRACTIONS = "Information fractions must be increasing and positive (got {t})."
BAD_ALPHA = "alpha must be between 0 and 0.5 (got {alpha})."
_GRID = 301  # points of the numerical integration grid per look


@dataclass(frozen=True)
class ConfidenceSequence:
    """Estimates and always-valid limits after each look (arrays of the looks' shape)."""

    estimate: np.ndarray
    low: np.ndarray
    high: np.ndarray
    ready: np.ndarray  # the look has enough events for an interval

    def excludes_zero(self) -> np.ndarray:
        return np.asarray((self.low > 0) | (self.high < 0))


def _rho2(alpha: float, tuning_n: float) -> float:
    if not 0 < alpha < 0.5:
        raise ValueError(BAD_ALPHA.format(alpha=alpha))
    la = -2 * math.log(alpha)
    return (la + math.log(1 + la)) / tuning_n


def cs_half_width(sigma: ArrayLike, n: ArrayLike, *, alpha: float = 0.05,
                  tuning_n: float = DEFAULT_TUNING_N) -> np.ndarray:
    """Half-width of the two-sided asymptotic confidence sequence for a mean.

    Parameters
    ----------
    sigma : ndarray
        Estimated standard deviation of one observation (its influence function).
    n : ndarray
        Observations so far.
    alpha : float
        Probability that the sequence ever misses the parameter.
    tuning_n : float
        Sample size at which the boundary is tightest.

    Returns
    -------
    ndarray
        ``sigma * sqrt(2 (n rho^2 + 1) / (n^2 rho^2) * log(sqrt(n rho^2 + 1) / alpha))`` (see the
        module docstring); ``inf`` where ``n`` is 0.
    """
    rho2 = _rho2(alpha, tuning_n)
    n = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.sqrt(2 * (n * rho2 + 1) / (n * n * rho2) * np.log(np.sqrt(n * rho2 + 1) / alpha))
        return np.where(n > 0, np.asarray(sigma, dtype=float) * w, np.inf)


def _var_rate(x: np.ndarray, n: np.ndarray) -> np.ndarray:
    """p (1 - p) with p shrunk by half an event (only inside the variance)."""
    p = (x + 0.5) / (n + 1.0)
    return p * (1 - p)


def confidence_sequence_diff(x_ai: ArrayLike, n_ai: ArrayLike, x_control: ArrayLike, n_control: ArrayLike,
                             *, alpha: float = 0.05, tuning_n: float = DEFAULT_TUNING_N,
                             min_events: int = MIN_EVENTS) -> ConfidenceSequence:
    """Always-valid confidence sequence for ``p_ai - p_control`` from cumulative counts.

    Parameters
    ----------
    x_ai, n_ai, x_control, n_control : array_like
        Cumulative events and trials of each arm after each look (any shape; the last axis is
        usually time, leading axes may be simulation repetitions).
    alpha : float
        Probability that any of the intervals, over all looks, misses the true difference.
    tuning_n : float
        Total observations where the sequence is tightest; fix it before the phase starts.
    min_events : int
        Looks before each arm has this many events and this many non-events give no interval
        (infinite limits): the normal approximation behind the guarantee needs them.

    Returns
    -------
    ConfidenceSequence
        The estimate and the limits after each look, and ``ready`` (the look has an interval).

    Notes
    -----
    The variance is the larger of the unpooled and the pooled estimate (each with the rates
    shrunk by half an event), so it never falls below the null variance when an arm has few
    events; with rare events and a small arm the unpooled plug-in alone misses the null far too
    often in the first weeks (see ``tests/unit/test_sequential.py``).
    """
    x1, n1 = np.asarray(x_ai, dtype=float), np.asarray(n_ai, dtype=float)
    x2, n2 = np.asarray(x_control, dtype=float), np.asarray(n_control, dtype=float)
    ready = np.minimum(np.minimum(x1, n1 - x1), np.minimum(x2, n2 - x2)) >= max(min_events, 0)
    ready &= (n1 > 0) & (n2 > 0)
    s1, s2 = np.where(n1 > 0, n1, 1.0), np.where(n2 > 0, n2, 1.0)
    est = np.where((n1 > 0) & (n2 > 0), x1 / s1 - x2 / s2, np.nan)
    unpooled = _var_rate(x1, s1) / s1 + _var_rate(x2, s2) / s2
    pooled = _var_rate(x1 + x2, s1 + s2) * (1 / s1 + 1 / s2)
    n = n1 + n2
    half = cs_half_width(np.sqrt(n * np.maximum(unpooled, pooled)), n, alpha=alpha, tuning_n=tuning_n)
    return ConfidenceSequence(est, np.where(ready, est - half, -np.inf), np.where(ready, est + half, np.inf), ready)


def naive_z(x_ai: ArrayLike, n_ai: ArrayLike, x_control: ArrayLike, n_control: ArrayLike) -> np.ndarray:
    """The fixed-sample pooled z statistic recomputed at every look (for comparison: reading it
    every week and stopping at the first ``|z| > z_{alpha/2}`` inflates the false-positive rate)."""
    x1, n1, x2, n2 = (np.asarray(v, dtype=float) for v in (x_ai, n_ai, x_control, n_control))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = (x1 + x2) / (n1 + n2)
        se = np.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
        z = (x1 / n1 - x2 / n2) / se
    return np.where(np.isfinite(z), z, 0.0)


# -- alpha spending ----------------------------------------------------------------------------------
def obf_spending(t: ArrayLike, alpha: float = 0.05) -> np.ndarray:
    """Two-sided type I error spent by information fraction ``t`` (capped at 1): the Lan-DeMets
    O'Brien-Fleming-type function at ``alpha/2`` on each side, ``4 - 4 Phi(z_{alpha/4} / sqrt(t))``."""
    if not 0 < alpha < 0.5:
        raise ValueError(BAD_ALPHA.format(alpha=alpha))
    tt = np.minimum(np.asarray(t, dtype=float), 1.0)
    z = stats.norm.ppf(1 - alpha / 4)
    with np.errstate(divide="ignore"):
        return np.where(tt > 0, 4 - 4 * stats.norm.cdf(z / np.sqrt(np.maximum(tt, 1e-300))), 0.0)


def spending_bounds(fractions: ArrayLike, alpha: float = 0.05) -> np.ndarray:
    """Two-sided z boundaries for looks at information fractions ``t_1 < ... < t_K``.

    Parameters
    ----------
    fractions : array_like
        Information fraction of each look (observations so far over the planned maximum); values
        above 1 are treated as 1 (nothing more is spent).
    alpha : float
        Two-sided type I error over all looks.

    Returns
    -------
    ndarray
        ``c_k`` such that rejecting at the first ``|Z_k| >= c_k`` has probability ``alpha`` under
        the null; for 5 equally spaced looks at 0.05: 4.877, 3.357, 2.680, 2.290, 2.031.
        Computed by recursive numerical integration of the score process on a grid [4]_; a look
        that spends nothing gets ``inf``.
    """
    t = np.minimum(np.asarray(fractions, dtype=float), 1.0)
    if t.size == 0 or np.any(t <= 0) or np.any(np.diff(t) < 0):
        raise ValueError(BAD_FRACTIONS.format(t=list(np.round(t, 4))))
    spend = np.diff(np.r_[0.0, obf_spending(t, alpha)])
    bounds = np.full(t.size, np.inf)
    grid: np.ndarray | None = None  # values of the score process B(t) kept (continuing) so far
    dens: np.ndarray | None = None  # their sub-density times the quadrature weights
    prev_t = 0.0
    for k, (tk, a_k) in enumerate(zip(t, spend, strict=True)):
        dt = tk - prev_t
        if dt <= 0:  # a repeated fraction: no new information, nothing to spend
            continue
        if a_k <= 1e-15:  # nothing left to spend at this look: no boundary, paths carry on
            grid, dens = _propagate(grid, dens, dt, math.inf, tk)
            prev_t = tk
            continue

        def cross(c: float, grid: np.ndarray | None = grid, dens: np.ndarray | None = dens,
                  dt: float = dt, tk: float = tk) -> float:
            b = c * math.sqrt(tk)
            if grid is None or dens is None:
                return float(2 * stats.norm.sf(c))
            sd = math.sqrt(dt)
            p = stats.norm.sf((b - grid) / sd) + stats.norm.cdf((-b - grid) / sd)
            return float(np.sum(dens * p))

        bounds[k] = optimize.brentq(lambda c, a=a_k: cross(c) - a, 0.0, 40.0, xtol=1e-10)
        grid, dens = _propagate(grid, dens, dt, bounds[k] * math.sqrt(tk), tk)
        prev_t = tk
    return bounds


def _propagate(grid: np.ndarray | None, dens: np.ndarray | None, dt: float, b: float,
               tk: float) -> tuple[np.ndarray, np.ndarray]:
    """Sub-density (times Simpson weights) of B(t_k) on (-b, b) for paths that never crossed."""
    b = min(b, 12 * math.sqrt(tk))
    new = np.linspace(-b, b, _GRID)
    h = new[1] - new[0]
    w = np.ones(_GRID)
    w[1:-1:2], w[2:-1:2] = 4.0, 2.0
    w *= h / 3
    if grid is None or dens is None:
        f = stats.norm.pdf(new / math.sqrt(tk)) / math.sqrt(tk)
    else:
        sd = math.sqrt(dt)
        f = (stats.norm.pdf((new[:, None] - grid[None, :]) / sd) / sd) @ dens
    return new, f * w
