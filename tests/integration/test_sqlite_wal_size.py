"""The SQLite write-ahead log does not stay at the largest size it ever reached.

A reader that holds an old snapshot (the history's monitor process, a long page query) keeps a checkpoint
from restarting the log, which then grows; SQLite reuses the file from its start afterwards but keeps its
size, so the default history left a 91 MB log beside its 394 MB database. ``journal_size_limit`` (set on every
connection, ``backend/platform/db/engine.py``) shrinks it back once a checkpoint restarts it.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path

import sqlalchemy as sa

from backend.platform.db.engine import WAL_KEEP_BYTES, Database, make_engine


def _write(db: Database, kb: int) -> None:
    with db.engine.begin() as c:
        c.exec_driver_sql("CREATE TABLE IF NOT EXISTS filler (x BLOB)")
        c.execute(sa.text("INSERT INTO filler VALUES (randomblob(1024))"), [{}] * kb)


def _checkpoint(path: Path) -> None:
    with closing(sqlite3.connect(path)) as c:  # outside any transaction, as the checkpoint thread does
        c.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


def test_the_log_shrinks_back_after_a_reader_held_it_open(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    db = Database(make_engine(f"sqlite:///{path}"))
    wal = Path(f"{path}-wal")
    try:
        with db.read() as s:
            assert s.execute(sa.text("PRAGMA journal_size_limit")).scalar() == WAL_KEEP_BYTES
        _write(db, 16)
        with db.read() as s:  # a snapshot held across the writes: no checkpoint can restart the log
            s.execute(sa.text("SELECT count(*) FROM filler")).scalar()
            _write(db, 3 * WAL_KEEP_BYTES // 1024)
            _checkpoint(path)
            grown = os.path.getsize(wal)
        assert grown > WAL_KEEP_BYTES
        _checkpoint(path)  # every page in the database now; the next write restarts the log
        _write(db, 1)
        _checkpoint(path)
        assert os.path.getsize(wal) <= WAL_KEEP_BYTES < grown
    finally:
        db.dispose()
