"""The audit log: append-only rows chained by SHA-256.

``row_hash = sha256(prev_hash | id | at | actor | role | action | entity_type | entity_id | payload_hash)``
where ``payload_hash = sha256(canonical JSON of the payload)``. The first row's ``prev_hash`` is
:data:`GENESIS`. Appends are serialised (PostgreSQL advisory lock; SQLite ``BEGIN IMMEDIATE``) so
the chain has no forks. The database refuses UPDATE/DELETE/TRUNCATE on the table (migration 0001).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from backend.db.tables import AuditLog, utcnow

GENESIS = "0" * 64
_ADVISORY_LOCK_ID = 7_734_001  # arbitrary constant: "the audit chain head"


def canonical_json(payload: Mapping[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)


def sha256(text_: str) -> str:
    return hashlib.sha256(text_.encode("utf-8", "surrogatepass")).hexdigest()


def row_hash(prev_hash: str, row_id: uuid.UUID, at: datetime, actor: str, role: str, action: str,
             entity_type: str, entity_id: str, payload_hash: str) -> str:
    parts = [prev_hash, str(row_id), at.isoformat(timespec="microseconds"), actor, role, action,
             entity_type, entity_id, payload_hash]
    return sha256("|".join(parts))


@dataclass(frozen=True)
class ChainReport:
    rows: int
    ok: bool
    first_broken_seq: int | None = None
    detail: str = ""


class AuditRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def append(self, *, actor: str, role: str, action: str, entity_type: str, entity_id: str,
               payload: Mapping[str, Any] | None = None, at: datetime | None = None) -> AuditLog:
        """Add one row at the head of the chain, inside the caller's transaction."""
        if self.s.get_bind().dialect.name == "postgresql":
            self.s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_LOCK_ID})
        prev = self.s.execute(select(AuditLog.row_hash).order_by(AuditLog.seq.desc()).limit(1)).scalar()
        body = dict(payload or {})
        p_hash = sha256(canonical_json(body))
        row_id = uuid.uuid4()
        when = at or utcnow()  # microsecond precision survives every backend, so hashes recompute
        row = AuditLog(id=row_id, at=when, actor=actor, role=role, action=action, entity_type=entity_type,
                       entity_id=str(entity_id), payload=body, payload_hash=p_hash, prev_hash=prev or GENESIS,
                       row_hash=row_hash(prev or GENESIS, row_id, when, actor, role, action, entity_type,
                                         str(entity_id), p_hash))
        self.s.add(row)
        self.s.flush()
        return row

    def count(self) -> int:
        return int(self.s.execute(select(func.count()).select_from(AuditLog)).scalar_one())

    def recent(self, limit: int = 50, *, entity_type: str | None = None, actor: str | None = None,
               action: str | None = None) -> list[AuditLog]:
        q = select(AuditLog).order_by(AuditLog.seq.desc()).limit(limit)
        if entity_type:
            q = q.where(AuditLog.entity_type == entity_type)
        if actor:
            q = q.where(AuditLog.actor == actor)
        if action:
            q = q.where(AuditLog.action == action)
        return list(self.s.execute(q).scalars())

    def iter_chain(self, batch: int = 5000) -> Iterable[AuditLog]:
        last = 0
        while True:
            rows = list(self.s.execute(select(AuditLog).where(AuditLog.seq > last)
                                       .order_by(AuditLog.seq).limit(batch)).scalars())
            if not rows:
                return
            yield from rows
            last = rows[-1].seq

    def verify(self) -> ChainReport:
        """Recompute every hash; report the first row whose content or link does not match."""
        prev, n = GENESIS, 0
        for row in self.iter_chain():
            n += 1
            if row.prev_hash != prev:
                return ChainReport(n, False, row.seq, "prev_hash does not match the previous row (row removed or reordered)")
            if sha256(canonical_json(row.payload)) != row.payload_hash:
                return ChainReport(n, False, row.seq, "payload changed after it was written")
            expect = row_hash(row.prev_hash, row.id, row.at, row.actor, row.role, row.action,
                              row.entity_type, row.entity_id, row.payload_hash)
            if expect != row.row_hash:
                return ChainReport(n, False, row.seq, "row fields changed after it was written")
            prev = row.row_hash
        return ChainReport(n, True)
