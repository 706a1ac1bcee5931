"""Cost tracking from usage records and the configured price table.

Months are calendar months (UTC) with any recorded activity (scoring requests, LLM calls or final
decisions); the month in progress is billed up to the clock. Each month's :class:`Usage` comes from
SQL aggregates (:mod:`backend.analytics.cost_queries`) and is priced by the pure formulas of
:mod:`backend.analytics.cost_model`: serving instances bill every hour, LLM calls their recorded
``cost_usd`` (or tokens x ``llm.prices`` when missing), Lambda its requests and GB-seconds, the
database its instance-hours, storage the measured database and model registry size, the cache its
instance-hours when Redis is configured, monitoring a monthly fee.

Cost per scoring request is one figure: :attr:`backend.analytics.cost_model.Breakdown.per_request` of a
priced window (:meth:`CostService.window`); the alert rule and the Costs page's alert banner read the same
window, :meth:`CostService.recent`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from backend.analytics import cost_model as m
from backend.analytics import cost_queries as q
from backend.analytics import cost_scenarios as cs
from backend.analytics.config import CostSettings
from backend.explanations import ModelPrice
from backend.platform.db.engine import Database
from backend.platform.ports import Clock

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
ALERT_WINDOW = timedelta(days=30)  # the trailing window the cost alert rule reads
BAD_WINDOW = "the cost window must end after it starts (got {start} .. {end})"
NAIVE_WINDOW = "cost windows take timezone-aware UTC datetimes"


@dataclass(frozen=True)
class MonthCost:
    month: str
    partial: bool  # the month in progress (billed up to the clock)
    breakdown: m.Breakdown
    units: m.UnitCosts


@dataclass(frozen=True)
class CostReport:
    months: tuple[MonthCost, ...]
    total: m.Breakdown | None  # the whole history as one window (fixed costs summed month by month)
    total_units: m.UnitCosts | None
    projection: cs.Projection | None
    recent: m.Breakdown  # the trailing ALERT_WINDOW up to the clock (the alert rule's figure)
    settings: CostSettings
    llm_prices: dict[str, ModelPrice]
    redis_cache: bool
    storage_bytes: int
    computed_at: datetime

    def month(self, label: str) -> MonthCost | None:
        return next((x for x in self.months if x.month == label), None)

    @property
    def breakdowns(self) -> list[m.Breakdown]:
        return [x.breakdown for x in self.months]


class CostService:
    def __init__(self, db: Database, clock: Clock, costs: CostSettings, llm_prices: Mapping[str, ModelPrice], *,
                 cache_url: str = "", registry_dir: Path | None = None) -> None:
        self.db = db
        self.clock = clock
        self.costs = costs
        self.llm_prices = dict(llm_prices)
        self.redis_cache = cache_url.startswith(REDIS_SCHEMES)
        self.registry_dir = registry_dir

    # -- usage ------------------------------------------------------------------------------------
    def storage_bytes(self) -> int:
        with self.db.read() as s:
            size = q.database_bytes(s)
        return size + q.folder_bytes(self.registry_dir)

    def _usages(self, start: datetime | None, end: datetime | None, *, by_month: bool,
                storage: int) -> dict[str, m.Usage]:
        with self.db.read() as s:
            scoring = q.scoring_usage(s, start, end, by_month)
            llm = q.llm_usage(s, start, end, by_month)
            explained = q.explained_predictions(s, start, end, by_month)
            decisions = q.final_decisions(s, start, end, by_month)
            funded = q.funded_loans(s, start, end, by_month)
        by_key = {str(r[0]): r for r in scoring}
        keys = set(by_key) | {str(r[0]) for r in llm} | set(decisions)
        now = self.clock.now()
        out: dict[str, m.Usage] = {}
        for key in sorted(keys):
            if by_month:
                lo, hi = m.month_bounds(key)
                hi = min(hi, now)
                if hi <= lo:
                    continue
            else:
                assert start is not None and end is not None
                lo, hi = start, end
            sc = by_key.get(key)
            lines = tuple(m.LLMLine(provider=r[1], model=r[2] or "", purpose=r[3] or "", calls=int(r[4]),
                                    recorded_calls=int(r[5]), recorded_usd=float(r[6] or 0.0), token_calls=int(r[7] or 0),
                                    input_tokens=int(r[8] or 0), output_tokens=int(r[9] or 0),
                                    latency_ms=float(r[10] or 0.0)) for r in llm if str(r[0]) == key)
            out[key] = m.Usage(
                start=lo, end=hi, requests=int(sc[1]) if sc else 0, cached_requests=int(sc[2] or 0) if sc else 0,
                uncached_busy_ms=float(sc[3] or 0.0) if sc else 0.0, cached_busy_ms=float(sc[4] or 0.0) if sc else 0.0,
                llm=lines, explanations_llm=explained.get(key, 0),
                explanations_cached=sum(x.calls for x in lines
                                        if x.provider == m.CACHE_PROVIDER and x.purpose == "explanation"),
                decisions=decisions.get(key, 0), funded=funded.get(key, 0), storage_bytes=storage, label=key)
        return out

    def _price(self, u: m.Usage) -> m.Breakdown:
        return m.breakdown(u, self.costs, self.llm_prices, redis_cache=self.redis_cache)

    # -- use cases --------------------------------------------------------------------------------
    def window(self, start: datetime, end: datetime) -> m.Breakdown:
        """The priced usage of ``[start, end)`` (fixed costs up to the clock at most)."""
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError(NAIVE_WINDOW)
        if end <= start:
            raise ValueError(BAD_WINDOW.format(start=start, end=end))
        end = min(end, self.clock.now())
        if end <= start:
            raise ValueError(BAD_WINDOW.format(start=start, end=end) + " before the clock")
        storage = self.storage_bytes()
        usage = self._usages(start, end, by_month=False, storage=storage).get(q.ALL)
        return self._price(usage or m.Usage(start, end, storage_bytes=storage, label=q.ALL))

    def per_request(self, start: datetime, end: datetime) -> float | None:
        """Total cost in ``[start, end)`` / scoring requests in it; None when there were no requests
        (including a window that starts at or after the clock)."""
        if start.tzinfo is not None and end > start >= self.clock.now():
            return None
        return self.window(start, end).per_request

    def recent(self, at: datetime | None = None) -> m.Breakdown | None:
        """The cost alert rule's figure, also the Costs page's alert banner: the priced usage of the
        :data:`ALERT_WINDOW` before ``at`` (default: now), fixed costs up to the clock; its
        ``per_request`` is the cost per scoring request. None when the window starts at or after the
        clock (nothing billed yet)."""
        now = self.clock.now()
        at = at or now
        if at.tzinfo is None:
            raise ValueError(NAIVE_WINDOW)
        if at - ALERT_WINDOW >= now:
            return None
        return self.window(at - ALERT_WINDOW, at)

    def report(self) -> CostReport:
        """Every month with activity, the history's total, unit costs and the 3-month projection."""
        storage = self.storage_bytes()
        usages = self._usages(None, None, by_month=True, storage=storage)
        now = self.clock.now()
        months = []
        for key, u in usages.items():
            b = self._price(u)
            months.append(MonthCost(key, u.end < m.month_bounds(key)[1], b, m.unit_costs(b, self.costs)))
        total = _combine([x.breakdown for x in months], self.costs, self.llm_prices)
        complete = [x.breakdown for x in months if not x.partial]
        projection = (cs.project(complete, self.costs, after=months[-1].month, redis_cache=self.redis_cache)
                      if complete and months else None)
        recent = self.recent(now)
        assert recent is not None  # a window ending now starts before the clock
        return CostReport(tuple(months), total, m.unit_costs(total, self.costs) if total else None, projection,
                          recent, self.costs, dict(self.llm_prices), self.redis_cache, storage, now)


def _combine(bs: list[m.Breakdown], c: CostSettings, prices: Mapping[str, ModelPrice]) -> m.Breakdown | None:
    """Several windows as one: counts summed, LLM lines merged and priced again, fixed lines added up."""
    if not bs:
        return None
    us = [b.usage for b in bs]
    llm: dict[tuple[str, str, str], m.LLMLine] = {}
    for u in us:
        for ln in u.llm:
            k = (ln.provider, ln.model, ln.purpose)
            o = llm.get(k)
            llm[k] = ln if o is None else m.LLMLine(
                ln.provider, ln.model, ln.purpose, o.calls + ln.calls, o.recorded_calls + ln.recorded_calls,
                o.recorded_usd + ln.recorded_usd, o.token_calls + ln.token_calls, o.input_tokens + ln.input_tokens,
                o.output_tokens + ln.output_tokens, o.latency_ms + ln.latency_ms)
    usage = m.Usage(
        start=us[0].start, end=us[-1].end, requests=sum(u.requests for u in us),
        cached_requests=sum(u.cached_requests for u in us), uncached_busy_ms=sum(u.uncached_busy_ms for u in us),
        cached_busy_ms=sum(u.cached_busy_ms for u in us), llm=tuple(llm.values()),
        explanations_llm=sum(u.explanations_llm for u in us), explanations_cached=sum(u.explanations_cached for u in us),
        decisions=sum(u.decisions for u in us), funded=sum(u.funded for u in us), storage_bytes=us[-1].storage_bytes,
        label="all months")
    variable = [x for x in m.breakdown(usage, c, prices, redis_cache=False).lines if x.component in ("LLM", "Lambda")]
    fixed: dict[tuple[str, str], float] = {}
    for b in bs:
        for x in b.lines:
            if x.component not in ("LLM", "Lambda"):
                fixed[(x.component, x.detail)] = fixed.get((x.component, x.detail), 0.0) + x.usd
    hours = sum(m.hours(u.start, u.end) for u in us)
    lines = [m.CostLine(k[0], k[1], usd, f"added up over {len(bs)} month(s), {hours:,.1f} h billed")
             for k, usd in fixed.items()]
    order = {name: i for i, name in enumerate(m.COMPONENTS)}
    lines = sorted([*lines, *variable], key=lambda x: order[x.component])
    return m.Breakdown(usage, tuple(lines), sum(b.serverless_usd for b in bs), sum(b.reserved_database_usd for b in bs),
                       m.usage_notes(usage))
