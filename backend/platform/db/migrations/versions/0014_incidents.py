"""operations: incidents opened by a model rollback and the decisions they queue for review (issue 19)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""
from alembic import op
import sqlalchemy as sa



revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('incidents',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('model_version', sa.String(length=64), nullable=False),
    sa.Column('restored_version', sa.String(length=64), nullable=False),
    sa.Column('cause', sa.Text(), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('opened_by', sa.String(length=64), nullable=False),
    sa.Column('rollback_done_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('verified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('verification', sa.JSON(), nullable=False),
    sa.Column('review_queued_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('postmortem_owner', sa.String(length=64), nullable=True),
    sa.Column('postmortem_due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('postmortem_test', sa.String(length=300), nullable=True),
    sa.Column('postmortem_summary', sa.Text(), nullable=True),
    sa.Column('postmortem_done_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incidents'))
    )
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incidents_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_incidents_model_version'), ['model_version'], unique=False)
        batch_op.create_index(batch_op.f('ix_incidents_opened_at'), ['opened_at'], unique=False)

    op.create_table('incident_reviews',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('incident_id', sa.Uuid(), nullable=False),
    sa.Column('application_id', sa.Uuid(), nullable=False),
    sa.Column('prediction_id', sa.Uuid(), nullable=False),
    sa.Column('scored_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recommendation', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reviewed_by', sa.String(length=64), nullable=True),
    sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_reviews'))
    )
    with op.batch_alter_table('incident_reviews', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_reviews_incident_id'), ['incident_id'], unique=False)


def downgrade() -> None:
    op.drop_table('incident_reviews')
    op.drop_table('incidents')
