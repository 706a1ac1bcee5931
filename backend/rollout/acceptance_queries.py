"""Accepted adverse differences (``verdict_acceptances``). Every SQL statement for them lives here."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.platform.db.tables_governance import VerdictAcceptance


def add(s: Session, *, phase: str, metric: str, finding: str, reason: str, accepted_by: str, role: str,
        at: datetime) -> VerdictAcceptance:
    row = VerdictAcceptance(phase=phase, metric=metric, finding=finding, reason=reason, accepted_by=accepted_by,
                            role=role, accepted_at=at)
    s.add(row)
    s.flush()
    return row


def newest_first(s: Session) -> list[VerdictAcceptance]:
    return list(s.execute(select(VerdictAcceptance).order_by(VerdictAcceptance.accepted_at.desc())).scalars())
