"""applications.bureau_key_factors (the bureau's key-factor codes sent with the score) and
decisions.notice_reasons (the C-1 reasons an officer picked for a denial's notice)

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-06

Both columns are nullable JSON lists: rows written before 0011 have none (a notice then says the bureau
sent no key factors; an officer denial recorded before 0011 has no notice reasons and its notice asks for
them instead of printing the officer's free text).
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('applications') as batch:
        batch.add_column(sa.Column('bureau_key_factors', sa.JSON(), nullable=True))
    with op.batch_alter_table('decisions') as batch:
        batch.add_column(sa.Column('notice_reasons', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('decisions') as batch:
        batch.drop_column('notice_reasons')
    with op.batch_alter_table('applications') as batch:
        batch.drop_column('bureau_key_factors')
