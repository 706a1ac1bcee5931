"""UUID keys and references stored as their 16 bytes on SQLite, and the audit log's UUID entity ids

Issue 20 (the default history under 400 MB) and issue 21 (compact rows). SQLAlchemy's ``Uuid`` keeps a UUID as
32 hex characters on SQLite; every application carries ~23 of them between its rows (applications,
predictions, decisions, outcomes, audit entries) and their indexes (primary keys, references). As 16 bytes
(backend/platform/db/base.py ``UUIDKey``: readers still see the same UUIDs) that is ~45 MB less on the default
history. So is the audit log's ``entity_id`` where it is a UUID's canonical text (``EntityRef``: 36 characters
-> 16 bytes in the row and in ``ix_audit_log_entity``, ~10 MB; any other entity id stays text, and every reader
gets the same text back, so the row hashes over it hold). PostgreSQL is unchanged: its ``uuid`` type is 16 bytes
already, and entity ids stay text there.

Every ``CHAR(32)`` column (what ``Uuid`` creates on SQLite, and the only columns this schema declares so) is
rewritten with ``UPDATE``: a value that is not 32 hex digits (the product never writes one) is left as the text it
is and reads back unchanged where it is a UUID's text. Foreign keys are checked when the transaction commits
(``defer_foreign_keys``); a temporary index on ``decisions.prediction_id`` keeps those checks from scanning the
decisions once per prediction. ``audit_log`` is append-only: its UPDATE trigger is lifted for this transaction
and put back before it ends. A value already converted is left alone, so an interrupted upgrade can run again.
SQLite keeps the freed pages for new rows (``VACUUM`` gives them back to the file system).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""
import re

import sqlalchemy as sa
from alembic import op

from backend.platform.db.base import entity_bytes, entity_text, sqlite_function
from backend.platform.db.sqlite_rewrite import columns_declared, updates_allowed

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

_HEX32 = re.compile(r"[0-9a-fA-F]{32}")
_TEMP_INDEX = "ix_tmp_0018_decisions_prediction_id"


def _uuid_bytes(value):
    """32 hex digits -> their 16 bytes; anything else as it is."""
    return bytes.fromhex(value) if isinstance(value, str) and _HEX32.fullmatch(value) else value


def _rewrite(expr: str, kind: str, entity: str) -> None:
    """Every UUID column's values of SQL type ``kind`` replaced by ``expr`` (``{c}``: the column); the audit log's
    ``entity_id`` by the function ``entity``."""
    conn = op.get_bind()
    op.execute("PRAGMA defer_foreign_keys = ON")
    has_decisions = sa.inspect(conn).has_table("decisions")
    if has_decisions:
        op.execute(f"CREATE INDEX IF NOT EXISTS {_TEMP_INDEX} ON decisions (prediction_id)")
    with updates_allowed(conn, op.execute):
        for table, cols in columns_declared(conn, "CHAR(32)").items():
            for c in cols:
                # (names from the schema itself, not from input)
                op.execute(f"UPDATE {table} SET {c} = {expr.format(c=c)} WHERE typeof({c}) = '{kind}'")  # noqa: S608
        if sa.inspect(conn).has_table("audit_log"):
            op.execute(f"UPDATE audit_log SET entity_id = {entity}(entity_id) WHERE typeof(entity_id) = '{kind}'")
    if has_decisions:
        op.execute(f"DROP INDEX IF EXISTS {_TEMP_INDEX}")


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "sqlite":
        return  # PostgreSQL's uuid is 16 bytes already
    sqlite_function(conn, "creditrisk_uuid_bytes", _uuid_bytes)
    sqlite_function(conn, "creditrisk_entity_bytes", entity_bytes)
    _rewrite("creditrisk_uuid_bytes({c})", "text", "creditrisk_entity_bytes")


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "sqlite":
        return
    sqlite_function(conn, "creditrisk_entity_text", entity_text)
    _rewrite("lower(hex({c}))", "blob", "creditrisk_entity_text")
