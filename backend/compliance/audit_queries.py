"""The audit log: append-only rows, sealed in batches by the sequencer. Every SQL statement on ``audit_log`` lives here.

A row's ``payload_hash = sha256(canonical JSON of the payload)`` and, for rows written since
revision 0009, ``row_hash = sha256("v2" | id | at | actor | role | action | entity_type | entity_id |
payload_hash)`` with an empty ``prev_hash``: writers take no lock and read no chain head, they only
insert, inside the caller's transaction (on PostgreSQL the ``seq`` default, ``audit_next_seq()``
from revision 0009, gives the transaction its id before it draws the seq). The sequencer (:mod:`.audit_sequencer`) orders committed
rows and seals them into keyed Merkle batches; a row not sealed yet is *pending*. Rows written before
0009 keep the old chain (``row_hash = sha256(prev_hash | id | ... | payload_hash)``, the first linking
to :data:`GENESIS`) and are sealed like the rest. The database refuses UPDATE/DELETE/TRUNCATE on the
table (migration 0001).

Two writers: :meth:`AuditRepository.append` (one row, as an ORM object) and :func:`append_many`
(many rows in multi-row INSERTs, in order).
"""

from __future__ import annotations

import logging
import uuid
import weakref
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, Table, event, func, insert, select
from sqlalchemy.orm import Session

from backend.compliance.audit_payload import canonical_json, sha256
from backend.platform.db.base import utcnow
from backend.platform.db.tables_governance import AuditLog

GENESIS = "0" * 64
PENDING = ""  # prev_hash of a row written since 0009: its place comes from the sequencer's batches
CHUNK = 2000  # rows per multi-row INSERT in append_many
_AUDIT_TABLE = cast(Table, AuditLog.__table__)
_APPENDED = "creditrisk.audit_appended"  # Session.info flag: this transaction wrote audit rows
_INLINE: weakref.WeakKeyDictionary[Any, Callable[[], None]] = weakref.WeakKeyDictionary()


def row_hash(prev_hash: str, row_id: uuid.UUID, at: datetime, actor: str, role: str, action: str,
             entity_type: str, entity_id: str, payload_hash: str) -> str:
    parts = [prev_hash, str(row_id), at.isoformat(timespec="microseconds"), actor, role, action,
             entity_type, entity_id, payload_hash]
    return sha256("|".join(parts))


def row_hash_v2(row_id: uuid.UUID | str, at: datetime, actor: str, role: str, action: str, entity_type: str,
                entity_id: str, payload_hash: str) -> str:
    """A row's own hash (no link: its place is sealed by the sequencer, under a key)."""
    return sha256("|".join(("v2", str(row_id), at.isoformat(timespec="microseconds"), actor, role, action,
                            entity_type, entity_id, payload_hash)))


def register_inline(engine: Any, seal: Callable[[], None]) -> None:
    """Run ``seal`` after every commit on ``engine`` that wrote audit rows (the embedded default)."""
    _INLINE[engine] = seal


def unregister_inline(engine: Any) -> None:
    _INLINE.pop(engine, None)


@event.listens_for(Session, "after_commit")
def _seal_after_commit(session: Session) -> None:
    if not session.info.pop(_APPENDED, False):
        return
    seal = _INLINE.get(session.get_bind())
    if seal is not None:
        try:
            seal()
        except Exception:  # noqa: BLE001 - the write committed; its rows stay pending, never lost
            logging.getLogger(__name__).exception("inline audit sealing failed; rows stay pending")


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_APPENDED, None)


def _begin_append(s: Session) -> None:
    s.info[_APPENDED] = True  # (on PostgreSQL the seq's default takes the transaction id first: 0008)


@dataclass(frozen=True)
class ChainReport:
    rows: int
    ok: bool
    first_broken_seq: int | None = None
    detail: str = ""
    start_anchor: str | None = None  # the first row's prev_hash when earlier rows were archived
    pending: int = 0  # rows written but not sealed in a batch yet (never lost: the sequencer takes them)
    batches: int = 0
    archived: int = 0  # sealed rows gone from the table under a signed archive checkpoint
    checkpoint: str = ""  # the newest signed checkpoint the database was held to


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


@dataclass(frozen=True)
class AuditEntry:
    """One row for :func:`append_many`."""

    actor: str
    role: str
    action: str
    entity_type: str
    entity_id: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    at: datetime | None = None


def append_many(s: Session, entries: Sequence[AuditEntry]) -> list[str]:
    """Append ``entries`` in order, inside the caller's transaction; returns their row hashes."""
    if not entries:
        return []
    _begin_append(s)
    rows: list[dict[str, Any]] = []
    hashes: list[str] = []
    for e in entries:
        body = dict(e.payload)
        p_hash = sha256(canonical_json(body))
        rid = uuid.uuid4()
        when = e.at or utcnow()
        eid = str(e.entity_id)
        h = row_hash_v2(rid, when, e.actor, e.role, e.action, e.entity_type, eid, p_hash)
        rows.append({"id": rid, "at": when, "actor": e.actor, "role": e.role, "action": e.action,
                     "entity_type": e.entity_type, "entity_id": eid, "payload": body, "payload_hash": p_hash,
                     "prev_hash": PENDING, "row_hash": h})
        hashes.append(h)
    for i in range(0, len(rows), CHUNK):  # insertmanyvalues keeps the order, so seq follows the list
        # Core, not the ORM entity: the ORM's bulk path sorts each row's keys into properties first, for rows that
        # are already the table's columns (1.10-1.26x per row without it: bench/audit_append.py)
        s.execute(insert(_AUDIT_TABLE), rows[i:i + CHUNK])
    return hashes


class AuditRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def append(self, *, actor: str, role: str, action: str, entity_type: str, entity_id: str,
               payload: Mapping[str, Any] | None = None, at: datetime | None = None) -> AuditLog:
        """Add one row (pending until the sequencer seals it), inside the caller's transaction."""
        _begin_append(self.s)
        body = dict(payload or {})
        p_hash = sha256(canonical_json(body))
        row_id = uuid.uuid4()
        when = at or utcnow()  # microsecond precision survives every backend, so hashes recompute
        row = AuditLog(id=row_id, at=when, actor=actor, role=role, action=action, entity_type=entity_type,
                       entity_id=str(entity_id), payload=body, payload_hash=p_hash, prev_hash=PENDING,
                       row_hash=row_hash_v2(row_id, when, actor, role, action, entity_type, str(entity_id), p_hash))
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
        """The keyless check (rows, links, batch structure; no MACs, no checkpoint) inside this session,
        for a restored copy checked without the deployment's secrets. The full check is
        :meth:`backend.compliance.audit.AuditService.verify`."""
        from backend.compliance import audit_chain_queries as chain_q
        from backend.compliance.audit_seal import Checkpoints
        from backend.compliance.audit_verify import verify_rows

        return verify_rows(chain_q.iter_rows(self.s), chain_q.batches(self.s), None, Checkpoints(None, [], []),
                           total=chain_q.count_rows(self.s), anchors=anchors)
