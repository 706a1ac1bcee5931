"""book vectors: features and attributions without their keys; audit_log.row_hash no longer unique-indexed

Issue 21 item 4 (at most 3 kB per application on the default history; 3.27 kB at 0019).

* ``applications.features`` and ``predictions.attributions`` of an application scored with the catalogue's 94
  features (every one the product's own model scores) are stored without their keys: header 3 (the values as a
  JSON list) or header 4 (floats with few decimals as integers, only the non-zero ones), see
  backend/platform/db/compact.py. Every reader gets the same dict, key order included. Rows are rewritten in
  batches; a value already stored so, or one that is not a catalogue vector, is left alone, so an interrupted
  upgrade can run again. The downgrade writes them back as 0019 did (header 1). The book-month triggers are off
  for the rewrite: no value changes, so no month's token does and no cached figure is recomputed for it.
* The unique index on ``audit_log.row_hash`` (97 bytes per application, 12 MB on the default history) is dropped:
  no query looks a row up by its hash, and it could only ever catch a duplicate row hash, which the unique
  ``id`` already rules out (a row's hash covers its id). Verification recomputes every hash and proves each row's
  place from the sealed batches, as before. PostgreSQL drops the constraint; SQLite cannot drop a table
  constraint, so ``audit_log`` is rebuilt as it was without it (every row, seq, index and append-only trigger
  kept, inside this migration's transaction; the table's old pages become free pages that the book reuses).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07
"""
import re

from alembic import op
import sqlalchemy as sa

from backend.platform.db import book_month_triggers as triggers
from backend.platform.db import compact

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

COLUMNS = (("applications", "features"), ("predictions", "attributions"))
BATCH = 5_000
CONSTRAINT = "uq_audit_log_row_hash"
_IN_TABLE = re.compile(r",\s*CONSTRAINT uq_audit_log_row_hash UNIQUE \(row_hash\)")
_NAME = re.compile(r'^CREATE TABLE\s+("?)audit_log\1(?=\s*\()')


def _recode(table: str, column: str, encode) -> None:
    """Rewrite the values ``encode`` changes (it returns None for a value to keep), BATCH rows at a time in id
    order. Both columns untyped: the driver's own values (UUID bytes on SQLite since 0018)."""
    conn = op.get_bind()
    t = sa.table(table, sa.column("id"), sa.column(column))
    after = None
    while True:
        q = sa.select(t.c.id, t.c[column]).where(t.c[column].is_not(None)).order_by(t.c.id).limit(BATCH)
        rows = conn.execute(q if after is None else q.where(t.c.id > after)).all()
        if not rows:
            return
        changed = [{"k": i, "v": new} for i, raw in rows if (new := encode(raw)) is not None]
        if changed:
            conn.execute(t.update().where(t.c.id == sa.bindparam("k")).values({column: sa.bindparam("v")}), changed)
        after = rows[-1][0]


def _vector(raw):
    if not compact.is_plain(raw) and bytes(raw[:1])[0] in compact.VECTORS:
        return None
    new = compact.dumps(compact.loads(raw))
    return new if new[0] in compact.VECTORS else None


def _general(raw):
    if compact.is_plain(raw) or bytes(raw[:1])[0] not in compact.VECTORS:
        return None
    return compact.dumps(compact.loads(raw), vectors=False)


def _sqlite_audit_table(unique: bool) -> None:
    """Rebuild ``audit_log`` with or without the row-hash constraint (nothing when it already is so)."""
    conn = op.get_bind()
    sql = conn.execute(sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'audit_log'")).scalar_one()
    if bool(_IN_TABLE.search(sql)) == unique:
        return
    if unique:
        head, _, _ = sql.rstrip().rpartition(")")
        sql = f"{head}, \n\tCONSTRAINT {CONSTRAINT} UNIQUE (row_hash)\n)"
    else:
        sql = _IN_TABLE.sub("", sql)
    extras = conn.execute(sa.text("SELECT sql FROM sqlite_master WHERE tbl_name = 'audit_log' "
                                  "AND type IN ('index', 'trigger') AND sql IS NOT NULL ORDER BY type, name")).scalars().all()
    op.execute(_NAME.sub("CREATE TABLE audit_log_0020", sql, count=1))  # (a renamed table's name is quoted)
    op.execute("INSERT INTO audit_log_0020 SELECT * FROM audit_log")
    op.execute("DROP TABLE audit_log")  # (its triggers go with it; the implicit delete fires none)
    op.execute("ALTER TABLE audit_log_0020 RENAME TO audit_log")
    for statement in extras:
        op.execute(statement)


def _rewrite(encode) -> None:
    """``encode`` over both columns with the book-month triggers (0016) off: the values do not change, so no
    month's token does (every figure cached on them stays valid; the triggers would also touch a month per row)."""
    pg = op.get_bind().dialect.name == "postgresql"
    tables = sorted({t for t, _ in COLUMNS})
    for statement in ([f"ALTER TABLE {t} DISABLE TRIGGER book_months_{t}" for t in tables] if pg
                      else triggers.drop_statements()):
        op.execute(statement)
    for table, column in COLUMNS:
        _recode(table, column, encode)
    for statement in ([f"ALTER TABLE {t} ENABLE TRIGGER book_months_{t}" for t in tables] if pg
                      else triggers.create_statements(triggers.MONTH_INTEGER)):
        op.execute(statement)


def upgrade() -> None:
    _rewrite(_vector)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE audit_log DROP CONSTRAINT IF EXISTS {CONSTRAINT}")
    else:
        _sqlite_audit_table(unique=False)


def downgrade() -> None:
    _rewrite(_general)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE audit_log DROP CONSTRAINT IF EXISTS {CONSTRAINT}")
        op.execute(f"ALTER TABLE audit_log ADD CONSTRAINT {CONSTRAINT} UNIQUE (row_hash)")
    else:
        _sqlite_audit_table(unique=True)
