"""book: features, attributions and reasons stored as compact JSON (issue 21: a sixth of the bytes)

The values do not change (backend/platform/db/compact.py round-trips any JSON); only their bytes. On
PostgreSQL the three columns become ``bytea`` (their text, then compacted); SQLite stores a BLOB in the
declared JSON column as it is, so only the rows are rewritten. Rows are compacted in batches by id; a
value already compact is left alone, so an interrupted upgrade can run again.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""
import base64

from alembic import op
import sqlalchemy as sa

from backend.platform.db import compact

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

COLUMNS = (("applications", "features"), ("predictions", "attributions"), ("predictions", "reasons"))
BATCH = 5_000


def _recode(table: str, column: str, encode) -> None:
    """Rewrite the values ``encode`` changes (it returns None for a value to keep), BATCH rows at a time.
    The column is untyped here: the driver's own str / bytes in both directions."""
    conn = op.get_bind()
    t = sa.table(table, sa.column("id", sa.Uuid()), sa.column(column))
    after = None
    while True:
        q = sa.select(t.c.id, t.c[column]).where(t.c[column].is_not(None)).order_by(t.c.id).limit(BATCH)
        if after is not None:
            q = q.where(t.c.id > after)
        rows = conn.execute(q).all()
        if not rows:
            return
        changed = [{"k": i, "v": new} for i, raw in rows if (new := encode(raw)) is not None]
        if changed:
            conn.execute(t.update().where(t.c.id == sa.bindparam("k")).values({column: sa.bindparam("v")}), changed)
        after = rows[-1][0]


def _pg_type(table: str, column: str) -> str:
    return op.get_bind().execute(sa.text(
        "SELECT data_type FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = :t AND column_name = :c"), {"t": table, "c": column}).scalar_one()


def _compact(raw):
    return compact.dumps(compact.loads(raw)) if raw and compact.is_plain(raw) else None


def _plain(raw):
    return None if compact.is_plain(raw) else compact.json_text(raw).decode("utf-8")


def upgrade() -> None:
    pg = op.get_bind().dialect.name == "postgresql"
    for table, column in COLUMNS:
        if pg and _pg_type(table, column) != "bytea":  # (not again, when an interrupted upgrade runs again)
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE bytea USING convert_to({column}::text, 'UTF8')")
        _recode(table, column, _compact)


def downgrade() -> None:
    pg = op.get_bind().dialect.name == "postgresql"
    for table, column in COLUMNS:
        if pg:  # back to text first (compact bytes are not UTF-8), then JSON text in place of compact values
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE text USING encode({column}, 'base64')")
            _recode(table, column, lambda b64: compact.json_text(base64.b64decode(b64)).decode("utf-8"))
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE json USING {column}::json")
        else:
            _recode(table, column, _plain)
