"""What migrations that rewrite stored values on SQLite share (0018: UUIDs as bytes, 0019: times as integers):
finding the columns by their declared type, and lifting the append-only tables' UPDATE triggers (0001, 0009) for
the rewrite only, inside the migration's transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

APPEND_ONLY = ("audit_log", "audit_batch")  # UPDATE refused by a trigger raising "<table> is append-only"


def columns_declared(conn: Any, declared: str) -> dict[str, list[str]]:
    """Table -> its columns whose declared SQL type is ``declared`` (e.g. ``CHAR(32)``, ``DATETIME``)."""
    insp = sa.inspect(conn)
    out: dict[str, list[str]] = {}
    for table in insp.get_table_names():
        cols = [c["name"] for c in insp.get_columns(table)
                if str(c["type"]).replace(" ", "").upper() == declared]
        if cols:
            out[table] = cols
    return out


@contextmanager
def updates_allowed(conn: Any, execute: Callable[[str], Any]) -> Iterator[None]:
    """The append-only tables' UPDATE triggers dropped for the block and created again after it (``execute``: the
    migration's ``op.execute``, so both happen in its transaction)."""
    tables = [t for t in APPEND_ONLY if sa.inspect(conn).has_table(t)]
    for table in tables:
        execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
    yield
    for table in tables:
        execute(f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END")
