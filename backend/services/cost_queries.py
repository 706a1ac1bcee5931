"""SQL for the latency and cost pages: every statement they run lives here.

Percentiles are computed by the database on PostgreSQL (``percentile_cont``, one aggregate query per
grouping); SQLite has no percentile function, so there the value columns (a few floats and short group
labels, never whole rows) are read, at most :data:`SQLITE_MAX_ROWS` of them, and numpy computes the same
linear-interpolation percentiles. Cost queries are plain ``GROUP BY`` month aggregates on both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, Select, and_, case, func, literal, or_, select, text
from sqlalchemy.orm import Session

from backend.db.tables import Decision, LLMUsageRow, Outcome, Prediction, RolloutConfig

SQLITE_MAX_ROWS = 2_000_000
DEFAULT_PHASE = "full"  # RolloutService's built-in default when no version is approved
KNOWN_TIMINGS = ("validate_ms", "cache_ms", "score_ms", "db_ms")  # ScoringService writes validate_ms, score_ms
TIMING_SAMPLE = 500  # newest predictions read to discover which timing keys are recorded
CACHE_PROVIDER = "cache"
ALL = "all"


# -- expressions --------------------------------------------------------------------------------
def month_of(s: Session, col: Any) -> ColumnElement[str]:
    """``YYYY-MM`` of a UTC timestamp column, in SQL."""
    if s.get_bind().dialect.name == "sqlite":
        return func.strftime("%Y-%m", col)
    return func.to_char(func.timezone("UTC", col), "YYYY-MM")


def timing(key: str) -> ColumnElement[float]:
    return Prediction.timings[key].as_float()


def request_ms(keys: Sequence[str]) -> ColumnElement[float]:
    """A scoring request's latency: the sum of its recorded components (``latency_ms`` when none)."""
    if not keys:
        return Prediction.latency_ms.expression
    parts = [func.coalesce(timing(k), 0.0) for k in keys]
    has = or_(*[timing(k).is_not(None) for k in keys])
    return case((has, sum(parts[1:], parts[0])), else_=Prediction.latency_ms)


def busy_ms() -> ColumnElement[float]:
    """Model-scoring time of a request (the cache read on a hit)."""
    return func.coalesce(timing("score_ms"), Prediction.latency_ms)


def _window(col: Any, start: datetime | None, end: datetime | None) -> list[ColumnElement[bool]]:
    out = []
    if start is not None:
        out.append(col >= start)
    if end is not None:
        out.append(col < end)
    return out


def phase_at(s: Session, col: Any) -> ColumnElement[str]:
    """The rollout phase in force at ``col``, in SQL: the approved version with the latest start at or
    before it (RolloutService.active's rule), from the few approved rows. Cheaper than reading
    ``applications.phase``, which sits behind the features JSON in every application row."""
    approved = s.execute(select(RolloutConfig.starts_at, RolloutConfig.phase)
                         .where(RolloutConfig.status == "approved")
                         .order_by(RolloutConfig.starts_at.desc(), RolloutConfig.version.desc())).all()
    if not approved:
        return literal(DEFAULT_PHASE)
    return case(*[(col >= at, phase) for at, phase in approved], else_=literal(DEFAULT_PHASE))


def timing_keys(s: Session) -> list[str]:
    """Timing keys recorded on the newest predictions, known ones first."""
    seen: set[str] = set()
    rows = s.execute(select(Prediction.timings).order_by(Prediction.created_at.desc()).limit(TIMING_SAMPLE)).scalars()
    for t in rows:
        if isinstance(t, dict):
            seen.update(k for k, v in t.items() if isinstance(v, int | float) and not isinstance(v, bool))
    return [k for k in KNOWN_TIMINGS if k in seen] + sorted(seen - set(KNOWN_TIMINGS))


# -- percentiles ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Dist:
    """Summary of one value column in one group (milliseconds unless said otherwise)."""

    n: int
    mean: float
    max: float
    q: dict[float, float]
    over: float | None = None  # share of the values above the threshold


Key = tuple[str, str, str]  # (grouping, group label, value column)


def distributions(s: Session, stmt: Select[Any], *, groupings: Mapping[str | None, Sequence[str]],
                  qs: Sequence[float], thresholds: Mapping[str, float] | None = None) -> tuple[dict[Key, Dist], bool]:
    """Percentiles of value columns of ``stmt``: ``groupings`` maps a grouping column (``None``: all rows
    together) to the value columns wanted per group of it.

    Returns ``{(grouping or "all", group label, value): Dist}`` and whether the SQLite read was capped.
    On PostgreSQL the percentiles of one value share one sort (ordered-set aggregates with the same
    input share their state).
    """
    thresholds = thresholds or {}
    sub = stmt.subquery()
    if s.get_bind().dialect.name != "postgresql":
        return _numpy(s, sub, groupings, qs, thresholds)
    out: dict[Key, Dist] = {}
    for g, values in groupings.items():
        key = sub.c[g] if g else literal(ALL)
        cols: list[Any] = [key]
        for v in values:
            c = sub.c[v]
            cols += [func.count(c), func.avg(c), func.max(c), *[func.percentile_cont(q).within_group(c) for q in qs]]
            if v in thresholds:
                cols.append(func.avg(case((c > thresholds[v], 1.0), (c.is_not(None), 0.0))))
        q = select(*cols)
        if g:
            q = q.group_by(sub.c[g])
        for row in s.execute(q):
            i = 1
            for v in values:
                width = 3 + len(qs) + (v in thresholds)
                n, mean, mx, *rest = row[i:i + width]
                i += width
                if n:
                    out[(g or ALL, str(row[0]), v)] = Dist(int(n), float(mean), float(mx),
                                                         {q_: float(x) for q_, x in zip(qs, rest, strict=False)},
                                                         float(rest[-1]) if v in thresholds else None)
    return out, False


def _numpy(s: Session, sub: Any, groupings: Mapping[str | None, Sequence[str]], qs: Sequence[float],
           thresholds: Mapping[str, float]) -> tuple[dict[Key, Dist], bool]:
    names = [g for g in groupings if g]
    values = list(dict.fromkeys(v for vs in groupings.values() for v in vs))
    read = select(*[sub.c[g] for g in names], *[sub.c[v] for v in values]).limit(SQLITE_MAX_ROWS + 1)
    rows = s.connection().execute(read).all()  # Core rows: no ORM loading for a plain value read
    truncated = len(rows) > SQLITE_MAX_ROWS
    rows = rows[:SQLITE_MAX_ROWS]
    labels = {g: np.array([str(r[i]) for r in rows], dtype=object) for i, g in enumerate(names)}
    arrays = {v: np.array([r[len(names) + j] for r in rows], dtype=float) for j, v in enumerate(values)}
    out: dict[Key, Dist] = {}
    for g, wanted in groupings.items():
        groups = [(ALL, np.ones(len(rows), dtype=bool))] if g is None else \
            [(str(k), labels[g] == k) for k in sorted(set(labels[g]))]
        for label, mask in groups:
            for v in wanted:
                x = arrays[v][mask]
                x = x[~np.isnan(x)]
                if x.size:
                    pct = np.percentile(x, [100 * q for q in qs])  # linear: what percentile_cont computes
                    out[(g or ALL, label, v)] = Dist(
                        int(x.size), float(x.mean()), float(x.max()), {q: float(p) for q, p in zip(qs, pct, strict=True)},
                        float(np.mean(x > thresholds[v])) if v in thresholds else None)
    return out, truncated


# -- latency selects ------------------------------------------------------------------------------
def _explanation_ms() -> Any:
    """Per prediction: milliseconds of its explanation LLM calls (stored-explanation views excluded)."""
    return (select(LLMUsageRow.prediction_id.label("pid"), func.sum(LLMUsageRow.latency_ms).label("ms"))
            .where(LLMUsageRow.provider != CACHE_PROVIDER, LLMUsageRow.purpose == "explanation",
                   LLMUsageRow.prediction_id.is_not(None))
            .group_by(LLMUsageRow.prediction_id).subquery())


def _decided() -> Any:
    """Predictions with a final decision."""
    return (select(Decision.prediction_id.label("pid"), func.count().label("n")).where(Decision.status == "final")
            .group_by(Decision.prediction_id).subquery())


def prediction_latency(s: Session, keys: Sequence[str], start: datetime | None, end: datetime | None) -> Select[Any]:
    """One row per prediction scored in ``[start, end)``, read in a single pass: month, rollout phase when
    scored, cache state, whether it was explained; each timing component (model scoring split
    cached/uncached), the request total, and ``e2e`` (request plus its explanation calls) when the
    prediction has a final decision."""
    hit = Prediction.cache_hit.is_(True)
    llm, decided = _explanation_ms(), _decided()
    cols: list[Any] = [month_of(s, Prediction.created_at).label("month"),
                       phase_at(s, Prediction.created_at).label("phase"),
                       case((hit, "cached"), else_="uncached").label("cache"),
                       case((llm.c.ms.is_(None), "scoring only"), else_="scoring + explanation").label("kind")]
    for k in keys:
        if k == "score_ms":
            cols += [case((hit, None), else_=timing(k)).label("score_uncached"),
                     case((hit, timing(k)), else_=None).label("score_cached")]
        else:
            cols.append(timing(k).label(k))
    req = request_ms(keys)
    cols += [req.label("request"),
             case((decided.c.n.is_not(None), req + func.coalesce(llm.c.ms, 0.0)), else_=None).label("e2e")]
    return (select(*cols).select_from(Prediction)
            .outerjoin(llm, llm.c.pid == Prediction.id).outerjoin(decided, decided.c.pid == Prediction.id)
            .where(*_window(Prediction.created_at, start, end)))


def end_to_end(s: Session, keys: Sequence[str], start: datetime | None, end: datetime | None) -> Select[Any]:
    """Per final decision (scored in the window): its request plus its explanation calls, in ms."""
    llm, decided = _explanation_ms(), _decided()
    return (select((request_ms(keys) + func.coalesce(llm.c.ms, 0.0)).label("e2e")).select_from(Prediction)
            .join(decided, decided.c.pid == Prediction.id).outerjoin(llm, llm.c.pid == Prediction.id)
            .where(*_window(Prediction.created_at, start, end)))


def llm_latency(s: Session, start: datetime | None, end: datetime | None) -> Select[Any]:
    u = LLMUsageRow
    label = case((u.model == "", u.provider), else_=u.provider + " / " + u.model) + " (" + u.purpose + ")"
    return select(label.label("provider"), LLMUsageRow.latency_ms.label("ms")).where(
        *_window(LLMUsageRow.at, start, end))


# -- cost usage -----------------------------------------------------------------------------------
def _key(s: Session, col: Any, by_month: bool) -> ColumnElement[str]:
    return month_of(s, col) if by_month else literal(ALL)


def scoring_usage(s: Session, start: datetime | None, end: datetime | None, by_month: bool) -> list[Any]:
    """(key, requests, cached requests, uncached busy ms, cached busy ms)."""
    hit = Prediction.cache_hit.is_(True)
    k = _key(s, Prediction.created_at, by_month).label("k")
    return list(s.execute(select(k, func.count(), func.sum(case((hit, 1), else_=0)),
                                 func.sum(case((hit, 0.0), else_=busy_ms())), func.sum(case((hit, busy_ms()), else_=0.0)))
                          .where(*_window(Prediction.created_at, start, end)).group_by(k)).all())


def llm_usage(s: Session, start: datetime | None, end: datetime | None, by_month: bool) -> list[Any]:
    """(key, provider, model, purpose, calls, recorded calls, recorded usd, token calls, input tokens,
    output tokens, latency ms): token columns count rows without a recorded cost but with both counts."""
    u = LLMUsageRow
    priced = and_(u.cost_usd.is_(None), u.input_tokens.is_not(None), u.output_tokens.is_not(None))
    k = _key(s, u.at, by_month).label("k")
    return list(s.execute(select(k, u.provider, u.model, u.purpose, func.count(), func.count(u.cost_usd),
                                 func.coalesce(func.sum(u.cost_usd), 0.0), func.sum(case((priced, 1), else_=0)),
                                 func.sum(case((priced, u.input_tokens), else_=0)),
                                 func.sum(case((priced, u.output_tokens), else_=0)), func.sum(u.latency_ms))
                          .where(*_window(u.at, start, end)).group_by(k, u.provider, u.model, u.purpose)).all())


def explained_predictions(s: Session, start: datetime | None, end: datetime | None, by_month: bool) -> dict[str, int]:
    """Explanation views answered by an LLM: distinct predictions with an explanation call."""
    u = LLMUsageRow
    k = _key(s, u.at, by_month).label("k")
    return {str(key): int(n) for key, n in s.execute(
        select(k, func.count(func.distinct(u.prediction_id)))
        .where(u.provider != CACHE_PROVIDER, u.purpose == "explanation", *_window(u.at, start, end)).group_by(k))}


def final_decisions(s: Session, start: datetime | None, end: datetime | None, by_month: bool) -> dict[str, int]:
    k = _key(s, Decision.decided_at, by_month).label("k")
    return {str(key): int(n) for key, n in s.execute(
        select(k, func.count()).where(Decision.status == "final", *_window(Decision.decided_at, start, end))
        .group_by(k))}


def funded_loans(s: Session, start: datetime | None, end: datetime | None, by_month: bool) -> dict[str, int]:
    """Funded loans, counted in the month of their application's final decision."""
    k = _key(s, Decision.decided_at, by_month).label("k")
    final = and_(Decision.application_id == Outcome.application_id, Decision.status == "final")
    return {str(key): int(n) for key, n in s.execute(
        select(k, func.count(func.distinct(Outcome.id))).select_from(Outcome).join(Decision, final)
        .where(Outcome.funded.is_(True), *_window(Decision.decided_at, start, end)).group_by(k))}


def database_bytes(s: Session) -> int:
    """Size of the database: ``pg_database_size`` on PostgreSQL, the file (and its WAL) on SQLite."""
    bind = s.get_bind()
    if bind.dialect.name == "postgresql":
        return int(s.execute(text("SELECT pg_database_size(current_database())")).scalar_one())
    path = bind.engine.url.database
    if not path or path == ":memory:":
        return 0
    return sum(p.stat().st_size for p in (Path(path), Path(path + "-wal")) if p.exists())


def folder_bytes(root: Path | None) -> int:
    if root is None or not root.exists():
        return 0
    return sum(p.stat().st_size for p in _files(root))


def _files(root: Path) -> Iterable[Path]:
    return (p for p in root.rglob("*") if p.is_file())
