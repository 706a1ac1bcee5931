"""The SQL of backup and restore: a consistent read snapshot, rows streamed in primary-key order,
bulk inserts, sequence resets. Table-generic: it works from the SQLAlchemy metadata, so a table
added to ``backend/db/tables.py`` is backed up without a change here.

JSON columns are read and written as their stored text (no parse and re-serialise), so a backup
keeps them byte for byte, and SQL NULL stays distinct from a JSON ``null``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    Engine,
    Table,
    Text,
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
from sqlalchemy.sql.elements import ColumnElement

from backend.db.tables import Base


def app_tables() -> list[Table]:
    """Every table of the application, parents before children (foreign-key order)."""
    return list(Base.metadata.sorted_tables)


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


def _raw(col: Column[Any], dialect: str) -> ColumnElement[Any]:
    if isinstance(col.type, JSON):  # the stored text, never parsed
        return cast(col, Text) if dialect == "postgresql" else type_coerce(col, Text)
    return col


def stream_rows(conn: Connection, table: Table, columns: Sequence[str], chunk: int) -> Iterator[Sequence[Any]]:
    """The rows of ``table`` (only ``columns``) in primary-key order, ``chunk`` at a time (server-side cursor)."""
    dialect = conn.dialect.name
    stmt = select(*[_raw(table.c[name], dialect).label(name) for name in columns])
    stmt = stmt.order_by(*table.primary_key.columns)
    result = conn.execute(stmt, execution_options={"stream_results": True, "yield_per": chunk})
    for part in result.partitions(chunk):
        yield [tuple(r) for r in part]


def count_rows(conn: Connection, table: Table) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def first_table_with_rows(conn: Connection, tables: Sequence[Table]) -> str | None:
    """The name of the first existing table holding at least one row (None: the database is empty)."""
    insp = inspect(conn)
    for t in tables:
        if insp.has_table(t.name) and conn.execute(select(literal(1)).select_from(t).limit(1)).first():
            return t.name
    return None


class TableWriter:
    """Bulk inserts of decoded rows (dicts keyed by column name) into one table."""

    def __init__(self, conn: Connection, table: Table, columns: Sequence[str]) -> None:
        self.conn, self.table, self.columns = conn, table, list(columns)
        pg = conn.dialect.name == "postgresql"
        values: dict[str, Any] = {}
        for i, name in enumerate(self.columns):
            col = table.c[name]
            if isinstance(col.type, JSON):  # insert the stored text as it is
                p = bindparam(f"p{i}", type_=Text)
                values[name] = cast(p, JSON) if pg else p
            else:
                values[name] = bindparam(f"p{i}", type_=col.type)
        self.stmt = insert(table).values(values)

    def insert(self, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if self.conn.dialect.name == "postgresql" and self.conn.dialect.driver == "psycopg":
            self._copy(rows)
        else:
            self.conn.execute(self.stmt, [{f"p{i}": v for i, v in enumerate(r)} for r in rows])

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
