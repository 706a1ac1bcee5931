"""external application ids unique within their owner: a machine client's are stored as ``<id>@<client_id>``

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

The column widens to hold the suffix (PostgreSQL only: SQLite does not enforce VARCHAR lengths, and
altering the type there would rebuild a table that predictions and decisions reference). Existing rows
keep their ids: they belong to the organisation, as before.
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

DOWNGRADE_REFUSED = ("applications hold {n} external ids longer than 64 characters; they do not fit the "
                     "pre-0008 column. Restore a backup taken before 0008 instead of downgrading.")


def upgrade() -> None:
    if op.get_bind().dialect.name != 'sqlite':
        op.alter_column('applications', 'external_id', existing_type=sa.String(length=64),
                        type_=sa.String(length=96), existing_nullable=True)


def downgrade() -> None:
    n = op.get_bind().execute(sa.text("SELECT count(*) FROM applications WHERE length(external_id) > 64")).scalar()
    if n:
        raise RuntimeError(DOWNGRADE_REFUSED.format(n=n))
    if op.get_bind().dialect.name != 'sqlite':
        op.alter_column('applications', 'external_id', existing_type=sa.String(length=96),
                        type_=sa.String(length=64), existing_nullable=True)
