"""UTC times stored as integer microseconds since 1970 on SQLite

Issue 20 (the default history under 400 MB) and issue 21 (compact rows). SQLAlchemy stores a ``DateTime`` on
SQLite as 26 characters of text (``2026-12-07 05:31:37.123456``); an application carries ~14 of them between its
rows and their indexes (applied, created, scored, decided, observed, imported, audited). As an integer
(backend/platform/db/base.py ``UTCDateTime``: 8 bytes, exact to the microsecond, ordered like the times) that is
~31 MB less on the default history. SQL that computes with times goes through
backend/platform/db/timesql.py; the book-month triggers of 0016 take the month from the integer.
PostgreSQL is unchanged (``timestamptz``).

Every ``DATETIME`` column is rewritten with ``UPDATE``: a text value is parsed as ISO 8601 (naive: UTC) and a
value that does not parse (the product never writes one) is left as it is. ``audit_log`` and ``audit_batch`` are
append-only: their UPDATE triggers are lifted for this transaction and put back before it ends; the audit hashes
are over the time itself, not its stored form, so they do not change. A value already converted is left alone, so an interrupted
upgrade can run again. The book-month triggers are dropped during the rewrite (it would touch every month once
per row) and every month's token changes once afterwards, as a write to it would.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

from backend.platform.db import book_month_triggers as triggers
from backend.platform.db.base import sqlite_function
from backend.platform.db.sqlite_rewrite import columns_declared, updates_allowed

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
US = timedelta(microseconds=1)
TOKEN_SQLITE = triggers.TOKEN_SQLITE


def _micros(value):
    """ISO 8601 text -> integer microseconds since 1970 UTC (naive text is UTC); anything else as it is."""
    if not isinstance(value, str):
        return value
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return value
    return ((t if t.tzinfo else t.replace(tzinfo=UTC)) - EPOCH) // US


def _text(value):
    """Integer microseconds -> the text SQLAlchemy stored before 0019; anything else as it is."""
    if not isinstance(value, int):
        return value
    return (EPOCH + timedelta(microseconds=value)).strftime("%Y-%m-%d %H:%M:%S.%f")


def _rewrite(fn, name: str, kind: str, month: str) -> None:
    conn = op.get_bind()
    sqlite_function(conn, name, fn)
    has_months = sa.inspect(conn).has_table("book_months")
    for statement in triggers.drop_statements():
        op.execute(statement)
    with updates_allowed(conn, op.execute):
        for table, cols in columns_declared(conn, "DATETIME").items():
            for c in cols:  # (names from the schema itself, not from input)
                op.execute(f"UPDATE {table} SET {c} = {name}({c}) WHERE typeof({c}) = '{kind}'")  # noqa: S608
    if has_months:
        for statement in triggers.create_statements(month):
            op.execute(statement)
        op.execute(f"UPDATE book_months SET token = {TOKEN_SQLITE}")


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return  # PostgreSQL's timestamptz is 8 bytes already
    _rewrite(_micros, "creditrisk_time_micros", "text", triggers.MONTH_INTEGER)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _rewrite(_text, "creditrisk_time_text", "integer", triggers.MONTH_TEXT)
