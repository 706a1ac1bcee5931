"""SQL of the alerts feature: every statement the alert service runs lives here."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from backend.platform.db.tables_access import User
from backend.platform.db.tables_governance import AlertRow

LOCK_ID = 7_734_002  # PostgreSQL advisory lock: "the alert lifecycle"


def lock(s: Session) -> None:
    """Serialize alert lifecycle changes until the transaction ends (PostgreSQL; SQLite writes one at a time)."""
    if s.get_bind().dialect.name == "postgresql":
        s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_ID})


def unresolved(s: Session, rule: str, statuses: Sequence[str]) -> list[AlertRow]:
    """The rule's alerts in ``statuses`` (its unresolved ones), oldest first."""
    return list(s.execute(select(AlertRow).where(AlertRow.rule == rule, AlertRow.status.in_(statuses))
                          .order_by(AlertRow.opened_at)).scalars())


def user(s: Session, username: str) -> User | None:
    return s.execute(select(User).where(User.username == username)).scalar()


def for_update(s: Session, alert_id: uuid.UUID) -> AlertRow | None:
    """One alert, locked for the rest of the transaction."""
    return s.execute(select(AlertRow).where(AlertRow.id == alert_id).with_for_update()).scalar()


def count(s: Session, statuses: Sequence[str] | None) -> int:
    q = select(func.count()).select_from(AlertRow)
    if statuses is not None:
        q = q.where(AlertRow.status.in_(statuses))
    return int(s.execute(q).scalar_one())


def page(s: Session, statuses: Sequence[str] | None, *, by_resolved: bool, limit: int, offset: int) -> list[AlertRow]:
    """Alerts newest first (by resolution time when ``by_resolved``), ``limit`` from ``offset``."""
    q = select(AlertRow)
    if statuses is not None:
        q = q.where(AlertRow.status.in_(statuses))
    order = AlertRow.resolved_at.desc() if by_resolved else AlertRow.opened_at.desc()
    return list(s.execute(q.order_by(order, AlertRow.opened_at.desc()).limit(max(1, int(limit)))
                          .offset(max(0, int(offset)))).scalars())


def open_alert(s: Session, *, rule: str, metric: str, severity: str, action: str, value: float | None,
               threshold: float, message: str, details: dict[str, Any], at: datetime) -> AlertRow:
    """A new open alert (flushed, so its id is set)."""
    row = AlertRow(rule=rule, metric=metric, severity=severity, action=action, status="open", value=value,
                   threshold=threshold, message=message, details=details, opened_at=at, last_seen_at=at,
                   notifications=[])
    s.add(row)
    s.flush()
    return row


def by_id(s: Session, alert_id: uuid.UUID) -> AlertRow | None:
    return s.get(AlertRow, alert_id)
