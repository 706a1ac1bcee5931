"""book_months on PostgreSQL: a month's token changes once per transaction, not once per row

Every insert, update or delete of a book row calls ``book_months_touch`` (migration 0016), which sets the
month's token (of this connection's shard) to a new random value. Within one transaction that is the same
row updated again and again: PostgreSQL keeps every version of it until the transaction ends, and each
update first walks the versions before it, so a transaction that writes n rows of one month did O(n^2)
work. A chunk of a recorded batch file (16,384 applications and their predictions: 32,768 touches) spent
seconds on it: 20,000 touches in one transaction took 3.7 s here, and 0.59 s when only the first touch of
the transaction sets a new token (measured on this machine's PostgreSQL 15, `psql` loop of
``SELECT book_months_touch(...)`` in one transaction).

Only the first touch in a transaction is needed: nobody outside sees the token before the commit, and after
it the token differs from the one before the transaction either way. A row this transaction already
wrote has this transaction's id as ``xmin`` (a savepoint's rows have the savepoint's id: they are touched
again, which is correct and only slower), so the update is skipped for it. SQLite updates its row in place
and is left as it is. Needs PostgreSQL 13 or later (``pg_current_xact_id``).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07
"""
from alembic import op

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None

TOUCH = """
CREATE OR REPLACE FUNCTION book_months_touch(at timestamptz) RETURNS void LANGUAGE sql AS $$
  INSERT INTO book_months (month, shard, token)
  VALUES (to_char(at AT TIME ZONE 'UTC', 'YYYY-MM'), pg_backend_pid() % 256, floor(random() * 1099511627776)::bigint)
  ON CONFLICT (month, shard) DO UPDATE SET token = EXCLUDED.token{guard}
$$"""
ONCE = " WHERE book_months.xmin <> pg_current_xact_id()::xid"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(TOUCH.format(guard=ONCE))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(TOUCH.format(guard=""))
