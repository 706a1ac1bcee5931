"""SQL of the latency figures and the serving error rate: every statement they run lives here.

Percentiles are computed by the database on PostgreSQL (``percentile_cont``, one aggregate query per
grouping); SQLite has no percentile function, so there the value columns (a few floats and short group
labels, never whole rows) are read, at most :data:`SQLITE_MAX_ROWS` of them, and numpy computes the same
linear-interpolation percentiles.

The one definition of a decision's end-to-end latency is :func:`e2e_ms` (used by every select here);
:func:`backend.analytics.latency.end_to_end_p95` states it in words.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, Select, and_, case, func, literal, or_, select
from sqlalchemy.orm import Session

from backend.platform.db.tables_book import Application, Decision, LLMUsageRow, Prediction
from backend.platform.db.tables_governance import RolloutConfig
from backend.platform.db.timesql import month_key

SQLITE_MAX_ROWS = 2_000_000
DEFAULT_PHASE = "full"  # RolloutService's built-in default when no version is approved
KNOWN_TIMINGS = ("validate_ms", "cache_ms", "score_ms", "db_ms")  # ScoringService writes validate_ms, score_ms
TIMING_SAMPLE = 500  # newest predictions read to discover which timing keys are recorded
CACHE_PROVIDER = "cache"
ALL = "all"


# -- expressions --------------------------------------------------------------------------------
def month_of(s: Session, col: Any) -> ColumnElement[str]:
    """``YYYY-MM`` of a UTC timestamp column, in SQL."""
    return month_key(col, s.get_bind().dialect.name)


def timing(key: str) -> ColumnElement[float]:
    return Prediction.timings[key].as_float()


def request_ms(keys: Sequence[str]) -> ColumnElement[float]:
    """A scoring request's latency: the sum of its recorded components (``latency_ms`` when none)."""
    if not keys:
        return Prediction.latency_ms.expression
    parts = [func.coalesce(timing(k), 0.0) for k in keys]
    has = or_(*[timing(k).is_not(None) for k in keys])
    return case((has, sum(parts[1:], parts[0])), else_=Prediction.latency_ms)


def window(col: Any, start: datetime | None, end: datetime | None) -> list[ColumnElement[bool]]:
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


def e2e_ms(keys: Sequence[str], llm: Any) -> ColumnElement[float]:
    """A decision's end-to-end latency in ms: its scoring request (:func:`request_ms`) plus the explanation
    LLM calls made for its prediction (``llm``: the subquery of :func:`_explanation_ms`)."""
    return request_ms(keys) + func.coalesce(llm.c.ms, 0.0)


def prediction_latency(s: Session, keys: Sequence[str], start: datetime | None, end: datetime | None) -> Select[Any]:
    """One row per prediction scored in ``[start, end)``, read in a single pass: month, rollout phase when
    scored, cache state, whether it was explained; each timing component (model scoring split
    cached/uncached), the request total, and ``e2e`` (:func:`e2e_ms`) when the prediction has a final
    decision."""
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
    cols += [request_ms(keys).label("request"),
             case((decided.c.n.is_not(None), e2e_ms(keys, llm)), else_=None).label("e2e")]
    return (select(*cols).select_from(Prediction)
            .outerjoin(llm, llm.c.pid == Prediction.id).outerjoin(decided, decided.c.pid == Prediction.id)
            .where(*window(Prediction.created_at, start, end)))


def end_to_end(s: Session, keys: Sequence[str], start: datetime | None, end: datetime | None, *,
               phase: str | None = None, arm: str | None = None, by_phase: bool = False) -> Select[Any]:
    """Per final decision whose prediction was scored in ``[start, end)`` (and, when given, while ``phase``
    was in force, for an application of ``arm``): its end-to-end latency :func:`e2e_ms`, column ``e2e``
    (``by_phase``: and the phase in force when it was scored, column ``phase``)."""
    llm, decided = _explanation_ms(), _decided()
    cols: list[Any] = [e2e_ms(keys, llm).label("e2e")]
    if by_phase:
        cols.append(phase_at(s, Prediction.created_at).label("phase"))
    stmt = (select(*cols).select_from(Prediction)
            .join(decided, decided.c.pid == Prediction.id).outerjoin(llm, llm.c.pid == Prediction.id)
            .where(*window(Prediction.created_at, start, end)))
    if phase is not None:
        stmt = stmt.where(phase_at(s, Prediction.created_at) == phase)
    if arm is not None:
        stmt = stmt.join(Application, Application.id == Prediction.application_id).where(Application.arm == arm)
    return stmt


def values(s: Session, stmt: Select[Any]) -> np.ndarray:
    """The first column of ``stmt`` as floats (Core rows: no ORM loading for a plain value read)."""
    return np.fromiter((float(v) for v in s.connection().execute(stmt).scalars() if v is not None), dtype=float)


def values_by(s: Session, stmt: Select[Any]) -> dict[str, np.ndarray]:
    """The first column of ``stmt`` as floats, per value of its second (one read)."""
    out: dict[str, list[float]] = {}
    for v, key in s.connection().execute(stmt).all():
        if v is not None:
            out.setdefault(str(key), []).append(float(v))
    return {k: np.asarray(v, dtype=float) for k, v in out.items()}


def llm_latency(s: Session, start: datetime | None, end: datetime | None) -> Select[Any]:
    u = LLMUsageRow
    label = case((u.model == "", u.provider), else_=u.provider + " / " + u.model) + " (" + u.purpose + ")"
    return select(label.label("provider"), LLMUsageRow.latency_ms.label("ms")).where(
        *window(LLMUsageRow.at, start, end))


# -- errors ---------------------------------------------------------------------------------------------
def error_counts(s: Session, start: datetime | None = None, end: datetime | None = None, *,
                 by_phase_arm: bool = False) -> list[dict[str, Any]]:
    """Scoring requests (predictions) made in ``[start, end)`` and those that met an error, in total or
    per application phase and arm (``applications.phase``/``arm``, the phase comparison's grouping).

    A request errs when scoring fell back to the fallback model (``fallback_error`` set), or when, for
    one purpose (explanation, Q&A), its LLM calls include a provider error with no answer
    (``error`` set, ``fact_check_ok`` null) and none of them answered. Columns: ``requests``,
    ``errors``, ``scoring_fallbacks``, ``llm_failures`` (and ``phase``, ``arm`` when grouped).
    """
    errored = and_(LLMUsageRow.error.is_not(None), LLMUsageRow.fact_check_ok.is_(None))
    groups = (select(LLMUsageRow.prediction_id.label("pid"),
                     func.sum(case((errored, 1), else_=0)).label("errs"),
                     func.sum(case((errored, 0), else_=1)).label("answers"))
              .join(Prediction, Prediction.id == LLMUsageRow.prediction_id)  # only the window's requests' calls
              .where(*window(Prediction.created_at, start, end))
              .group_by(LLMUsageRow.prediction_id, LLMUsageRow.purpose).subquery())
    llm_failed = Prediction.id.in_(select(groups.c.pid).where(groups.c.errs > 0, groups.c.answers == 0))
    fell_back = Prediction.fallback_error.is_not(None)
    counts = [func.count().label("requests"), func.coalesce(func.sum(case((fell_back | llm_failed, 1), else_=0)), 0)
              .label("errors"), func.coalesce(func.sum(case((fell_back, 1), else_=0)), 0).label("scoring_fallbacks"),
              func.coalesce(func.sum(case((llm_failed, 1), else_=0)), 0).label("llm_failures")]
    stmt = select(*counts).select_from(Prediction).where(*window(Prediction.created_at, start, end))
    if by_phase_arm:
        stmt = (select(Application.phase, Application.arm, *counts).select_from(Prediction)
                .join(Application, Application.id == Prediction.application_id)
                .where(*window(Prediction.created_at, start, end)).group_by(Application.phase, Application.arm))
    return [{k: (int(v or 0) if k not in ("phase", "arm") else v) for k, v in r.items()}
            for r in s.execute(stmt).mappings()]
