"""What retraining reads from the decision book. Every SQL statement of the training feature lives here."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session

from backend.platform.db.tables_book import Application, Outcome


def labeled_applications(s: Session, start: datetime, end: datetime) -> Sequence[Row[Any]]:
    """``features``, ``protected`` and ``defaulted`` of the funded applications made in ``[start, end)``
    whose default flag was observed by ``end``, in application order."""
    return s.execute(select(Application.features, Application.protected, Outcome.defaulted)
                     .join(Outcome, Outcome.application_id == Application.id)
                     .where(Outcome.funded.is_(True), Outcome.defaulted.is_not(None), Outcome.observed_at <= end,
                            Application.applied_at >= start, Application.applied_at < end)
                     .order_by(Application.applied_at, Application.id)).all()


def count_applications(s: Session, start: datetime, end: datetime) -> int:
    """Every application made in ``[start, end)``, funded or not."""
    return int(s.execute(select(func.count()).select_from(Application)
                         .where(Application.applied_at >= start, Application.applied_at < end)).scalar_one())
