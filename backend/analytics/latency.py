"""Latency from the records: p50/p95/p99 per scoring component (``predictions.timings``), model scoring
cached vs uncached, explanation calls by provider and model (``llm_usage``), and end to end per final
decision, overall, by month and by rollout phase (the phase in force when the request was scored, from
the approved rollout history), against the p95 target (``settings.monitoring.thresholds.latency_p95_max_s``,
the seed's 30 s).

**End-to-end latency p95 has one definition**, :func:`end_to_end_p95`; the Latency page, the phase
comparison's "Latency p95" (criterion of the scaled phase, AI arm) and the latency alert rule all call
it. Percentiles are linear-interpolation percentiles (PostgreSQL's ``percentile_cont``; numpy's default
on SQLite, see :mod:`backend.analytics.latency_queries`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy.orm import Session

from backend.analytics import latency_queries as q
from backend.analytics.stats import quantile_interval
from backend.platform.db.engine import Database
from backend.platform.ports import Clock

if TYPE_CHECKING:
    from backend.analytics.error_rate import ErrorRate

DEFAULT_TARGET_S = 30.0
#: The trailing window of the latency alert rule (and of the Latency page's "last 7 days" figure).
ALERT_WINDOW = timedelta(days=7)
QS = (0.5, 0.95, 0.99)
#: quantiles drawn for the end-to-end distribution (QS included)
DIST_QS = (0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.975, 0.99, 0.995, 0.999)
COMPONENT_NAMES = {
    "validate_ms": "Validation",
    "cache_ms": "Cache lookup",
    "score_uncached": "Model scoring (uncached)",
    "score_cached": "Cache read (cached requests)",
    "db_ms": "Database write",
    "db_read_ms": "Database read (known-application lookup)",
    "request": "Scoring request (total)",
}
E2E_NAME = "End to end per decision"
E2E_DEFINITION = ("End to end per decision: for every final decision, the scoring request its recommendation came "
                  "from (validation, cache lookup, model scoring, database read) plus every explanation LLM call made "
                  "for that prediction, timeouts and fallbacks included; later views of a stored explanation are not "
                  "part of it. p95: linear interpolation; interval: distribution-free order statistics.")
BAD_TARGET = "the latency target must be a positive number of seconds (got {value!r})"


@dataclass(frozen=True)
class LatencyFigure:
    """End-to-end latency p95 per decision with its interval, for one window, phase and arm (see
    :func:`end_to_end_p95`). A limit the sample is too small to give is ``None``."""

    p95_s: float | None
    low_s: float | None
    high_s: float | None
    n: int
    start: datetime | None = None
    end: datetime | None = None
    phase: str | None = None
    arm: str | None = None

    @property
    def period(self) -> str:
        if self.start is None and self.end is None:
            return "all history"
        lo = f"{self.start:%Y-%m-%d}" if self.start else "start"
        hi = f"{(self.end - timedelta(microseconds=1)):%Y-%m-%d}" if self.end else "now"
        return f"{lo}..{hi}"


def end_to_end_p95(s: Session, *, start: datetime | None = None, end: datetime | None = None,
                   phase: str | None = None, arm: str | None = None, alpha: float = 0.05) -> LatencyFigure:
    """The end-to-end latency p95 per decision: the one definition of this figure.

    Population: every **final decision** whose prediction was scored in ``[start, end)`` (all history
    by default); with ``phase``, only those scored while that rollout phase was in force (the approved
    version with the latest start at or before the scoring time, as the Latency page groups them);
    with ``arm``, only applications of that arm (the phase criteria read the AI arm).

    Value per decision: the **scoring request** its recommendation came from (the sum of its recorded
    timing components: validation, cache lookup, model scoring, database read; the prediction's
    ``latency_ms`` when it has none) **plus every explanation LLM call made for that prediction**
    (``llm_usage`` purpose ``explanation``, whenever it happened, timeouts and calls a fallback provider
    answered included). Views of a stored explanation (provider ``cache``) are excluded: they happen when
    an officer comes back to a decision, not while it is made. Undecided predictions are not decisions.

    Returns
    -------
    LatencyFigure
        The linear-interpolation 95th percentile in seconds (PostgreSQL's ``percentile_cont``, numpy's
        default) with the distribution-free order-statistic ``1 - alpha`` interval of
        :func:`backend.analytics.stats.quantile_interval`, and ``n`` decisions; ``p95_s`` is None when
        there are none.
    """
    keys = q.timing_keys(s)
    ms = q.values(s, q.end_to_end(s, keys, start, end, phase=phase, arm=arm))
    return latency_figure(ms, alpha=alpha, start=start, end=end, phase=phase, arm=arm)


def end_to_end_p95_by_phase(s: Session, phases: Sequence[str], *, arm: str | None = None,
                            alpha: float = 0.05) -> dict[str, LatencyFigure]:
    """:func:`end_to_end_p95` for each of ``phases`` over all history, from one read of the decisions
    (the same population and value per decision; a test compares it with one call per phase)."""
    keys = q.timing_keys(s)
    found = q.values_by(s, q.end_to_end(s, keys, None, None, arm=arm, by_phase=True))
    empty = np.empty(0, dtype=float)
    return {p: latency_figure(found.get(p, empty), alpha=alpha, phase=p, arm=arm) for p in phases}


def latency_figure(ms: np.ndarray, *, alpha: float = 0.05, start: datetime | None = None,
                   end: datetime | None = None, phase: str | None = None, arm: str | None = None) -> LatencyFigure:
    """The p95 of latencies ``ms`` (milliseconds) in seconds, with its order-statistic interval (None where the
    sample is too small to give a limit), as :func:`end_to_end_p95` reports it for its window."""
    if not ms.size:
        return LatencyFigure(None, None, None, 0, start, end, phase, arm)
    ci = quantile_interval(ms, 0.95, alpha=alpha)
    return LatencyFigure(ci.estimate / 1000.0, _finite(ci.low), _finite(ci.high), int(ms.size), start, end, phase, arm)


def _finite(ms: float) -> float | None:
    return ms / 1000.0 if math.isfinite(ms) else None


@dataclass(frozen=True)
class LatencyRow:
    section: str  # component | explanation | end_to_end
    name: str
    grouping: str  # all | month | phase | cache | kind | provider
    group: str
    n: int
    mean_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    over_target: float | None = None  # share of decisions above the target (end to end only)


@dataclass(frozen=True)
class LatencyReport:
    rows: tuple[LatencyRow, ...]
    e2e_quantiles: tuple[tuple[float, float], ...]  # (quantile, ms), all final decisions
    target_s: float
    timing_keys: tuple[str, ...]
    method: str
    truncated: bool
    start: datetime | None
    end: datetime | None
    e2e: LatencyFigure  # end_to_end_p95 over the report's window
    recent: LatencyFigure  # end_to_end_p95 over the alert rule's window, up to the clock
    ai_by_phase: tuple[LatencyFigure, ...] = ()  # end_to_end_p95 per phase, AI arm (the phase criteria's figure)

    def table(self, section: str, grouping: str | None = None) -> list[LatencyRow]:
        return [r for r in self.rows if r.section == section and (grouping is None or r.grouping == grouping)]

    def overall(self, section: str, name: str) -> LatencyRow | None:
        return next((r for r in self.rows if r.section == section and r.name == name and r.grouping == "all"), None)

    @property
    def end_to_end(self) -> LatencyRow | None:
        return self.overall("end_to_end", E2E_NAME)

    @property
    def p95_end_to_end_s(self) -> float | None:
        return self.e2e.p95_s

    @property
    def target_met(self) -> bool | None:
        p = self.p95_end_to_end_s
        return None if p is None else p <= self.target_s


GROUPINGS = ("all", "cache", "kind", "provider", "phase", "month")


def _rows(section: str, dists: dict[q.Key, q.Dist], names: dict[str, str]) -> list[LatencyRow]:
    order = list(names)

    def rank(key: q.Key) -> tuple[int, int, str]:
        grouping, group, value = key
        return (order.index(value) if value in order else len(order), GROUPINGS.index(grouping), group)

    out = []
    for (grouping, group, value), d in sorted(dists.items(), key=lambda kv: rank(kv[0])):
        out.append(LatencyRow(section, names.get(value, value), grouping, group, d.n, d.mean, d.q[0.5], d.q[0.95],
                              d.q[0.99], d.max, d.over))
    return out


class LatencyService:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    @property
    def method(self) -> str:
        if self.db.dialect == "postgresql":
            return "percentile_cont in PostgreSQL"
        return f"linear percentiles (numpy) over the value columns read from {self.db.dialect}"

    def report(self, *, start: datetime | None = None, end: datetime | None = None,
               target_s: float = DEFAULT_TARGET_S) -> LatencyReport:
        """Every latency table of the page for ``[start, end)`` (all history by default), the end-to-end
        p95 of :func:`end_to_end_p95` for the window, the alert rule's window and each phase's AI arm."""
        if not target_s > 0:
            raise ValueError(BAD_TARGET.format(value=target_s))
        now = self.clock.now()
        with self.db.read() as s:
            keys = q.timing_keys(s)
            values = [("score_uncached" if k == "score_ms" else k) for k in keys]
            values += ["score_cached"] if "score_ms" in keys else []
            groupings: dict[str | None, list[str]] = {
                None: [*values, "request", "e2e"],
                "month": [*(["score_uncached"] if "score_ms" in keys else []), "request", "e2e"],
                "phase": ["request", "e2e"], "cache": ["request"], "kind": ["e2e"]}
            dists, truncated = q.distributions(s, q.prediction_latency(s, keys, start, end), groupings=groupings,
                                               qs=DIST_QS, thresholds={"e2e": target_s * 1000.0})
            llm, t3 = q.distributions(s, q.llm_latency(s, start, end), groupings={"provider": ["ms"]}, qs=QS)
            e2e = end_to_end_p95(s, start=start, end=end)
            recent = end_to_end_p95(s, start=now - ALERT_WINDOW, end=now)
            phases = sorted({k[1] for k in dists if k[0] == "phase" and k[2] == "e2e"})
            ai = tuple(f for f in (end_to_end_p95(s, start=start, end=end, phase=p, arm="ai") for p in phases) if f.n)
        comp = {k: d for k, d in dists.items() if k[2] != "e2e"}
        e2e_d = {k: d for k, d in dists.items() if k[2] == "e2e"}
        rows = _rows("component", comp, COMPONENT_NAMES)
        rows += _rows("end_to_end", e2e_d, {"e2e": E2E_NAME})
        rows += _rows("explanation", llm, {"ms": "LLM call"})
        overall = e2e_d.get(("all", "all", "e2e"))
        quantiles = tuple(sorted(overall.q.items())) if overall else ()
        return LatencyReport(tuple(rows), quantiles, target_s, tuple(keys), self.method, truncated or t3, start, end,
                             e2e, recent, ai)

    def end_to_end_p95(self, *, start: datetime | None = None, end: datetime | None = None, phase: str | None = None,
                       arm: str | None = None, alpha: float = 0.05) -> LatencyFigure:
        """:func:`end_to_end_p95` in a read session of its own."""
        with self.db.read() as s:
            return end_to_end_p95(s, start=start, end=end, phase=phase, arm=arm, alpha=alpha)

    def errors(self, at: datetime | None = None) -> ErrorRate:
        """The error-rate alert rule's figure: :func:`backend.analytics.error_rate.error_rate` of the scoring
        requests made in the :data:`ALERT_WINDOW` before ``at`` (default: now)."""
        from backend.analytics.error_rate import error_rate

        at = at or self.clock.now()
        with self.db.read() as s:
            return error_rate(s, at - ALERT_WINDOW, at)

    def recent(self, at: datetime | None = None) -> LatencyFigure:
        """The latency alert rule's figure: :func:`end_to_end_p95` over the :data:`ALERT_WINDOW` before
        ``at`` (default: now)."""
        at = at or self.clock.now()
        return self.end_to_end_p95(start=at - ALERT_WINDOW, end=at)
