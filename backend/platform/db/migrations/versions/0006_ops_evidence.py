"""operations: evidence rows (backups, drills, scans, load tests) and release sign-offs

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ops_evidence',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('summary', sa.String(length=500), nullable=False),
    sa.Column('command', sa.String(length=500), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ops_evidence'))
    )
    with op.batch_alter_table('ops_evidence', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ops_evidence_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_ops_evidence_recorded_at'), ['recorded_at'], unique=False)

    op.create_table('signoffs',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('area', sa.String(length=16), nullable=False),
    sa.Column('model_version', sa.String(length=64), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('display_name', sa.String(length=128), nullable=False),
    sa.Column('signed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_by', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_signoffs'))
    )
    with op.batch_alter_table('signoffs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_signoffs_area'), ['area'], unique=False)
        batch_op.create_index(batch_op.f('ix_signoffs_signed_at'), ['signed_at'], unique=False)


def downgrade() -> None:
    op.drop_table('signoffs')
    op.drop_table('ops_evidence')
