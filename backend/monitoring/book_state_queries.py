"""The book's state for :mod:`backend.monitoring.book_state`: index-only counts and maxima (and two narrow scans)
that change whenever a row a fairness or performance refresh reads changes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from backend.platform.db.tables_book import Application, Decision, Outcome, Prediction


@dataclass(frozen=True)
class BookState:
    parts: tuple[str, ...]
    latest: datetime | None  # the newest time recorded in the book (applied, decided, approved, observed, imported)


def book_state(s: Session) -> BookState:
    parts: list[object] = []
    times: list[datetime | None] = []
    n, applied = s.execute(select(func.count(), func.max(Application.applied_at)).select_from(Application)).one()
    parts += [n, applied]
    times.append(applied)
    parts.append(s.execute(select(func.count()).select_from(Prediction)).scalar_one())
    parts.extend(sorted(s.execute(select(Decision.status, func.count()).group_by(Decision.status)).all()))
    decided, approved = s.execute(select(func.max(Decision.decided_at), func.max(Decision.approved_at))).one()
    parts += [decided, approved]
    times += [decided, approved]
    row = s.execute(select(func.count(), func.max(Outcome.observed_at), func.max(Outcome.imported_at),
                           func.count(func.distinct(Outcome.batch_id)), func.count(case((Outcome.funded.is_(True), 1))),
                           func.count(case((Outcome.defaulted.is_(True), 1))))).one()
    parts.extend(row)
    times += [row[1], row[2]]
    known = [as_utc(t) for t in times if t is not None]
    return BookState(tuple(str(p) for p in parts), max(known) if known else None)


def as_utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
