"""SQL of rollback incidents (tables ``incidents`` and ``incident_reviews``) and what they read of the book."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from backend.platform.db.tables_book import Application, Decision, Outcome, Prediction
from backend.platform.db.tables_governance import Incident, IncidentReview


def add(s: Session, **values: Any) -> Incident:
    row = Incident(**values)
    s.add(row)
    s.flush()
    return row


def get(s: Session, incident_id: str | uuid.UUID) -> Incident | None:
    try:
        key = incident_id if isinstance(incident_id, uuid.UUID) else uuid.UUID(str(incident_id))
    except ValueError:
        return None
    return s.get(Incident, key)


def for_version(s: Session, version: str) -> Incident | None:
    return s.scalars(select(Incident).where(Incident.model_version == version)
                     .order_by(Incident.opened_at.desc())).first()


def listing(s: Session, status: str | None = None, limit: int = 100) -> list[Incident]:
    q = select(Incident).order_by(Incident.opened_at.desc()).limit(limit)
    if status:
        q = q.where(Incident.status == status)
    return list(s.scalars(q))


def set_fields(s: Session, incident_id: uuid.UUID, **values: Any) -> None:
    s.execute(update(Incident).where(Incident.id == incident_id).values(**values))


def last_decisions(s: Session, version: str, before: datetime, limit: int) -> list[tuple[Any, ...]]:
    """``(application_id, prediction_id, scored_at, recommendation)`` of the last ``limit`` decided predictions of
    ``version`` scored before ``before``, newest first."""
    # through the application (indexed) rather than decisions.prediction_id (no index): the latter scanned every
    # decision for each candidate prediction (24 s of the demo history's 217 s)
    decided = (select(Decision.id).where(Decision.application_id == Prediction.application_id,
                                         Decision.prediction_id == Prediction.id).exists())
    q = (select(Prediction.application_id, Prediction.id, Prediction.created_at, Prediction.recommendation)
         .where(Prediction.model_version == version, Prediction.created_at < before, decided)
         .order_by(Prediction.created_at.desc()).limit(limit))
    return [tuple(r) for r in s.execute(q)]


def add_reviews(s: Session, incident_id: uuid.UUID, rows: list[tuple[Any, ...]]) -> None:
    s.add_all([IncidentReview(incident_id=incident_id, application_id=a, prediction_id=p, scored_at=t,
                              recommendation=r, status="queued") for a, p, t, r in rows])


def reviews(s: Session, incident_id: uuid.UUID, limit: int | None = None) -> list[tuple[Any, ...]]:
    """``(review, applied_at, loan_amount, final outcome)`` of an incident's queue, oldest scoring first."""
    final = (select(Decision.outcome).where(Decision.application_id == IncidentReview.application_id,
                                            Decision.status == "final")
             .order_by(Decision.decided_at.desc()).limit(1).scalar_subquery())
    q = (select(IncidentReview, Application.applied_at, Application.loan_amount, final)
         .join(Application, Application.id == IncidentReview.application_id)
         .where(IncidentReview.incident_id == incident_id).order_by(IncidentReview.scored_at))
    if limit is not None:
        q = q.limit(limit)
    return [tuple(r) for r in s.execute(q)]


def review_counts(s: Session, incident_id: uuid.UUID) -> dict[str, int]:
    q = (select(IncidentReview.status, func.count()).where(IncidentReview.incident_id == incident_id)
         .group_by(IncidentReview.status))
    return {str(k): int(n) for k, n in s.execute(q)}


def mark_reviewed(s: Session, incident_id: uuid.UUID, application_id: uuid.UUID, *, by: str, at: datetime,
                  note: str) -> int:
    res = s.execute(update(IncidentReview).where(IncidentReview.incident_id == incident_id,
                                                 IncidentReview.application_id == application_id,
                                                 IncidentReview.status == "queued")
                    .values(status="reviewed", reviewed_by=by, reviewed_at=at, note=note))
    return int(res.rowcount or 0)  # type: ignore[attr-defined]


def scored(s: Session, version: str, start: datetime | None, end: datetime | None) -> list[tuple[float, Any]]:
    """``(pd, defaulted or None)`` of ``version``'s predictions scored in ``[start, end)`` (estimated and realized
    performance of the version over the window)."""
    q = (select(Prediction.pd, Outcome.defaulted)
         .outerjoin(Outcome, Outcome.application_id == Prediction.application_id)
         .where(Prediction.model_version == version, Prediction.model_role == "primary"))
    if start is not None:
        q = q.where(Prediction.created_at >= start)
    if end is not None:
        q = q.where(Prediction.created_at < end)
    return [(float(p), d) for p, d in s.execute(q)]


def kth_scored_after(s: Session, version: str, after: datetime, k: int) -> datetime | None:
    """When ``version`` scored its ``k``-th request after ``after`` (None when it has not yet)."""
    q = (select(Prediction.created_at).where(Prediction.model_version == version, Prediction.created_at >= after)
         .order_by(Prediction.created_at).offset(k - 1).limit(1))
    return s.scalars(q).first()
