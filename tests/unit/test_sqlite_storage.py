"""How SQLite stores keys, references, audit entity ids and times (backend/platform/db/base.py): UUIDs as their
16 bytes, times as integer microseconds, entity ids that are a UUID's canonical text as its bytes; every value
reads back exactly as it went in, text from before the migrations reads back too, and new database files get
8 kB pages. Run through a real SQLite database (in a file), not the type methods alone."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from backend.platform.db.base import EntityRef, UTCDateTime, UUIDKey
from backend.platform.db.engine import SQLITE_PAGE_BYTES, make_engine

META = sa.MetaData()
T = sa.Table("t", META, sa.Column("k", sa.Integer, primary_key=True), sa.Column("u", UUIDKey),
             sa.Column("e", EntityRef), sa.Column("at", UTCDateTime))


@pytest.fixture
def engine(tmp_path):
    e = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    META.create_all(e)
    yield e
    e.dispose()


def _raw(c: sa.Connection, column: str) -> list[tuple[str, object]]:
    return [tuple(r) for r in c.execute(sa.text(f"SELECT typeof({column}), {column} FROM t ORDER BY k"))]  # noqa: S608


TIMES = [datetime(1970, 1, 1, tzinfo=UTC), datetime(2026, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
         datetime(2026, 3, 29, 1, 30, 0, 1, tzinfo=timezone(timedelta(hours=2))),  # another offset: the same instant
         datetime(2099, 2, 28, 12, tzinfo=UTC)]


def test_times_are_integer_microseconds_and_read_back_as_the_same_instant(engine):
    with engine.begin() as c:
        c.execute(T.insert(), [{"k": i, "at": t} for i, t in enumerate(TIMES)])
        back = list(c.execute(sa.select(T.c.at).order_by(T.c.k)).scalars())
        raw = _raw(c, "at")
    assert back == TIMES and all(t.tzinfo is UTC for t in back)
    assert [r[0] for r in raw] == ["integer"] * len(TIMES)
    assert [r[1] for r in raw] == [int((t - TIMES[0]).total_seconds()) * 1_000_000
                                                  + t.microsecond for t in TIMES]
    with engine.connect() as c:  # comparisons bind through the type: exact to the microsecond
        t = TIMES[1]
        assert c.execute(sa.select(T.c.k).where(T.c.at >= t, T.c.at < t + timedelta(microseconds=1))).scalar() == 1
        assert c.execute(sa.select(sa.func.max(T.c.at))).scalar() == TIMES[3]


def test_a_naive_time_is_refused(engine):
    with pytest.raises(sa.exc.StatementError, match="naive datetime"), engine.begin() as c:
        c.execute(T.insert(), [{"k": 1, "at": datetime(2026, 1, 1)}])


def test_time_text_from_before_0019_reads_back(engine):
    with engine.begin() as c:
        c.execute(sa.text("INSERT INTO t (k, at) VALUES (1, '2026-11-02 09:30:00.000123'), (2, NULL)"))
        assert list(c.execute(sa.select(T.c.at).order_by(T.c.k)).scalars()) == [
            datetime(2026, 11, 2, 9, 30, 0, 123, tzinfo=UTC), None]


def test_uuids_are_16_bytes_and_bind_from_their_text_too(engine):
    ids = [uuid.uuid4() for _ in range(3)]
    with engine.begin() as c:
        c.execute(T.insert(), [{"k": i, "u": u} for i, u in enumerate(ids)])
        assert [r[0] for r in _raw(c, "u")] == ["blob"] * 3
        assert [r[1] for r in _raw(c, "u")] == [u.bytes for u in ids]
        for text in (str(ids[1]), ids[1].hex, str(ids[1]).upper()):  # the same UUID, written three ways
            assert c.execute(sa.select(T.c.k).where(T.c.u == text)).scalar() == 1
        assert c.execute(sa.select(T.c.k).where(T.c.u.in_([ids[0], ids[2]])).order_by(T.c.k)).scalars().all() == [0, 2]
        with pytest.raises(sa.exc.StatementError):
            c.execute(sa.select(T.c.k).where(T.c.u == "not-a-uuid"))


def test_uuid_hex_text_from_before_0018_reads_back(engine):
    u = uuid.uuid4()
    with engine.begin() as c:
        c.execute(sa.text("INSERT INTO t (k, u) VALUES (1, :h)"), {"h": u.hex})
        assert c.execute(sa.select(T.c.u)).scalar() == u


U1, U2 = uuid.UUID("7c9e6679-7425-40de-944b-e07fc1f90ae7"), uuid.UUID("f47ac10b-58cc-4372-a567-0e02b2c3d479")


@pytest.mark.parametrize("entity", [str(uuid.UUID(int=0)), str(U1)])  # canonical: stored as bytes
def test_a_uuids_canonical_text_is_stored_as_its_bytes(engine, entity):
    with engine.begin() as c:
        c.execute(T.insert(), [{"k": 1, "e": entity}])
        assert _raw(c, "e") == [("blob", uuid.UUID(entity).bytes)]
        assert c.execute(sa.select(T.c.e)).scalar() == entity
        assert c.execute(sa.select(T.c.k).where(T.c.e == entity)).scalar() == 1


@pytest.mark.parametrize("entity", [
    str(U1).upper(), U1.hex, "{" + str(U2) + "}", "urn:uuid:" + str(U2),
    str(U2).replace("-", "\u2010"),  # look-alike hyphens
    "batch-2026-12-07", "42", "", "x" * 64, "\u0430" * 36,  # 36 Cyrillic letters: right length, not a UUID
])
def test_any_other_entity_id_stays_text_and_reads_back_the_same(engine, entity):
    with engine.begin() as c:
        c.execute(T.insert(), [{"k": 1, "e": entity}])
        assert _raw(c, "e") == [("text", entity)]
        assert c.execute(sa.select(T.c.e)).scalar() == entity
        assert c.execute(sa.select(T.c.k).where(T.c.e == entity)).scalar() == 1


def test_a_new_database_file_gets_8kb_pages_and_an_old_one_keeps_its_own(tmp_path):
    e = make_engine(f"sqlite:///{tmp_path / 'new.db'}")
    META.create_all(e)
    with e.connect() as c:
        assert c.execute(sa.text("PRAGMA page_size")).scalar() == SQLITE_PAGE_BYTES == 8192
        assert c.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
    e.dispose()
    old = tmp_path / "old.db"
    with sqlite3.connect(old) as raw:
        raw.execute("CREATE TABLE x (a)")
        raw.execute("INSERT INTO x VALUES (1)")
    raw.close()
    e = make_engine(f"sqlite:///{old}")
    with e.connect() as c:
        assert c.execute(sa.text("PRAGMA page_size")).scalar() == 4096
        assert c.execute(sa.text("SELECT a FROM x")).scalar() == 1
    e.dispose()
