"""Latency from the records: p50/p95/p99 per scoring component (``predictions.timings``), model scoring
cached vs uncached, explanation calls by provider and model (``llm_usage``), and end to end per final
decision (its scoring request plus its explanation calls), overall, by month and by rollout phase (the
phase in force when the request was scored, from the approved rollout history), against the p95 target
(``settings.monitoring.thresholds.latency_p95_max_s``, the seed's 30 s).

Percentiles are linear-interpolation percentiles (PostgreSQL's ``percentile_cont``; numpy's default on
SQLite, see :mod:`backend.services.cost_queries`). Stored-explanation views (``llm_usage`` rows with
provider ``cache``) are shown as their own provider and are not part of a decision's end-to-end time:
they happen when an officer comes back to a decision, not while it is made.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from backend.db.engine import Database
from backend.ports import Clock
from backend.services import cost_queries as q

DEFAULT_TARGET_S = 30.0
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
BAD_TARGET = "the latency target must be a positive number of seconds (got {value!r})"


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

    def table(self, section: str, grouping: str | None = None) -> list[LatencyRow]:
        return [r for r in self.rows if r.section == section and (grouping is None or r.grouping == grouping)]

    def overall(self, section: str, name: str) -> LatencyRow | None:
        return next((r for r in self.rows if r.section == section and r.name == name and r.grouping == "all"), None)

    @property
    def end_to_end(self) -> LatencyRow | None:
        return self.overall("end_to_end", "End to end per decision")

    @property
    def p95_end_to_end_s(self) -> float | None:
        e = self.end_to_end
        return None if e is None else e.p95_ms / 1000.0

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
        """Every latency table of the page for ``[start, end)`` (all history by default)."""
        if not target_s > 0:
            raise ValueError(BAD_TARGET.format(value=target_s))
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
        comp = {k: d for k, d in dists.items() if k[2] != "e2e"}
        e2e = {k: d for k, d in dists.items() if k[2] == "e2e"}
        rows = _rows("component", comp, COMPONENT_NAMES)
        rows += _rows("end_to_end", e2e, {"e2e": "End to end per decision"})
        rows += _rows("explanation", llm, {"ms": "LLM call"})
        overall = e2e.get(("all", "all", "e2e"))
        quantiles = tuple(sorted(overall.q.items())) if overall else ()
        return LatencyReport(tuple(rows), quantiles, target_s, tuple(keys), self.method, truncated or t3, start, end)

    def end_to_end_p95_s(self, start: datetime, end: datetime) -> float | None:
        """p95 of end-to-end decision latency (seconds) for decisions scored in ``[start, end)``; None
        when there are none (for the latency alert rule)."""
        with self.db.read() as s:
            dists, _ = q.distributions(s, q.end_to_end(s, q.timing_keys(s), start, end), groupings={None: ["e2e"]},
                                       qs=(0.95,))
        d = dists.get(("all", "all", "e2e"))
        return None if d is None else d.q[0.95] / 1000.0
