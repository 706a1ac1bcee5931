"""SQL of the cost figures: plain ``GROUP BY`` month aggregates of the usage records, and the storage
in use. Shared expressions (month of a timestamp, the window, a timing component) come from
:mod:`backend.analytics.latency_queries`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal, select, text
from sqlalchemy.orm import Session

from backend.analytics.latency_queries import ALL, CACHE_PROVIDER, month_of, timing, window
from backend.platform.db.tables_book import Decision, LLMUsageRow, Outcome, Prediction

__all__ = ["ALL", "busy_ms", "database_bytes", "explained_predictions", "final_decisions", "folder_bytes",
           "funded_loans", "llm_usage", "scoring_usage"]


def busy_ms() -> ColumnElement[float]:
    """Model-scoring time of a request (the cache read on a hit)."""
    return func.coalesce(timing("score_ms"), Prediction.latency_ms)


# -- cost usage -----------------------------------------------------------------------------------
def _key(s: Session, col: Any, by_month: bool) -> ColumnElement[str]:
    return month_of(s, col) if by_month else literal(ALL)


def scoring_usage(s: Session, start: datetime | None, end: datetime | None, by_month: bool) -> list[Any]:
    """(key, requests, cached requests, uncached busy ms, cached busy ms)."""
    hit = Prediction.cache_hit.is_(True)
    k = _key(s, Prediction.created_at, by_month).label("k")
    return list(s.execute(select(k, func.count(), func.sum(case((hit, 1), else_=0)),
                                 func.sum(case((hit, 0.0), else_=busy_ms())), func.sum(case((hit, busy_ms()), else_=0.0)))
                          .where(*window(Prediction.created_at, start, end)).group_by(k)).all())


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
                          .where(*window(u.at, start, end)).group_by(k, u.provider, u.model, u.purpose)).all())


def explained_predictions(s: Session, start: datetime | None, end: datetime | None, by_month: bool) -> dict[str, int]:
    """Explanation views answered by an LLM: distinct predictions with an explanation call."""
    u = LLMUsageRow
    k = _key(s, u.at, by_month).label("k")
    return {str(key): int(n) for key, n in s.execute(
        select(k, func.count(func.distinct(u.prediction_id)))
        .where(u.provider != CACHE_PROVIDER, u.purpose == "explanation", *window(u.at, start, end)).group_by(k))}


def final_decisions(s: Session, start: datetime | None, end: datetime | None, by_month: bool) -> dict[str, int]:
    k = _key(s, Decision.decided_at, by_month).label("k")
    return {str(key): int(n) for key, n in s.execute(
        select(k, func.count()).where(Decision.status == "final", *window(Decision.decided_at, start, end))
        .group_by(k))}


def funded_loans(s: Session, start: datetime | None, end: datetime | None, by_month: bool) -> dict[str, int]:
    """Funded loans, counted in the month of their application's final decision."""
    k = _key(s, Decision.decided_at, by_month).label("k")
    final = and_(Decision.application_id == Outcome.application_id, Decision.status == "final")
    return {str(key): int(n) for key, n in s.execute(
        select(k, func.count(func.distinct(Outcome.id))).select_from(Outcome).join(Decision, final)
        .where(Outcome.funded.is_(True), *window(Decision.decided_at, start, end)).group_by(k))}


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
