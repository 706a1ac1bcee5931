"""book_months: the writes drift reads (applications, predictions) in shards of their own

Drift kept a month's token in the fingerprint of each week and month it stored, and the token changes with
any write to the month's rows: a decision, an outcome import, an explanation. So after a day's outcome import
(every month of the book gets outcomes) the next monitor run read every application's features again,
though drift reads only the applications' features and the predictions' deny reasons: on the default
history, the last monitor run of ``make run`` spent a third of its time there.

Writes of applications and predictions now go to shard 256 of their month (SQLite) or 256 + the backend's
process id mod 256 (PostgreSQL); the other tables' to the shards below 256 as before. A month's token (all
its shards: :func:`backend.monitoring.book_state.month_tokens`) still changes with every write; its scored
token (:func:`~backend.monitoring.book_state.scored_month_tokens`, shards from 256) only with the rows drift
reads. Existing months get their scored shard with a new token here, so every stored drift period is read
once more after the upgrade (its fingerprint names the new tokens) and then only when its rows change.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07
"""
from alembic import op

from backend.platform.db import book_month_triggers as triggers

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None

SCORED, SHARD = triggers.SCORED, triggers.SCORED_SHARD

PG_TOUCH_SCORED = f"""
CREATE OR REPLACE FUNCTION book_months_touch_scored(at timestamptz) RETURNS void LANGUAGE sql AS $$
  INSERT INTO book_months (month, shard, token)
  VALUES (to_char(at AT TIME ZONE 'UTC', 'YYYY-MM'), {SHARD} + pg_backend_pid() % 256,
          floor(random() * 1099511627776)::bigint)
  ON CONFLICT (month, shard) DO UPDATE SET token = EXCLUDED.token
    WHERE book_months.xmin <> pg_current_xact_id()::xid
$$"""

PG_TRIGGER_FN = """
CREATE OR REPLACE FUNCTION book_months_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'INSERT' THEN PERFORM {touch}(a.applied_at) {old}; END IF;
  IF TG_OP <> 'DELETE' THEN PERFORM {touch}(a.applied_at) {new}; END IF;
  RETURN NULL;
END $$"""


def _pg_source(table: str, row: str) -> str:  # as migration 0016 wrote them
    if table == "applications":
        return f"FROM (SELECT {row}.applied_at, {row}.id) a"
    return f"FROM applications a WHERE a.id = {row}.application_id"


def _pg_triggers(touch: str) -> None:
    for table in SCORED:
        op.execute(PG_TRIGGER_FN.format(table=table, touch=touch, old=_pg_source(table, "OLD"),
                                        new=_pg_source(table, "NEW")))


def _sqlite_triggers(scored_shard: int) -> None:
    for statement in triggers.drop_statements():
        op.execute(statement)
    for statement in triggers.create_statements(triggers.MONTH_INTEGER, scored_shard):
        op.execute(statement)


def upgrade() -> None:
    pg = op.get_bind().dialect.name == "postgresql"
    if pg:
        op.execute(PG_TOUCH_SCORED)
        _pg_triggers("book_months_touch_scored")
        month = "to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM')"
        token = "floor(random() * 1099511627776)::bigint"
    else:
        _sqlite_triggers(SHARD)
        month = triggers.MONTH_INTEGER.format(c="applied_at")
        token = triggers.TOKEN_SQLITE
    # re-runnable (an interrupted upgrade runs again): a month that has its shard keeps it ("WHERE true": SQLite's
    # parser needs it before ON CONFLICT after a SELECT)
    op.execute(f"INSERT INTO book_months (month, shard, token) SELECT DISTINCT {month}, {SHARD}, 0 "  # noqa: S608
               "FROM applications WHERE true ON CONFLICT (month, shard) DO NOTHING")
    op.execute(f"UPDATE book_months SET token = {token} WHERE shard >= {SHARD} AND token = 0")  # noqa: S608


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _pg_triggers("book_months_touch")
        op.execute("DROP FUNCTION IF EXISTS book_months_touch_scored(timestamptz)")
    else:
        _sqlite_triggers(0)
    op.execute(f"DELETE FROM book_months WHERE shard >= {SHARD}")  # noqa: S608 - (every month's token changes)
