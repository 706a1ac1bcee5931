"""verdict_acceptances: a named person's written acceptance of an adverse difference between the arms;
an index on applications.source

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06

The phase verdict blocks on a significant adverse difference in approval, default or fairness between the
AI and control arms unless a named person accepts it with a reason; each acceptance is a row here (and an
audit row written in the same transaction).

``ix_applications_source``: the "simulated data" banner every page shows counts the simulated applications;
with the index that count reads the index, not the whole table (bench/simulated_banner.py).
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'verdict_acceptances',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('phase', sa.String(length=32), nullable=False),
        sa.Column('metric', sa.String(length=32), nullable=False),
        sa.Column('finding', sa.Text(), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('accepted_by', sa.String(length=64), nullable=False),
        sa.Column('role', sa.String(length=32), nullable=False),
        sa.Column('accepted_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_verdict_acceptances')),
    )
    op.create_index(op.f('ix_verdict_acceptances_phase'), 'verdict_acceptances', ['phase'], unique=False)
    op.create_index('ix_applications_source', 'applications', ['source'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_applications_source', table_name='applications')
    op.drop_index(op.f('ix_verdict_acceptances_phase'), table_name='verdict_acceptances')
    op.drop_table('verdict_acceptances')
