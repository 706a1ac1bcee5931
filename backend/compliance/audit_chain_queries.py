"""SQL of the sequencer and the verifier: batches, the sealing horizon, rows as plain tuples.

PostgreSQL's horizon: every row whose ``seq`` is at most ``M`` (the highest committed seq) has
committed or never will once every transaction of this database that was running just after ``M`` was
read has ended
(the ``seq`` default ``audit_next_seq()`` of revision 0009 gives a transaction its id before it draws a
seq; later transactions get higher seqs). SQLite admits one writer at a time, so its horizon is simply ``M``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, LargeBinary, TypeDecorator, func, insert, select, text, type_coerce
from sqlalchemy.orm import Session

from backend.platform.db import compact
from backend.platform.db.tables_governance import AuditBatch, AuditLog

SEQUENCER_LOCK = 7_734_002  # advisory lock key: "the audit sequencer"


class _StoredText(TypeDecorator[str]):
    """The payload's JSON text as stored (compact values inflated, never parsed: orjson parses it)."""

    impl = LargeBinary
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Any) -> str | None:
        return None if value is None else compact.json_text(value).decode("utf-8", "surrogatepass")


ROW_COLUMNS = (AuditLog.seq, AuditLog.id, AuditLog.at, AuditLog.actor, AuditLog.role, AuditLog.action,
               AuditLog.entity_type, AuditLog.entity_id, type_coerce(AuditLog.payload, _StoredText),
               AuditLog.payload_hash, AuditLog.prev_hash, AuditLog.row_hash)  # the payload as its JSON text
BatchTuple = tuple[int, int, int, int, str, bytes, str, str, str]


def is_pg(s: Session | Connection) -> bool:
    return (s.get_bind() if isinstance(s, Session) else s).dialect.name == "postgresql"


def try_xact_lock(s: Session) -> bool:
    """PostgreSQL: the sequencer's lock for this transaction, if nobody holds it (SQLite: the write
    transaction itself, BEGIN IMMEDIATE, is the lock)."""
    if not is_pg(s):
        return True
    return bool(s.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": SEQUENCER_LOCK}).scalar())


def try_session_lock(conn: Connection) -> bool:
    """PostgreSQL: hold the sequencer's lock for as long as ``conn`` lives (fail-over: it goes with it)."""
    got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": SEQUENCER_LOCK}).scalar()
    conn.commit()
    return bool(got)


def horizon(s: Session) -> tuple[int, list[str] | None]:
    """The highest committed seq and (PostgreSQL) the transactions of this database running just after
    it was read: each holds the lock on its own id (``pg_locks``; its database is its backend's). Not the
    snapshot's ``xip``: that omits running transactions at or past ``xmax`` (one past the newest
    *completed* id), exactly the writer that drew a lower seq just before the newest commit."""
    top = int(s.execute(select(func.coalesce(func.max(AuditLog.seq), 0))).scalar_one())
    if not is_pg(s):
        return top, None
    xids = s.execute(text(
        "SELECT l.transactionid::text FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock' AND l.granted "
        "AND a.datname = current_database() AND l.pid <> pg_backend_pid()")).scalars().all()
    return top, [str(x) for x in xids]


def still_running(s: Session, xids: list[str]) -> int:
    """How many of ``xids`` still hold the lock on their id (a transaction drops it only after it has
    left the running set, so its rows are visible to the next statement once it is gone)."""
    if not xids:
        return 0
    return int(s.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'transactionid' "
                              "AND mode = 'ExclusiveLock' AND granted "
                              "AND transactionid::text = ANY(CAST(:xs AS text[]))"), {"xs": xids}).scalar_one())


def last_batch(s: Session) -> tuple[int, int, str] | None:
    """(batch_no, last_seq, mac) of the newest batch."""
    row = s.execute(select(AuditBatch.batch_no, AuditBatch.last_seq, AuditBatch.mac)
                    .order_by(AuditBatch.batch_no.desc()).limit(1)).first()
    return (int(row[0]), int(row[1]), str(row[2])) if row else None


def rows_to_seal(s: Session, after: int, through: int, limit: int) -> list[tuple[int, str]]:
    q = (select(AuditLog.seq, AuditLog.row_hash).where(AuditLog.seq > after, AuditLog.seq <= through)
         .order_by(AuditLog.seq).limit(limit))
    return [(int(a), str(b)) for a, b in s.execute(q)]


def insert_batch(s: Session, values: dict[str, Any]) -> None:
    s.execute(insert(AuditBatch), [values])


def batches(s: Session) -> list[BatchTuple]:
    """Every batch in order: (no, first, last, size, gaps, tags, root, prev_mac, mac)."""
    q = select(AuditBatch.batch_no, AuditBatch.first_seq, AuditBatch.last_seq, AuditBatch.size, AuditBatch.gaps,
               AuditBatch.tags, AuditBatch.root, AuditBatch.prev_mac, AuditBatch.mac).order_by(AuditBatch.batch_no)
    return [(int(a), int(b), int(c), int(d), str(e), bytes(f), str(g), str(h), str(i))
            for a, b, c, d, e, f, g, h, i in s.execute(q)]


def count_rows(s: Session) -> int:
    return int(s.execute(select(func.count()).select_from(AuditLog)).scalar_one())


def count_after(s: Session, seq: int) -> int:
    return int(s.execute(select(func.count()).select_from(AuditLog).where(AuditLog.seq > seq)).scalar_one())


def iter_rows(s: Session, page: int = 5000, *, through: int | None = None) -> Iterator[tuple[Any, ...]]:
    """Every row as a plain tuple (``ROW_COLUMNS``; the payload as its stored JSON text), in seq order,
    in keyset pages."""
    last = 0
    while True:
        q = select(*ROW_COLUMNS).where(AuditLog.seq > last)
        if through is not None:
            q = q.where(AuditLog.seq <= through)
        rows = s.execute(q.order_by(AuditLog.seq).limit(page)).all()
        if not rows:
            return
        yield from rows  # the payload (index 8) as the JSON text stored: payload_of() reads it
        last = rows[-1][0]


def archived_anchors(s: Session, action: str) -> list[tuple[int, Any]]:
    """(seq, payload) of each archive event (legacy rows may start at one of their anchors)."""
    return [(int(a), b) for a, b in s.execute(select(AuditLog.seq, AuditLog.payload)
                                             .where(AuditLog.action == action).order_by(AuditLog.seq))]
