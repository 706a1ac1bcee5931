"""Engine and unit of work. Built by the composition root, never at import time."""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from backend.platform.db.sqlite_wal import FALLBACK_PAGES, WalCheckpointer

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_MMAP_BYTES = 256 * 1024 * 1024
# the page size a new database file is created with (an existing file keeps its own until a VACUUM): rows of the
# book are 0.3-0.8 kB, and a 4 kB page left half a row unused on average (33 MB of the default history's 418 MB)
SQLITE_PAGE_BYTES = 8192
WAL_KEEP_BYTES = 8 * 1024 * 1024  # the most write-ahead log a SQLite database keeps on disk between checkpoints


def json_dumps(value: Any, *, default: Callable[[Any], Any] | None = None) -> str:
    """JSON text of a JSON column: orjson (C; several times faster than the standard library on the
    float-heavy features and attributions written with every score), compact. What orjson cannot
    write the same way goes through the standard library as before: values it refuses (integers
    beyond 64 bits, lone surrogates) and non-finite floats (orjson writes null; the
    standard library writes NaN, which SQLite keeps and PostgreSQL refuses). Read back, both give the
    same values. ``default`` as in :func:`json.dumps`."""
    return json_bytes(value, default=default)[0].decode()


def json_bytes(value: Any, *, default: Callable[[Any], Any] | None = None) -> tuple[bytes, bool]:
    """:func:`json_dumps` as UTF-8, and whether orjson wrote it (then ``orjson.loads`` reads back the same
    values; the standard library's text, e.g. an integer past 64 bits, needs ``json.loads``)."""
    try:
        out = orjson.dumps(value, default=default, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)
    except TypeError:
        return json.dumps(value, default=default).encode(), False
    if b"null" in out and _non_finite(value):
        return json.dumps(value, default=default).encode(), False
    return out, True


def _non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        value = value.values()
    elif not isinstance(value, list | tuple):
        return False
    for v in value:  # a plain loop: this runs on every features dict that holds a missing value
        if isinstance(v, float):
            if not math.isfinite(v):
                return True
        elif isinstance(v, dict | list | tuple) and _non_finite(v):
            return True
    return False


def make_engine(url: str, *, echo: bool = False, pool_size: int = 5, connect_timeout: float = 5.0) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout. ``hide_parameters``: a database
    error's message (which reaches logs) names the statement but never the values bound to it (features,
    protected attributes, encrypted tokens)."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo, connect_args={"timeout": 30, "check_same_thread": False},
                               json_serializer=json_dumps, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute(f"PRAGMA page_size={SQLITE_PAGE_BYTES}")  # (before WAL: a new file takes it, others ignore it)
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")  # reads from the OS page cache, no copy per page
            cur.execute(f"PRAGMA wal_autocheckpoint={FALLBACK_PAGES}")  # checkpoints: see backend/platform/db/sqlite_wal.py
            # the log file shrinks back to this after a checkpoint that restarts it: otherwise it keeps the largest
            # size it ever reached (the default history left 91 MB of it beside a 394 MB database)
            cur.execute(f"PRAGMA journal_size_limit={WAL_KEEP_BYTES}")
            cur.close()
            # let SQLAlchemy emit BEGIN itself (pysqlite's implicit BEGIN is deferred)
            dbapi_conn.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # Writers take the lock up front (BEGIN IMMEDIATE) so read-then-write sequences such as
            # the audit hash chain cannot interleave; plain reads stay deferred and never block.
            mode = "DEFERRED" if conn.get_execution_options().get("read_only") else "IMMEDIATE"
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine
    return create_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        pool_pre_ping=True,
        connect_args={"connect_timeout": int(max(1, connect_timeout))},
        json_serializer=json_dumps,
        hide_parameters=True,
    )


class Database:
    """Owns the engine and hands out transactions.

    ``with db.transaction() as s:`` commits on success and rolls back on any exception, so a
    write and its audit row land together or not at all.

    On SQLite the threads of one process take turns for write transactions on a lock of their own
    before ``BEGIN IMMEDIATE``: SQLite admits one writer at a time anyway, and a thread that waits in
    SQLite's busy handler sleeps in steps of up to 100 ms, while one waiting on the lock is woken the
    moment the writer commits (other processes still wait in the busy handler). The write-ahead log
    is copied into the database file by a thread of its own (:mod:`backend.platform.db.sqlite_wal`).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._factory = sessionmaker(engine, expire_on_commit=False)
        self._write_lock = threading.RLock() if engine.dialect.name == "sqlite" else None
        path = engine.url.database if engine.dialect.name == "sqlite" else None
        self._checkpointer = WalCheckpointer(path) if path and path != ":memory:" else None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        if self._write_lock is None:
            with self._factory() as session, session.begin():
                yield session
            return
        with self._write_lock, self._factory() as session, session.begin():
            yield session
        if self._checkpointer is not None:
            self._checkpointer.ensure_started()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session (deferred on SQLite, so it never waits for writers)."""
        with self._factory() as session:
            session.connection(execution_options={"read_only": True})
            yield session

    @contextmanager
    def bulk_load(self) -> Iterator[None]:
        """For a long, resumable bulk load (the operations simulator): on SQLite, skip fsync
        (``synchronous=OFF``); WAL keeps the file consistent if the process dies, and a power
        loss can only cost the newest transactions, which the loader writes again. Other
        backends are unchanged."""
        if self.dialect != "sqlite":
            yield
            return

        def _off(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
            dbapi_conn.execute("PRAGMA synchronous=OFF")

        self.engine.dispose()
        event.listen(self.engine, "checkout", _off)
        try:
            yield
        finally:
            event.remove(self.engine, "checkout", _off)
            self.engine.dispose()  # pooled connections come back with the connect-time NORMAL

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (idempotent)."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.attributes["connection_engine"] = self.engine
        command.upgrade(cfg, "head")

    def current_revision(self) -> str | None:
        with self.engine.connect() as conn:
            try:
                return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            except Exception:
                return None

    def ping(self) -> dict[str, Any]:
        start = time.perf_counter()
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            rev = self.current_revision()
            ok = rev is not None
            detail = f"schema {rev}" if ok else "schema not created: run `creditrisk db migrate`"
        except Exception as exc:  # noqa: BLE001 - health must never raise
            ok, detail = False, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        return {"ok": ok, "backend": self.dialect, "detail": detail,
                "latency_ms": round((time.perf_counter() - start) * 1000, 2)}

    def vacuum(self) -> tuple[int | None, int | None]:
        """Give the space of deleted or rewritten rows back: SQLite rewrites the file without its free pages
        (``VACUUM``; it needs about the file's size again on disk while it runs and blocks writers); PostgreSQL
        runs ``VACUUM (ANALYZE)``, which makes the space reusable by new rows without locking the tables (giving
        it back to the operating system needs ``VACUUM FULL``, a DBA's call). The file's bytes before and after
        on SQLite, else (None, None)."""
        path = self.engine.url.database if self.dialect == "sqlite" else None
        size = (lambda: os.path.getsize(path)) if path and path != ":memory:" else (lambda: None)
        before = size()
        if self.dialect == "sqlite":  # outside any transaction: the driver's own connection (no BEGIN from us)
            raw = self.engine.raw_connection()
            try:
                cur = raw.cursor()
                cur.execute("VACUUM")
                cur.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                cur.close()
            finally:
                raw.close()
        else:
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM (ANALYZE)")
        return before, size()

    def dispose(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        self.engine.dispose()
