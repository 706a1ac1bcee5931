"""What the costs would be: what-if scenarios on the actual usage and the projection of the monthly trend
(pure; the formulas that price a window are in :mod:`backend.analytics.cost_model`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from backend.analytics.config import CostSettings
from backend.analytics.cost_model import (
    BAD_HIT_RATE,
    CACHE_PROVIDER,
    COMPONENTS,
    Breakdown,
    Usage,
    breakdown,
    month_bounds,
    serverless_cost,
)


# -- what-if scenarios ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Scenario:
    serverless: bool = False
    llm_cache_hit_rate: float = 0.0  # share of the actual LLM calls an answer cache would serve
    reserved_database: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.llm_cache_hit_rate <= 1.0:
            raise ValueError(BAD_HIT_RATE.format(value=self.llm_cache_hit_rate))


@dataclass(frozen=True)
class WhatIf:
    before: dict[str, float]
    after: dict[str, float]
    explanation: dict[str, str] = field(default_factory=dict)

    @property
    def total_before(self) -> float:
        return sum(self.before.values())

    @property
    def total_after(self) -> float:
        return sum(self.after.values())

    @property
    def saving(self) -> float:
        return self.total_before - self.total_after


def what_if(bs: Sequence[Breakdown], s: Scenario, c: CostSettings) -> WhatIf:
    """Apply ``s`` to the actual usage of each window and add the windows up.

    Serverless replaces the instance-hours by the busy GB-seconds actually used; an LLM answer cache
    at hit rate ``h`` removes ``h`` of each recorded LLM and Lambda line (their actual calls and
    costs); reserved instances discount the database line only.
    """
    before = {k: sum(b.component(k) for b in bs) for k in COMPONENTS}
    after = dict(before)
    why: dict[str, str] = {}
    if s.serverless:
        after["Model serving"] = sum(b.serverless_usd for b in bs)
        gb_s = sum(serverless_cost(b.usage, c)[1] for b in bs)
        why["Model serving"] = (f"serverless: {gb_s:,.1f} busy GB-s x ${c.serverless_gb_second:g} "
                                f"instead of {c.serving_instances} instances billed every hour")
    if s.llm_cache_hit_rate:
        h = s.llm_cache_hit_rate
        for k in ("LLM", "Lambda"):
            after[k] = before[k] * (1 - h)
        calls = sum(x.calls for b in bs for x in b.usage.llm if x.provider != CACHE_PROVIDER)
        why["LLM"] = f"answer cache at {h:.0%}: {round(calls * h):,} of {calls:,} recorded calls served from the cache"
        if before["Lambda"]:
            why["Lambda"] = f"answer cache at {h:.0%}: the same share of Lambda invocations and GB-seconds avoided"
    if s.reserved_database:
        after["Database"] = sum(b.reserved_database_usd for b in bs)
        why["Database"] = f"reserved instances: {c.database_reserved_discount:.0%} off the on-demand database line"
    return WhatIf(before, after, why)


# -- projection ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProjectedMonth:
    month: str
    requests: float
    requests_low: float | None
    requests_high: float | None
    usd: float
    usd_low: float | None
    usd_high: float | None


@dataclass(frozen=True)
class Projection:
    months: tuple[ProjectedMonth, ...]
    fitted_on: tuple[str, ...]
    slope: float  # requests per month
    variable_per_request: float  # LLM + Lambda per request over the fitted months
    fixed_per_month: float
    explanation: str


def _ordinal(month: str) -> int:
    y, m = (int(p) for p in month.split("-"))
    return y * 12 + m - 1


def _month_of(ordinal: int) -> str:
    return f"{ordinal // 12}-{ordinal % 12 + 1:02d}"


def project(history: Sequence[Breakdown], c: CostSettings, *, after: str, redis_cache: bool, ahead: int = 3,
            level: float = 0.95) -> Projection | None:
    """Extend the monthly trend ``ahead`` months after ``after`` (a ``YYYY-MM`` month).

    Volume: ordinary least squares of requests on the month number over ``history`` (complete months
    with scoring requests, each ``Breakdown.usage.label`` a ``YYYY-MM`` month), with a ``level``
    prediction interval (Student t, n - 2 degrees of freedom; none below three months). Cost: the
    fixed costs of a full month at the current prices plus the historical variable cost per request
    (LLM and Lambda) times the projected volume; the band is the volume band priced the same way.
    """
    from scipy import stats

    pts = [(_ordinal(b.usage.label), b.usage.requests, b) for b in history if b.usage.requests > 0]
    if not pts:
        return None
    x = [float(p[0]) for p in pts]
    y = [float(p[1]) for p in pts]
    n = len(pts)
    xm, ym = sum(x) / n, sum(y) / n
    sxx = sum((xi - xm) ** 2 for xi in x)
    slope = sum((xi - xm) * (yi - ym) for xi, yi in zip(x, y, strict=True)) / sxx if sxx else 0.0
    intercept = ym - slope * xm
    resid = [yi - (intercept + slope * xi) for xi, yi in zip(x, y, strict=True)]
    s = (sum(r * r for r in resid) / (n - 2)) ** 0.5 if n > 2 else None
    tq = float(stats.t.ppf(0.5 + level / 2, n - 2)) if n > 2 else None
    variable = sum(b.component("LLM") + b.component("Lambda") for _, _, b in pts)
    per_req = variable / sum(y)
    storage = history[-1].usage.storage_bytes
    out = []
    for k in range(1, ahead + 1):
        o = _ordinal(after) + k
        month = _month_of(o)
        lo_t, hi_t = month_bounds(month)
        fixed = breakdown(Usage(lo_t, hi_t, storage_bytes=storage), c, {}, redis_cache=redis_cache).total
        vol = max(intercept + slope * o, 0.0)
        lo = hi = None
        if s is not None and tq is not None:
            half = tq * s * (1 + 1 / n + (o - xm) ** 2 / sxx) ** 0.5
            lo, hi = max(vol - half, 0.0), vol + half
        out.append(ProjectedMonth(month, vol, lo, hi, fixed + per_req * vol,
                                  None if lo is None else fixed + per_req * lo,
                                  None if hi is None else fixed + per_req * hi))
    fixed_now = out[0].usd - per_req * out[0].requests
    text = (f"Volume: least-squares line through {n} complete month(s) with scoring requests "
            f"({pts[0][2].usage.label} to {pts[-1][2].usage.label}), {slope:+,.0f} requests per month"
            + (f"; band: {level:.0%} prediction interval of the volume." if s is not None else
               "; no band below three months.")
            + f" Cost = fixed costs of the month (about ${fixed_now:,.0f} at today's prices and storage) + "
              f"${per_req:,.4f} variable (LLM and Lambda) per request, the average of those months, x volume.")
    return Projection(tuple(out), tuple(p[2].usage.label for p in pts), slope, per_req, fixed_now, text)
