"""Cost formulas (pure, hand-checkable): usage records in, dollars out.

A :class:`Usage` is what the records say about one window (a calendar month, or any interval):
scoring requests, busy model time, LLM calls per provider/model, decisions, funded loans and the
storage in use. :func:`breakdown` prices it with the configured price table
(:class:`~backend.analytics.config.CostSettings` and the LLM token prices), :func:`what_if` applies
the optimization scenarios to the same usage, and :func:`project` extends the monthly trend.

Conventions: a real-time endpoint bills every hour of the window, busy or idle; serverless inference
bills GB-seconds of compute actually used; fixed monthly prices (monitoring, storage) are prorated by
the fraction of each calendar month the window covers; a GB is 1024**3 bytes.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from backend.analytics.config import CostSettings
from backend.explanations import ModelPrice

GB = 1024**3
CACHE_PROVIDER = "cache"  # llm_usage rows for explanation views served from the stored explanation
LAMBDA_PROVIDER = "lambda"
COMPONENTS = ("Model serving", "LLM", "Lambda", "Database", "Storage", "Cache", "Monitoring")
BAD_HIT_RATE = "the LLM answer cache hit rate must be between 0 and 1 (got {value!r})"
BAD_WINDOW = "the window must end after it starts (got {start} .. {end})"


# -- usage ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LLMLine:
    """LLM calls of one provider, model and purpose in a window (aggregated from ``llm_usage``)."""

    provider: str
    model: str
    purpose: str
    calls: int
    recorded_calls: int = 0  # rows with cost_usd recorded
    recorded_usd: float = 0.0
    token_calls: int = 0  # rows without cost_usd but with token counts: priced from the table
    input_tokens: int = 0  # of the token_calls rows
    output_tokens: int = 0
    latency_ms: float = 0.0  # all rows (Lambda bills duration)

    @property
    def no_usage_calls(self) -> int:
        """Rows with neither a cost nor token counts (errors, timeouts): counted at $0."""
        return self.calls - self.recorded_calls - self.token_calls

    @property
    def label(self) -> str:
        return f"{self.provider} / {self.model or '(no model)'}" + (f" ({self.purpose})" if self.purpose else "")


@dataclass(frozen=True)
class Usage:
    """What the records say about one window ``[start, end)``."""

    start: datetime
    end: datetime
    requests: int = 0  # scoring requests (predictions)
    cached_requests: int = 0  # of which served from the scoring cache
    uncached_busy_ms: float = 0.0  # model-scoring time of the uncached requests
    cached_busy_ms: float = 0.0  # cache-read time of the cached requests
    llm: tuple[LLMLine, ...] = ()
    explanations_llm: int = 0  # explanation views answered by an LLM (distinct predictions)
    explanations_cached: int = 0  # explanation views served from the stored explanation
    decisions: int = 0  # final decisions
    funded: int = 0  # funded loans (of the window's applications)
    storage_bytes: int = 0  # database plus model registry, as measured now
    label: str = ""


# -- calendar helpers ------------------------------------------------------------------------------
def hours(start: datetime, end: datetime) -> float:
    return max((end - start).total_seconds(), 0.0) / 3600.0


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """``"2025-09"`` -> (2025-09-01, 2025-10-01), UTC."""
    y, m = (int(p) for p in month.split("-"))
    return datetime(y, m, 1, tzinfo=UTC), datetime(y + m // 12, m % 12 + 1, 1, tzinfo=UTC)


def month_fraction(start: datetime, end: datetime) -> float:
    """How many calendar months ``[start, end)`` covers (each month weighted by its own length)."""
    if end <= start:
        return 0.0
    total, cur = 0.0, datetime(start.year, start.month, 1, tzinfo=UTC)
    while cur < end:
        nxt = month_bounds(f"{cur.year}-{cur.month:02d}")[1]
        overlap = hours(max(start, cur), min(end, nxt))
        total += overlap / (calendar.monthrange(cur.year, cur.month)[1] * 24.0)
        cur = nxt
    return total


# -- pricing -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CostLine:
    component: str
    detail: str
    usd: float
    basis: str  # the formula with its numbers, so a reader can check it by hand
    purpose: str = ""  # LLM and Lambda lines: explanation | qa


@dataclass(frozen=True)
class Breakdown:
    usage: Usage
    lines: tuple[CostLine, ...]
    serverless_usd: float  # serving priced as serverless inference from busy GB-seconds
    reserved_database_usd: float
    notes: tuple[str, ...] = ()

    def component(self, name: str) -> float:
        return sum(x.usd for x in self.lines if x.component == name)

    @property
    def by_component(self) -> dict[str, float]:
        return {c: self.component(c) for c in COMPONENTS}

    @property
    def total(self) -> float:
        return sum(x.usd for x in self.lines)

    @property
    def fixed(self) -> float:
        """Costs that do not follow volume (serving instances, database, storage, cache, monitoring)."""
        return self.total - self.component("LLM") - self.component("Lambda")

    def per(self, count: int) -> float | None:
        return self.total / count if count else None

    @property
    def per_request(self) -> float | None:
        return self.per(self.usage.requests)

    @property
    def per_decision(self) -> float | None:
        return self.per(self.usage.decisions)

    @property
    def per_funded(self) -> float | None:
        return self.per(self.usage.funded)


def llm_line_cost(line: LLMLine, prices: Mapping[str, ModelPrice]) -> tuple[float, str]:
    """Recorded ``cost_usd``, plus tokens x the price table for rows without a recorded cost."""
    price = prices.get(line.model)
    priced = 0.0
    if price is not None:
        priced = (line.input_tokens * price.input_per_mtok + line.output_tokens * price.output_per_mtok) / 1e6
    parts = [f"{line.recorded_calls:,} with recorded cost_usd (${line.recorded_usd:,.2f})"]
    if line.token_calls:
        parts.append(f"{line.token_calls:,} priced from tokens (${priced:,.2f})" if price is not None else
                     f"{line.token_calls:,} with tokens but no price for {line.model!r} ($0)")
    if line.no_usage_calls:
        parts.append(f"{line.no_usage_calls:,} without tokens or cost (errors, timeouts) at $0")
    return line.recorded_usd + priced, f"{line.calls:,} calls: " + "; ".join(parts)


def lambda_cost(line: LLMLine, c: CostSettings) -> tuple[float, str]:
    gb_s = line.latency_ms / 1000.0 * c.lambda_memory_gb
    usd = line.calls * c.lambda_request + gb_s * c.lambda_gb_second
    return usd, (f"{line.calls:,} requests x ${c.lambda_request:g} + {gb_s:,.1f} GB-s "
                 f"({line.latency_ms / 1000:,.1f} s x {c.lambda_memory_gb:g} GB) x ${c.lambda_gb_second:g}")


def serverless_cost(u: Usage, c: CostSettings) -> tuple[float, float]:
    """(USD, GB-seconds): uncached model-scoring time x memory x the GB-second price."""
    gb_s = u.uncached_busy_ms / 1000.0 * c.serverless_memory_gb
    return gb_s * c.serverless_gb_second, gb_s


def breakdown(u: Usage, c: CostSettings, prices: Mapping[str, ModelPrice], *, redis_cache: bool) -> Breakdown:
    """Price one window's usage, component by component (see the module docstring)."""
    if u.end <= u.start:
        raise ValueError(BAD_WINDOW.format(start=u.start, end=u.end))
    h, months = hours(u.start, u.end), month_fraction(u.start, u.end)
    lines = [CostLine("Model serving", "real-time endpoint", c.serving_instances * h * c.serving_instance_hour,
                      f"{c.serving_instances} instances x {h:,.1f} h x ${c.serving_instance_hour:g}/h (idle hours included)")]
    for line in sorted(u.llm, key=lambda x: (x.provider, x.model, x.purpose)):
        if line.provider == CACHE_PROVIDER:
            continue
        usd, basis = llm_line_cost(line, prices)
        lines.append(CostLine("LLM", line.label, usd, basis, line.purpose))
        if line.provider == LAMBDA_PROVIDER:
            usd, basis = lambda_cost(line, c)
            lines.append(CostLine("Lambda", line.label, usd, basis, line.purpose))
    lines.append(CostLine("Database", "on-demand instance", h * c.database_instance_hour,
                          f"{h:,.1f} h x ${c.database_instance_hour:g}/h"))
    gb = u.storage_bytes / GB
    lines.append(CostLine("Storage", "database + model registry", gb * months * c.storage_gb_month,
                          f"{gb:,.3f} GB (measured now) x {months:.3f} month x ${c.storage_gb_month:g}/GB-month"))
    lines.append(CostLine("Cache", "Redis instance" if redis_cache else "in-process (no Redis configured)",
                          h * c.cache_instance_hour if redis_cache else 0.0,
                          f"{h:,.1f} h x ${c.cache_instance_hour:g}/h" if redis_cache else "no instance billed"))
    lines.append(CostLine("Monitoring", "per month", months * c.monitoring_month,
                          f"{months:.3f} month x ${c.monitoring_month:g}"))
    serverless, _ = serverless_cost(u, c)
    db_usd = h * c.database_instance_hour
    return Breakdown(u, tuple(lines), serverless, db_usd * (1 - c.database_reserved_discount), usage_notes(u))


def usage_notes(u: Usage) -> tuple[str, ...]:
    """What a reader should know about how the LLM rows were priced."""
    return tuple(f"{x.label}: {x.no_usage_calls:,} calls without tokens or cost (errors, timeouts) counted at $0"
                 for x in u.llm if x.provider != CACHE_PROVIDER and x.no_usage_calls)


# -- unit costs and cache savings --------------------------------------------------------------------
@dataclass(frozen=True)
class UnitCosts:
    """Marginal (variable) cost of one served item, and the fixed cost spread over every request."""

    scoring_uncached: float | None  # serverless-equivalent compute of one uncached scoring
    scoring_cached: float | None  # compute of one cache read
    explanation_llm: float | None  # LLM (and Lambda) cost of one explanation answered by an LLM
    explanation_cached: float  # a view served from the stored explanation: no LLM call
    fixed_per_request: float | None
    scoring_hit_rate: float | None
    explanation_hit_rate: float | None
    scoring_cache_saving: float  # hits x the marginal cost a miss would have cost
    explanation_cache_saving: float

    @property
    def uncached_prediction(self) -> float | None:
        """All-in cost of a prediction whose explanation needed an LLM (fixed share + marginal)."""
        if self.fixed_per_request is None:
            return None
        return self.fixed_per_request + (self.scoring_uncached or 0.0) + (self.explanation_llm or 0.0)

    @property
    def cached_prediction(self) -> float | None:
        """All-in cost of a prediction served from the caches (fixed share + cache reads)."""
        if self.fixed_per_request is None:
            return None
        return self.fixed_per_request + (self.scoring_cached or 0.0) + self.explanation_cached


def unit_costs(b: Breakdown, c: CostSettings) -> UnitCosts:
    u = b.usage
    uncached = u.requests - u.cached_requests
    per_gb_s = c.serverless_memory_gb * c.serverless_gb_second / 1000.0  # per busy millisecond
    s_miss = u.uncached_busy_ms * per_gb_s / uncached if uncached else None
    s_hit = u.cached_busy_ms * per_gb_s / u.cached_requests if u.cached_requests else None
    explain_usd = sum(x.usd for x in b.lines if x.component in ("LLM", "Lambda") and x.purpose == "explanation")
    e_miss = explain_usd / u.explanations_llm if u.explanations_llm else None
    views = u.explanations_llm + u.explanations_cached
    return UnitCosts(
        scoring_uncached=s_miss, scoring_cached=s_hit, explanation_llm=e_miss, explanation_cached=0.0,
        fixed_per_request=b.fixed / u.requests if u.requests else None,
        scoring_hit_rate=u.cached_requests / u.requests if u.requests else None,
        explanation_hit_rate=u.explanations_cached / views if views else None,
        scoring_cache_saving=u.cached_requests * max((s_miss or 0.0) - (s_hit or 0.0), 0.0),
        explanation_cache_saving=u.explanations_cached * (e_miss or 0.0))
