"""book_months: a token per calendar month of the book that every write to that month's rows changes

Monitors (fairness, performance, the phase comparison) keep what they read per month and read a month
again only when its token changed (issue 21: monitors that pay for what is new; issue 20: "Run checks
now" after one new application). The tokens are kept by triggers, in the transaction of the write, on
every insert, update and delete of applications, predictions, decisions, outcomes, explanations and LLM
usage rows (the last two through their prediction):
nothing in the application has to remember to bump them. A token is a random 40-bit integer; a month's
fingerprint is the count and sum of its shards' tokens (so it changes with any token, whatever order
concurrent writers commit in).

On PostgreSQL each connection writes its own shard of a month (its backend process id mod 256): concurrent
writers of the same month do not wait on one another's token row, and two transactions that each touch many
months (an outcome import, a batch) cannot deadlock on them unless their connections share a shard. SQLite has
one writer and one shard. Not in the ORM metadata: the
table is derived (backups leave it out; a restore's inserts fire the triggers and rebuild it).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""
from alembic import op

from backend.platform.db import book_month_triggers as triggers

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

CHILDREN, VIA_PREDICTION, TABLES, OPS = triggers.CHILDREN, triggers.VIA_PREDICTION, triggers.TABLES, triggers.OPS
TOKEN_SQLITE = triggers.TOKEN_SQLITE


def _sqlite_upgrade() -> None:
    for statement in triggers.create_statements(triggers.MONTH_TEXT):  # (the month: applied_at's text, 0016-0018)
        op.execute(statement)
    op.execute("INSERT INTO book_months (month, shard, token) SELECT DISTINCT substr(applied_at, 1, 7), 0, 0 "
               "FROM applications")
    op.execute(f"UPDATE book_months SET token = {TOKEN_SQLITE}")


PG_TOUCH = """
CREATE FUNCTION book_months_touch(at timestamptz) RETURNS void LANGUAGE sql AS $$
  INSERT INTO book_months (month, shard, token)
  VALUES (to_char(at AT TIME ZONE 'UTC', 'YYYY-MM'), pg_backend_pid() % 256, floor(random() * 1099511627776)::bigint)
  ON CONFLICT (month, shard) DO UPDATE SET token = EXCLUDED.token
$$"""

PG_TRIGGER_FN = """
CREATE FUNCTION book_months_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'INSERT' THEN PERFORM book_months_touch(a.applied_at) {old}; END IF;
  IF TG_OP <> 'DELETE' THEN PERFORM book_months_touch(a.applied_at) {new}; END IF;
  RETURN NULL;
END $$"""


def _pg_sources(table: str, row: str) -> str:
    if table == "applications":  # the row itself (AFTER DELETE: gone from the table, so not read from it)
        return f"FROM (SELECT {row}.applied_at, {row}.id) a"
    if table in VIA_PREDICTION:
        return f"FROM predictions p JOIN applications a ON a.id = p.application_id WHERE p.id = {row}.prediction_id"
    return f"FROM applications a WHERE a.id = {row}.application_id"


def _pg_upgrade() -> None:
    op.execute(PG_TOUCH)
    for table in TABLES:
        op.execute(PG_TRIGGER_FN.format(table=table, old=_pg_sources(table, "OLD"), new=_pg_sources(table, "NEW")))
        op.execute(f"CREATE TRIGGER book_months_{table} AFTER INSERT OR UPDATE OR DELETE ON {table} "
                   f"FOR EACH ROW EXECUTE FUNCTION book_months_{table}()")
    op.execute("INSERT INTO book_months (month, shard, token) SELECT DISTINCT to_char(applied_at AT TIME ZONE 'UTC', "
               "'YYYY-MM'), 0, 0 FROM applications")
    op.execute("UPDATE book_months SET token = floor(random() * 1099511627776)::bigint")


def upgrade() -> None:
    op.execute("CREATE TABLE book_months (month VARCHAR(7) NOT NULL, shard SMALLINT NOT NULL, token BIGINT NOT NULL, "
               "CONSTRAINT pk_book_months PRIMARY KEY (month, shard))")
    if op.get_bind().dialect.name == "postgresql":
        _pg_upgrade()
    else:
        _sqlite_upgrade()


def downgrade() -> None:
    pg = op.get_bind().dialect.name == "postgresql"
    for table in TABLES:
        if pg:
            op.execute(f"DROP TRIGGER IF EXISTS book_months_{table} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS book_months_{table}()")
        else:
            for opname in OPS:
                op.execute(f"DROP TRIGGER IF EXISTS book_months_{table}_{opname.lower()}")
    if pg:
        op.execute("DROP FUNCTION IF EXISTS book_months_touch(timestamptz)")
    op.execute("DROP TABLE book_months")
