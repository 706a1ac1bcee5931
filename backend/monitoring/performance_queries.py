"""SQL of the realized-performance service: the book's span, one vintage's rows (a few columns,
never the features JSON), and clearing the stored performance snapshots before a refresh."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
from sqlalchemy import ColumnElement, and_, case, delete, func, or_, select
from sqlalchemy.orm import Session

from backend.platform.db.tables_book import Application, Decision, Outcome, Prediction
from backend.platform.db.tables_governance import MonitorSnapshot
from backend.platform.db.timesql import raw_time, utc_times

COLUMNS = ("applied_at", "arm", "pd", "risk_class", "model_version", "approved", "funded", "known", "defaulted",
           "observed")


def book_span(s: Session, until: datetime) -> tuple[datetime, datetime] | None:
    """First and last application time before ``until`` (``None`` for an empty book)."""
    lo, hi = s.execute(select(func.min(Application.applied_at), func.max(Application.applied_at))
                       .where(Application.applied_at < until)).one()
    if lo is None or hi is None:
        return None
    return _utc(lo), _utc(hi)


def vintage_rows(s: Session, start: datetime, end: datetime, until: datetime) -> pd.DataFrame:
    """Applications made in ``[start, end)``: the model's score and what was known at ``until``.

    One row per application (an application has at most one final decision). The score is the
    prediction the final decision was made on, or else the application's latest prediction. As of
    ``until``: ``approved`` (a final approval decided before it), ``funded`` (the outcome row says
    funded and the decision, if any, came before ``until``), ``known`` (the loan's default status is
    recorded), ``defaulted`` (a default observed at or before ``until``) and ``observed`` (the stored
    outcome row itself was observed by then).
    """
    latest = (select(Prediction.id).where(Prediction.application_id == Application.id)
              .order_by(Prediction.created_at.desc()).limit(1).correlate(Application).scalar_subquery())
    decided = and_(Decision.id.is_not(None), Decision.decided_at < until)
    dialect = s.get_bind().dialect.name
    q = (select(raw_time(Application.applied_at, dialect), Application.arm, Prediction.pd, Prediction.risk_class,
                Prediction.model_version,
                _flag(and_(decided, Decision.outcome == "approve")),
                _flag(and_(Outcome.funded.is_(True), or_(Decision.id.is_(None), decided))),
                _flag(Outcome.defaulted.is_not(None)),
                _flag(and_(Outcome.defaulted.is_(True), Outcome.observed_at <= until)),
                _flag(Outcome.observed_at <= until))
         .select_from(Application)
         .outerjoin(Decision, and_(Decision.application_id == Application.id, Decision.status == "final"))
         .outerjoin(Prediction, Prediction.id == func.coalesce(Decision.prediction_id, latest))
         .outerjoin(Outcome, Outcome.application_id == Application.id)
         .where(Application.applied_at >= start, Application.applied_at < end))
    frame = pd.DataFrame(s.execute(q).all(), columns=list(COLUMNS))
    frame["applied_at"] = utc_times(frame["applied_at"], dialect)
    frame["pd"] = pd.to_numeric(frame["pd"], errors="coerce").astype(np.float64)
    for col in COLUMNS[5:]:
        frame[col] = frame[col].astype(bool)
    return frame


def _flag(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return case((condition, 1), else_=0)


def clear_snapshots(s: Session, kind: str, granularity: str) -> int:
    """Delete every stored snapshot of ``kind``/``granularity`` (the caller rewrites them in the same
    transaction, so the stored set is always one consistent refresh)."""
    res = s.execute(delete(MonitorSnapshot).where(MonitorSnapshot.kind == kind,
                                                  MonitorSnapshot.granularity == granularity))
    return int(getattr(res, "rowcount", 0) or 0)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
