"""Audit trail queries and chain verification (appends happen inside each use case's transaction)."""

from __future__ import annotations

from typing import Any

from backend.db.engine import Database
from backend.db.repo_audit import AuditRepository, ChainReport


class AuditService:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, *, actor: str, role: str, action: str, entity_type: str, entity_id: str,
               payload: dict[str, Any] | None = None) -> None:
        """A standalone audited event (one transaction holding only the audit row)."""
        with self.db.transaction() as s:
            AuditRepository(s).append(actor=actor, role=role, action=action, entity_type=entity_type,
                                      entity_id=entity_id, payload=payload)

    def verify(self) -> ChainReport:
        with self.db.read() as s:
            return AuditRepository(s).verify()

    def recent(self, limit: int = 50, **filters: str | None) -> list[dict[str, Any]]:
        with self.db.read() as s:
            return [{"seq": r.seq, "at": r.at, "actor": r.actor, "role": r.role, "action": r.action,
                     "entity_type": r.entity_type, "entity_id": r.entity_id, "payload": r.payload}
                    for r in AuditRepository(s).recent(limit, **filters)]

    def count(self) -> int:
        with self.db.read() as s:
            return AuditRepository(s).count()
