"""The database side of backup, restore and the drill: a consistent read snapshot, the encoding kind of
each column, rows streamed in primary-key order, bulk inserts in one load transaction, sequence resets,
the schema revision (Alembic), the restored audit chain, and throw-away PostgreSQL databases. Every
statement backup, restore and the drill run lives here. Table-generic: it works from the SQLAlchemy
metadata, so a table added to ``backend/platform/db/tables_*.py`` (``schema.metadata``) is backed up without a change here.

JSON columns are read and written as their stored text (no parse and re-serialise), so a backup
keeps them byte for byte, and SQL NULL stays distinct from a JSON ``null``.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    Float,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Table,
    Text,
    TypeDecorator,
    Uuid,
    bindparam,
    cast,
    func,
    insert,
    inspect,
    literal,
    select,
    text,
    type_coerce,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeEngine

from backend.compliance import ARCHIVED, AuditFilter, AuditRepository, ChainReport
from backend.operations.backup_format import UNKNOWN_TYPE, BackupError
from backend.platform.db import compact
from backend.platform.db.base import EntityRef, HexDigest, UTCDateTime, UUIDKey
from backend.platform.db.compact import CompactJSON
from backend.platform.db.engine import MIGRATIONS_DIR, Database
from backend.platform.db.schema import metadata

COMPACT_SINCE = "0015"  # the migration that stores features, attributions and reasons compact
BAD_SCRATCH_URL = ("--scratch-url must be a postgresql:// URL whose database name is lower-case letters, digits and "
                   "underscores (a random suffix is added; got {url})")


def app_tables() -> list[Table]:
    """Every table of the application, parents before children (foreign-key order)."""
    return list(metadata.sorted_tables)


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """One read transaction that sees a single point in time for all its queries.

    PostgreSQL: REPEATABLE READ, read only (one snapshot for the whole transaction). SQLite (WAL): a
    deferred read transaction; its snapshot is fixed by the first read, done here at once.
    """
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        else:
            conn.execution_options(read_only=True)
        with conn.begin():
            conn.execute(select(literal(1))).scalar()  # take the snapshot now
            yield conn


def column_kind(t: TypeEngine[Any], where: tuple[str, str] = ("?", "?")) -> str:
    """The encoding a column type gets in a backup (checked once per column, before any row is read).
    Compact JSON columns are backed up as their JSON text, like any JSON column (portable across revisions)."""
    if isinstance(t, CompactJSON):
        return "json"
    if isinstance(t, HexDigest):  # hex text, as readers see it (and as the column held it before 0017)
        return "str"
    if isinstance(t, TypeDecorator):
        t = t.impl_instance
    for cls, kind in ((JSON, "json"), (Boolean, "bool"), (Uuid, "uuid"), (DateTime, "datetime"), (Date, "date"),
                      (Float, "float"), (Numeric, "decimal"), (Integer, "int"), (String, "str"),
                      (LargeBinary, "bytes")):
        if isinstance(t, cls):
            return kind
    raise BackupError(UNKNOWN_TYPE.format(table=where[0], column=where[1], type=type(t).__name__))


def current_revision(conn: Connection) -> str | None:
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def existing_columns(conn: Connection, table: Table) -> list[str] | None:
    """The columns of ``table`` present in the database (metadata order); None if the table is absent."""
    insp = inspect(conn)
    if not insp.has_table(table.name):
        return None
    present = {c["name"] for c in insp.get_columns(table.name)}
    return [c.name for c in table.columns if c.name in present]


class _NaiveUTCText(UTCDateTime):
    """Write side of a time column in a schema before 0019: :class:`UTCDateTime` as it bound then (its naive UTC
    time, which SQLAlchemy writes as text on SQLite), not as the integer it binds since."""

    cache_ok = True  # no state beyond UTCDateTime's (SQLAlchemy warned, and compiled it again for every statement)
    bind_processor = TypeDecorator.bind_processor


class _StoredJSONText(TypeDecorator[str]):
    """Read side of a compact JSON column in a backup: its JSON text, inflated but never parsed (a value
    from before migration 0015 is already text)."""

    impl = LargeBinary
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Any) -> str | None:
        return None if value is None else compact.json_text(value).decode("utf-8")


def compact_form(conn: Connection) -> Callable[[Column[Any]], bool]:
    """Whether a column of a compact type holds its compact form in ``conn``'s schema: compact JSON since 0015
    (audit payloads since 0017), hex digests as bytes since 0017, UUIDs as bytes on SQLite since 0018, times as
    integers on SQLite since 0019 (the type's ``since``). The revision is read once."""
    rev = current_revision(conn)  # (comes_before counts a revision as coming before itself)

    def stored(col: Column[Any]) -> bool:
        since = str(getattr(col.type, "since", COMPACT_SINCE))
        return rev is not None and (rev == since or not comes_before(rev, since))

    return stored


def _raw(col: Column[Any], dialect: str, compact_now: bool) -> ColumnElement[Any]:
    """A column as the backup stores it; ``compact_now``: the schema stores this column compact (before its
    migration a compact JSON column is JSON, read as such)."""
    if isinstance(col.type, CompactJSON) and compact_now:
        return type_coerce(col, _StoredJSONText)
    if isinstance(col.type, JSON | CompactJSON):  # the stored text, never parsed
        return cast(col, Text) if dialect == "postgresql" else type_coerce(col, Text)
    return col


def stream_rows(conn: Connection, table: Table, columns: Sequence[str], chunk: int) -> Iterator[Sequence[Any]]:
    """The rows of ``table`` (only ``columns``) in primary-key order, ``chunk`` at a time (server-side cursor)."""
    dialect, stored = conn.dialect.name, compact_form(conn)
    stmt = select(*[_raw(table.c[name], dialect, stored(table.c[name])).label(name) for name in columns])
    stmt = stmt.order_by(*table.primary_key.columns)
    result = conn.execute(stmt, execution_options={"stream_results": True, "yield_per": chunk})
    for part in result.partitions(chunk):
        yield [tuple(r) for r in part]


def count_rows(conn: Connection, table: Table) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def count_tables(db: Database, names: Sequence[str]) -> dict[str, int]:
    """The row count of each table named (tables of this version of the schema)."""
    tables = {t.name: t for t in app_tables()}
    with db.engine.connect() as conn:
        return {name: count_rows(conn, tables[name]) for name in names}


def first_table_with_rows(conn: Connection, tables: Sequence[Table]) -> str | None:
    """The name of the first existing table holding at least one row (None: the database is empty)."""
    insp = inspect(conn)
    for t in tables:
        if insp.has_table(t.name) and conn.execute(select(literal(1)).select_from(t).limit(1)).first():
            return t.name
    return None


def first_nonempty_table(db: Database) -> str | None:
    """:func:`first_table_with_rows` over every table of the application (None: ``db`` is empty)."""
    with db.engine.connect() as conn:
        return first_table_with_rows(conn, app_tables())


@contextmanager
def load_transaction(db: Database) -> Iterator[Connection]:
    """The one transaction a restore loads every table in: committed only if the block ends without an error."""
    with db.engine.connect() as conn, conn.begin():
        yield conn


class TableWriter:
    """Bulk inserts of decoded rows (tuples in ``columns`` order) into one table."""

    def __init__(self, conn: Connection, table: Table, columns: Sequence[str]) -> None:
        self.conn, self.table, self.columns = conn, table, list(columns)
        #: False on SQLite, which stores NULL for a float NaN (the caller refuses such a row rather than change it)
        self.keeps_nan = conn.dialect.name != "sqlite"
        pg = conn.dialect.name == "postgresql"
        values: dict[str, Any] = {}
        packed = {name for name in self.columns if isinstance(table.c[name].type, CompactJSON)}
        stored = compact_form(conn)
        cols = [table.c[name] for name in self.columns]
        #: the backed-up JSON texts the schema stores compact (0015 or later; 0017 for audit payloads; before it,
        #: these columns are JSON and the text goes in as it is), by position: the dictionary each is written with
        self.compact = {i: int(col.type.version) for i, col in enumerate(cols)
                        if isinstance(col.type, CompactJSON) and stored(col)}
        #: hex digests the schema stores as bytes (0017 or later), by position: converted here, since COPY binds
        #: no column type
        self.hexes = {i: col.type for i, col in enumerate(cols) if isinstance(col.type, HexDigest) and stored(col)}
        for i, name in enumerate(self.columns):
            col = table.c[name]
            if i in self.compact:
                values[name] = bindparam(f"p{i}", type_=LargeBinary)
            elif isinstance(col.type, HexDigest) and i not in self.hexes:
                values[name] = bindparam(f"p{i}", type_=String)  # a schema before 0017: the hex text as it is
            elif isinstance(col.type, UUIDKey) and not stored(col):
                values[name] = bindparam(f"p{i}", type_=Uuid())  # before 0018: hex text on SQLite, as it held then
            elif isinstance(col.type, EntityRef) and not stored(col):
                values[name] = bindparam(f"p{i}", type_=String)  # before 0018: the text
            elif isinstance(col.type, UTCDateTime) and not stored(col):
                values[name] = bindparam(f"p{i}", type_=_NaiveUTCText())  # before 0019: text on SQLite
            elif isinstance(col.type, JSON) or name in packed:  # insert the stored text as it is
                p = bindparam(f"p{i}", type_=Text)
                values[name] = cast(p, JSON) if pg else p
            else:
                values[name] = bindparam(f"p{i}", type_=col.type)
        self.stmt = insert(table).values(values)

    def insert(self, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if self.compact or self.hexes:
            rows = [self._compacted(r) for r in rows]
        if self.conn.dialect.name == "postgresql" and self.conn.dialect.driver == "psycopg":
            self._copy(rows)
        else:
            self.conn.execute(self.stmt, [{f"p{i}": v for i, v in enumerate(r)} for r in rows])

    def _compacted(self, row: Sequence[Any]) -> tuple[Any, ...]:
        out = list(row)
        for i, version in self.compact.items():
            if out[i] is not None:
                out[i] = compact.dumps(json.loads(out[i]), version)
        for i, hex_type in self.hexes.items():
            if isinstance(out[i], str):
                out[i] = hex_type.process_bind_param(out[i], None)
        return tuple(out)

    def _copy(self, rows: Sequence[Sequence[Any]]) -> None:
        """PostgreSQL COPY (several times faster than INSERTs), inside the caller's transaction.

        Values are already what the column types bind (aware UTC datetimes, UUIDs, JSON text)."""
        from psycopg import sql

        raw = self.conn.connection.driver_connection
        assert raw is not None  # noqa: S101 - an open SQLAlchemy connection always has one
        stmt = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(self.table.name), sql.SQL(", ").join(sql.Identifier(c) for c in self.columns))
        with raw.cursor() as cur, cur.copy(stmt) as copy:
            for r in rows:
                copy.write_row(r)

    def reset_sequences(self) -> None:
        """PostgreSQL: move each serial/identity sequence past the explicit ids just inserted."""
        if self.conn.dialect.name != "postgresql":
            return  # SQLite's rowid continues after the largest key by itself
        for col in self.table.primary_key.columns:
            seq = self.conn.execute(text("SELECT pg_get_serial_sequence(:t, :c)"),
                                    {"t": self.table.name, "c": col.name}).scalar()
            if not seq:
                continue
            top = self.conn.execute(select(func.max(col))).scalar()
            self.conn.execute(text("SELECT setval(:s, :v, :called)"),
                              {"s": seq, "v": top if top is not None else 1, "called": top is not None})


def verify_audit_chain(conn: Connection) -> ChainReport:
    """The audit chain as :meth:`AuditService.verify` checks it, inside the caller's (restore) transaction."""
    with Session(bind=conn) as s:
        repo = AuditRepository(s)
        anchors = {r.payload.get("anchor") for r in repo.search(AuditFilter(action=ARCHIVED), limit=10_000)}
        return repo.verify({a for a in anchors if isinstance(a, str)})


# ------------------------------------------------------------------------------------------ schema revision
def _alembic(db: Database | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if db is not None:
        cfg.attributes["connection_engine"] = db.engine
    return cfg


@cache
def _scripts() -> ScriptDirectory:
    """The migrations of this version of the code (read once: loading them imports every revision's file, ~0.1 s,
    and a backup asks about every compact column)."""
    return ScriptDirectory.from_config(_alembic())


def known_revision(rev: str) -> bool:
    """``rev`` is a migration of this version of the code."""
    try:
        return _scripts().get_revision(rev) is not None
    except CommandError:
        return False


@cache
def _up_to(rev: str) -> frozenset[str]:
    """``rev`` and every revision before it."""
    return frozenset(r.revision for r in _scripts().iterate_revisions(rev, "base"))


def comes_before(current: str, rev: str) -> bool:
    """True when ``current`` comes before ``rev`` in the migration history (so upgrading reaches it)."""
    return current in _up_to(rev)


def migrate_to(db: Database, rev: str) -> bool:
    """Bring ``db``'s schema to revision ``rev``, down or up (downgrade only ever an empty database: it
    loses what the dropped columns held). False when it already was at ``rev``."""
    current = db.current_revision()
    if current == rev:
        return False
    if current is not None and not comes_before(current, rev):
        command.downgrade(_alembic(db), rev)
    else:
        command.upgrade(_alembic(db), rev)
    return True


# ------------------------------------------------------------------------------------------ scratch databases
@contextmanager
def throwaway_database(url: str) -> Iterator[tuple[str, str]]:
    """A new, empty PostgreSQL database on ``url``'s server named after ``url``'s database plus a random
    suffix, dropped afterwards; yields its URL (with the password) and its name. Raises
    :class:`BackupError` when ``url`` is not a postgresql URL naming a plain database."""
    parsed = sa.make_url(url)
    if (not parsed.drivername.startswith("postgresql") or not parsed.database
            or not DATABASE_NAME.match(parsed.database)):
        raise BackupError(BAD_SCRATCH_URL.format(url=parsed.render_as_string(hide_password=True)))
    name = f"{parsed.database[:50]}_{secrets.token_hex(4)}"
    admin = sa.create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        create_database(admin, name)
        try:
            yield parsed.set(database=name).render_as_string(hide_password=False), name
        finally:
            drop_database(admin, name)
    finally:
        admin.dispose()


def create_database(admin: Engine, name: str) -> None:
    """CREATE DATABASE on PostgreSQL (``admin`` in AUTOCOMMIT)."""
    _identifier(name)
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))


def drop_database(admin: Engine, name: str) -> None:
    """End the sessions of database ``name`` and drop it (only for databases this process created)."""
    _identifier(name)
    with admin.connect() as c:
        c.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name})
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))


DATABASE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _identifier(name: str) -> None:
    if not DATABASE_NAME.match(name):
        raise ValueError(f"not a plain database name: {name!r}")
