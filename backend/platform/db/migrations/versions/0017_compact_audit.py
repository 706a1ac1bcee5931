"""audit payloads stored as compact JSON, audit hashes and the applicant blind index as bytes; three indexes dropped

Issue 21 (compact rows) and issue 20 (the default history under 400 MB). ``audit_log.payload`` held 359 bytes
of JSON text per row on the default history (260,000 rows, 2.2 per application); stored with
backend/platform/db/compact.py and its audit dictionary (header 2) it is ~131. The value does not change, so
neither do the hashes: ``payload_hash`` is over the canonical JSON of the value, whatever the stored bytes.

The three hashes (``payload_hash``, ``prev_hash``, ``row_hash``: 64 hex characters each) are stored as their
32 bytes (backend/platform/db/base.py ``HexDigest``; every reader still sees the same hex text), which halves
the unique index on ``row_hash`` too. So is ``applications.applicant_ref`` (the applicant id's blind index,
HMAC-SHA256 hex since 0007). On PostgreSQL they become ``bytea`` (``decode(.., 'hex')``; a value that is
not lowercase hex stops the upgrade with its seq, since it could not read back the same); SQLite rewrites the
rows and keeps such a value as the text it is.

The table is append-only (triggers from 0001 refuse UPDATE): the rewrite lifts the UPDATE trigger for its own
transaction and puts it back before it ends (PostgreSQL: the column becomes ``bytea``; the trigger is disabled
and enabled again). A value already compact is left alone, so an interrupted upgrade can run again. SQLite keeps
the freed pages for new rows (``VACUUM`` gives them back to the file system).

Dropped: ``ix_applications_applied_at`` (``ix_applications_applied_arm`` starts with ``applied_at``),
``ix_decisions_application_id`` (``ix_decisions_app_status`` starts with ``application_id``) and
``ix_outcomes_batch_id`` (no query looks outcomes up by their import batch): ~16 MB on the default history.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""
import base64
import re

from alembic import op
import sqlalchemy as sa

from backend.platform.db import compact

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

BATCH = 5_000
HASHES = ("payload_hash", "prev_hash", "row_hash")
_HEX = re.compile(r"(?:[0-9a-f]{2})*")
AUDIT_BLOCKED = "audit_log is append-only"  # (0001's message)
REDUNDANT = (("applications", "ix_applications_applied_at", "applied_at"),
             ("decisions", "ix_decisions_application_id", "application_id"),
             ("outcomes", "ix_outcomes_batch_id", "batch_id"))  # (no query looks outcomes up by batch)


def _recode(encoders: dict, table: str = "audit_log", key: str = "seq", key_type=sa.BigInteger()) -> None:
    """Rewrite the rows whose values an encoder changes (an encoder returns None for a value to keep), BATCH rows
    at a time in ``key`` order; ``encoders``: column -> encoder."""
    conn = op.get_bind()
    cols = list(encoders)
    t = sa.table(table, sa.column(key, key_type), *[sa.column(c) for c in cols])
    after = None
    while True:
        q = sa.select(t.c[key], *[t.c[c] for c in cols]).order_by(t.c[key]).limit(BATCH)
        rows = conn.execute(q if after is None else q.where(t.c[key] > after)).all()
        if not rows:
            return
        changed = []
        for k, *raws in rows:
            new = [None if raw is None else encoders[c](raw) for c, raw in zip(cols, raws)]
            if any(v is not None for v in new):
                changed.append({"k": k, **{f"v{i}": raw if v is None else v
                                           for i, (v, raw) in enumerate(zip(new, raws))}})
        if changed:
            conn.execute(t.update().where(t.c[key] == sa.bindparam("k"))
                         .values({c: sa.bindparam(f"v{i}") for i, c in enumerate(cols)}), changed)
        after = rows[-1][0]


def _unblocked(pg: bool, rewrite) -> None:
    """``rewrite()`` with the append-only UPDATE trigger lifted, put back in the same transaction."""
    if pg:
        op.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update")
        rewrite()
        op.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        rewrite()
        op.execute(f"CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
                   f"BEGIN SELECT RAISE(ABORT, '{AUDIT_BLOCKED}'); END")


def _pg_type(column: str, table: str = "audit_log") -> str:
    return op.get_bind().execute(sa.text(
        "SELECT data_type FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = :t AND column_name = :c"), {"t": table, "c": column}).scalar_one()


def _compact(raw):
    return compact.dumps(compact.loads(raw), compact.AUDIT) if raw and compact.is_plain(raw) else None


def _plain(raw):
    return None if compact.is_plain(raw) else compact.json_text(raw).decode("utf-8")


def _to_bytes(raw):
    """Hex text -> its bytes; anything else (bytes already, or text that is not lowercase hex, which the product
    never wrote and which SQLite keeps as text, read back unchanged) is left alone."""
    return bytes.fromhex(raw) if isinstance(raw, str) and _HEX.fullmatch(raw) else None


def _to_hex(raw):
    return None if isinstance(raw, str) else bytes(raw).hex()


def _pg_hex_check() -> None:
    bad = op.get_bind().execute(sa.text(
        "SELECT seq FROM audit_log WHERE NOT (payload_hash ~ '^([0-9a-f]{2})*$' AND prev_hash ~ '^([0-9a-f]{2})*$' "
        "AND row_hash ~ '^([0-9a-f]{2})*$') ORDER BY seq LIMIT 1")).scalar()
    if bad is not None:
        raise RuntimeError(f"audit_log row {bad} holds a hash that is not lowercase hex (the product never writes "
                           "one): run `creditrisk audit verify` and investigate before upgrading")


def upgrade() -> None:
    pg = op.get_bind().dialect.name == "postgresql"
    for table, name, _column in REDUNDANT:
        op.execute(f"DROP INDEX IF EXISTS {name}")
    if pg:
        if _pg_type("payload") != "bytea":  # (not again, when an interrupted upgrade runs again)
            op.execute("ALTER TABLE audit_log ALTER COLUMN payload TYPE bytea USING convert_to(payload::text, 'UTF8')")
        if _pg_type("row_hash") != "bytea":  # DDL: the append-only triggers are for UPDATE, DELETE, TRUNCATE
            _pg_hex_check()
            op.execute("ALTER TABLE audit_log " + ", ".join(
                f"ALTER COLUMN {c} TYPE bytea USING decode({c}, 'hex')" for c in HASHES))
        _unblocked(pg, lambda: _recode({"payload": _compact}))
        if _pg_type("applicant_ref", "applications") != "bytea":
            op.execute("ALTER TABLE applications ALTER COLUMN applicant_ref TYPE bytea USING decode(applicant_ref, 'hex')")
    else:
        _unblocked(pg, lambda: _recode({"payload": _compact, **{c: _to_bytes for c in HASHES}}))
        _recode({"applicant_ref": _to_bytes}, "applications", "id", sa.String())


def downgrade() -> None:
    pg = op.get_bind().dialect.name == "postgresql"
    if pg:  # back to text first (compact bytes are not UTF-8), then JSON text in place of compact values
        op.execute("ALTER TABLE audit_log " + ", ".join(
            f"ALTER COLUMN {c} TYPE varchar(64) USING encode({c}, 'hex')" for c in HASHES))
        op.execute("ALTER TABLE audit_log ALTER COLUMN payload TYPE text USING encode(payload, 'base64')")
        _unblocked(pg, lambda: _recode({"payload": lambda b64: compact.json_text(base64.b64decode(b64)).decode("utf-8")}))
        op.execute("ALTER TABLE audit_log ALTER COLUMN payload TYPE json USING payload::json")
        op.execute("ALTER TABLE applications ALTER COLUMN applicant_ref TYPE varchar(64) USING encode(applicant_ref, 'hex')")
    else:
        _unblocked(pg, lambda: _recode({"payload": _plain, **{c: _to_hex for c in HASHES}}))
        _recode({"applicant_ref": _to_hex}, "applications", "id", sa.String())
    for table, name, column in REDUNDANT:
        op.create_index(name, table, [column], unique=False)
