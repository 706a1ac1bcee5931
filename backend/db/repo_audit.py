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
from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select, text
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
    start_anchor: str | None = None  # the first row's prev_hash when earlier rows were archived


@dataclass(frozen=True)
class AuditFilter:
    """What the audit page and the export select. Empty fields match everything.

    ``since`` is inclusive and ``until`` exclusive (timezone-aware UTC). ``through_seq`` pins the
    selection to the rows that existed when it was made (an export matches its count exactly).
    """

    entity_type: str | None = None
    entity_id: str | None = None
    actor: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    through_seq: int | None = None

    def describe(self) -> dict[str, Any]:
        """The non-empty fields, JSON-ready (for the audit row that records an export)."""
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(self).items()
                if v not in (None, "")}

    def apply(self, q: Select[Any]) -> Select[Any]:
        if self.entity_type:
            q = q.where(AuditLog.entity_type == self.entity_type)
        if self.entity_id:
            q = q.where(AuditLog.entity_id == self.entity_id)
        if self.actor:
            q = q.where(AuditLog.actor == self.actor)
        if self.action:
            q = q.where(AuditLog.action == self.action)
        if self.since is not None:
            q = q.where(AuditLog.at >= self.since)
        if self.until is not None:
            q = q.where(AuditLog.at < self.until)
        if self.through_seq is not None:
            q = q.where(AuditLog.seq <= self.through_seq)
        return q


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

    def search(self, f: AuditFilter, *, limit: int, offset: int = 0) -> list[AuditLog]:
        """Matching rows, newest first (one page)."""
        q = f.apply(select(AuditLog)).order_by(AuditLog.seq.desc()).offset(offset).limit(limit)
        return list(self.s.execute(q).scalars())

    def count_matching(self, f: AuditFilter) -> int:
        return int(self.s.execute(f.apply(select(func.count()).select_from(AuditLog))).scalar_one())

    def iter_matching(self, f: AuditFilter, batch: int = 5000) -> Iterable[AuditLog]:
        """Matching rows in chain order, read in keyset batches."""
        last = 0
        while True:
            rows = list(self.s.execute(f.apply(select(AuditLog)).where(AuditLog.seq > last)
                                       .order_by(AuditLog.seq).limit(batch)).scalars())
            if not rows:
                return
            yield from rows
            last = rows[-1].seq

    def distinct(self, column: str) -> list[str]:
        """Values present in ``action``, ``actor`` or ``entity_type`` (for filter pick-lists)."""
        col = {"action": AuditLog.action, "actor": AuditLog.actor, "entity_type": AuditLog.entity_type}[column]
        return sorted(str(v) for v in self.s.execute(select(col).distinct()).scalars())

    def head_seq(self) -> int:
        return int(self.s.execute(select(func.coalesce(func.max(AuditLog.seq), 0))).scalar_one())

    def first(self) -> AuditLog | None:
        """The oldest row still in the table (the start of the live chain)."""
        return self.s.execute(select(AuditLog).order_by(AuditLog.seq).limit(1)).scalar()

    def first_kept_seq(self, cutoff: datetime) -> int | None:
        """The first row (in chain order) written at or after ``cutoff``; None when every row is older.

        Rows before it are the ones past retention: an archive is always a prefix of the chain, so
        the kept rows still link to it.
        """
        return self.s.execute(select(AuditLog.seq).where(AuditLog.at >= cutoff)
                              .order_by(AuditLog.seq).limit(1)).scalar()

    def count_before_seq(self, seq: int | None) -> int:
        q = select(func.count()).select_from(AuditLog)
        if seq is not None:
            q = q.where(AuditLog.seq < seq)
        return int(self.s.execute(q).scalar_one())

    def count_older_than(self, cutoff: datetime) -> int:
        return int(self.s.execute(select(func.count()).select_from(AuditLog)
                                  .where(AuditLog.at < cutoff)).scalar_one())

    def iter_chain(self, batch: int = 5000, *, before_seq: int | None = None) -> Iterable[AuditLog]:
        last = 0
        while True:
            q = select(AuditLog).where(AuditLog.seq > last)
            if before_seq is not None:
                q = q.where(AuditLog.seq < before_seq)
            rows = list(self.s.execute(q.order_by(AuditLog.seq).limit(batch)).scalars())
            if not rows:
                return
            yield from rows
            last = rows[-1].seq

    def verify(self, anchors: Collection[str] = ()) -> ChainReport:
        """Recompute every hash; report the first row whose content or link does not match.

        The first row must link to :data:`GENESIS`, or to one of ``anchors`` (the ``row_hash`` of the
        last row of an archive whose rows a DBA has since removed).
        """
        prev, n, start = GENESIS, 0, None
        for row in self.iter_chain():
            n += 1
            if n == 1 and row.prev_hash != GENESIS and row.prev_hash in anchors:
                prev = start = row.prev_hash
            if row.prev_hash != prev:
                return ChainReport(n, False, row.seq, "prev_hash does not match the previous row (row removed or reordered)"
                                   + (" and no archive anchor matches it" if n == 1 else ""))
            if sha256(canonical_json(row.payload)) != row.payload_hash:
                return ChainReport(n, False, row.seq, "payload changed after it was written")
            expect = row_hash(row.prev_hash, row.id, row.at, row.actor, row.role, row.action,
                              row.entity_type, row.entity_id, row.payload_hash)
            if expect != row.row_hash:
                return ChainReport(n, False, row.seq, "row fields changed after it was written")
            prev = row.row_hash
        return ChainReport(n, True, start_anchor=start)
