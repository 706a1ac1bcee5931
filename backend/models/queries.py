"""What the models feature reads from the database: the unresolved alerts that halt deployments (the
alert rules write them; :mod:`backend.models.halts` obeys them). Every SQL statement of the feature lives here."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.platform.db.tables_governance import AlertRow

UNRESOLVED = ("open", "acknowledged")


def unresolved_alerts(s: Session, action: str) -> list[AlertRow]:
    """Open or acknowledged (not resolved) alerts whose action is ``action``, the oldest first."""
    return list(s.execute(select(AlertRow).where(AlertRow.action == action, AlertRow.status.in_(UNRESOLVED))
                          .order_by(AlertRow.opened_at)).scalars())
