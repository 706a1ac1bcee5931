"""personal data: encrypted applicant id (wider column), its blind index and mask, encrypted direct PII

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24

Existing rows keep their plaintext applicant id (recognised by the missing ``pii1:`` prefix) until
``creditrisk pii rotate`` encrypts them in batches. The index on the applicant id goes: a token is
random, lookups use ``applicant_ref`` (the blind index).
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

DOWNGRADE_REFUSED = ("applications hold {n} encrypted applicant ids; they do not fit the pre-0007 column. "
                     "Restore a backup taken before 0007 instead of downgrading.")


def upgrade() -> None:
    # SQLite does not enforce VARCHAR lengths (and altering the type would rebuild a table that
    # predictions and decisions reference): only PostgreSQL needs the wider column
    if op.get_bind().dialect.name != 'sqlite':
        op.alter_column('applications', 'applicant_id', existing_type=sa.String(length=64),
                        type_=sa.String(length=255), existing_nullable=False)
    op.drop_index('ix_applications_applicant_id', table_name='applications')
    op.add_column('applications', sa.Column('applicant_ref', sa.String(length=64), nullable=True))
    op.add_column('applications', sa.Column('applicant_mask', sa.String(length=16), nullable=True))
    op.add_column('applications', sa.Column('pii', sa.Text(), nullable=True))
    op.create_index('ix_applications_applicant_ref', 'applications', ['applicant_ref'], unique=False)


def downgrade() -> None:
    n = op.get_bind().execute(sa.text("SELECT count(*) FROM applications WHERE applicant_id LIKE 'pii1:%' "
                                      "OR pii IS NOT NULL")).scalar()
    if n:
        raise RuntimeError(DOWNGRADE_REFUSED.format(n=n))
    op.drop_index('ix_applications_applicant_ref', table_name='applications')
    for column in ('pii', 'applicant_mask', 'applicant_ref'):
        op.drop_column('applications', column)  # SQLite >= 3.35 drops a column in place
    if op.get_bind().dialect.name != 'sqlite':
        op.alter_column('applications', 'applicant_id', existing_type=sa.String(length=255),
                        type_=sa.String(length=64), existing_nullable=False)
    op.create_index('ix_applications_applicant_id', 'applications', ['applicant_id'], unique=False)
