"""Migration 0019 (times as integer microseconds on SQLite): times that 0018's code wrote as text read back as the
same instants to the microsecond, the SQL over them (months, weeks, seconds between, months later) gives what it
gave on the text, the book-month triggers take the month from the integer, the audit chain still verifies, and a
downgrade gives the same text back (PostgreSQL: nothing to do, the same values)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from old_schema import HEAD, T0, applied_time, write_0017_book

from backend.container import build_services
from backend.operations.backup_queries import migrate_to
from backend.platform.db.base import UTCDateTime
from backend.platform.db.engine import Database
from backend.platform.db.tables_book import Application, Decision, Outcome
from backend.platform.db.tables_governance import AuditBatch, AuditLog
from backend.platform.db.timesql import epoch_seconds, month_key, plus_months, seconds_between, week_start

N = 7


def _times(db: Database) -> list[tuple[object, ...]]:
    d = db.dialect
    with db.engine.connect() as c:
        rows = sorted(c.execute(sa.select(
            Application.applied_at, Application.created_at, Decision.decided_at, Outcome.observed_at,
            month_key(Application.applied_at, d), week_start(Application.applied_at, d),
            epoch_seconds(Application.applied_at, d), seconds_between(Application.applied_at, Decision.decided_at, d),
            sa.type_coerce(plus_months(Application.applied_at, 1, d), UTCDateTime()))
            .join(Decision, Decision.application_id == Application.id)
            .join(Outcome, Outcome.application_id == Application.id)).tuples().all())
    # (PostgreSQL: the week as a date, the seconds as a numeric)
    return [(*r[:5], str(r[5])[:10], int(r[6]), float(r[7]), r[8]) for r in rows]


def _expected(k: int) -> tuple[object, ...]:
    """What :func:`_times` reads of the ``k``-th application of ``write_0017_book``, computed here."""
    t = applied_time(k)
    nxt = t.replace(year=t.year + t.month // 12, month=t.month % 12 + 1)  # (no day past 28 among these)
    return (t, T0, T0, T0, f"{t:%Y-%m}", f"{(t - timedelta(days=t.weekday())):%Y-%m-%d}",
            int(t.timestamp() // 1), (t - T0).total_seconds(), nxt)


def _seal_as_0018_did(db: Database, settings, clock) -> dict[int, datetime]:  # noqa: ANN001
    """Seal the audit rows into batches, their ``sealed_at`` stored as text on SQLite as before 0019 (the UPDATE
    lifts the append-only trigger, as nothing but a migration may); the batches' times as they read."""
    build_services(settings, db=db, clock=clock).audit.seal()
    with db.engine.begin() as c:
        if db.dialect == "sqlite":
            c.execute(sa.text("DROP TRIGGER audit_batch_no_update"))
            c.execute(sa.text("UPDATE audit_batch SET sealed_at = strftime('%Y-%m-%d %H:%M:%f', "
                              "sealed_at / 1000000.0, 'unixepoch')"))
            c.execute(sa.text("CREATE TRIGGER audit_batch_no_update BEFORE UPDATE ON audit_batch "
                              "BEGIN SELECT RAISE(ABORT, 'audit_batch is append-only'); END"))
            assert _stored(db, "SELECT DISTINCT typeof(sealed_at) FROM audit_batch", c) == ["text"]
        sealed = dict(c.execute(sa.select(AuditBatch.batch_no, AuditBatch.sealed_at)).tuples().all())
    assert sealed
    return sealed


def _stored(db: Database, sql: str, conn: sa.Connection | None = None) -> list[object]:
    if conn is not None:
        return sorted(conn.execute(sa.text(sql)).scalars(), key=str)
    with db.engine.connect() as c:
        return sorted(c.execute(sa.text(sql)).scalars(), key=str)


MONTHS = "SELECT DISTINCT month FROM book_months ORDER BY month"  # (0022 adds a shard to each month)


def test_0019_stores_times_as_integers_and_every_reading_is_the_same(db: Database, settings, clock) -> None:
    migrate_to(db, "0017")
    write_0017_book(db, N)
    migrate_to(db, "0018")
    sealed = _seal_as_0018_did(db, settings, clock)
    text_months = _stored(db, MONTHS) if db.dialect == "sqlite" else None
    migrate_to(db, HEAD)
    with db.engine.connect() as c:  # the sealed batches' times too (audit_batch is append-only like the log)
        assert dict(c.execute(sa.select(AuditBatch.batch_no, AuditBatch.sealed_at)).tuples().all()) == sealed
    rows = _times(db)
    assert rows == [_expected(k) for k in range(N)]
    if db.dialect == "sqlite":
        assert _stored(db, "SELECT DISTINCT typeof(applied_at) FROM applications") == ["integer"]
        assert _stored(db, "SELECT DISTINCT typeof(at) FROM audit_log") == ["integer"]
        assert _stored(db, "SELECT DISTINCT typeof(sealed_at) FROM audit_batch") == ["integer"]
        assert _stored(db, MONTHS) == text_months
    svc = build_services(settings, db=db, clock=clock)
    report = svc.audit.verify()
    assert report.ok and report.rows == N, report
    with db.engine.connect() as c:
        assert sorted(c.execute(sa.select(AuditLog.at)).scalars()) == [T0 + timedelta(seconds=k) for k in range(N)]
    # a write at head: the trigger files it under the month of the integer
    new_at = datetime(2027, 3, 1, 0, 0, 0, 1, tzinfo=UTC)
    with db.engine.begin() as c:
        tokens = dict(c.execute(sa.text("SELECT month, token FROM book_months")).tuples().all())
        c.execute(sa.update(Application).where(Application.applicant_id == "a0").values(applied_at=new_at))
        now = dict(c.execute(sa.text("SELECT month, token FROM book_months")).tuples().all())
    assert "2027-03" in now and now[f"{applied_time(0):%Y-%m}"] != tokens[f"{applied_time(0):%Y-%m}"]


def test_0019_down_gives_the_text_back_and_up_again_converts_it(db: Database) -> None:
    """(PostgreSQL: both directions leave timestamptz and the values as they are.)"""
    migrate_to(db, "0017")
    write_0017_book(db, N)
    migrate_to(db, "0018")
    text = _stored(db, "SELECT applied_at FROM applications")
    migrate_to(db, HEAD)
    rows = _times(db)
    migrate_to(db, "0018")
    assert _stored(db, "SELECT applied_at FROM applications") == text
    migrate_to(db, HEAD)
    assert _times(db) == rows == [_expected(k) for k in range(N)]
