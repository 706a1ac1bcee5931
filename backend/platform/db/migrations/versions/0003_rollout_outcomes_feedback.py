"""rollout, outcomes, feedback and surveys; timings and AI visibility

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('rollout_configs',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('phase', sa.String(length=32), nullable=False),
    sa.Column('ai_share', sa.Float(), nullable=False),
    sa.Column('eligible_roles', sa.JSON(), nullable=False),
    sa.Column('senior_only', sa.Boolean(), nullable=False),
    sa.Column('eligible_officers', sa.JSON(), nullable=False),
    sa.Column('loan_amount_cap', sa.Float(), nullable=False),
    sa.Column('confidence_threshold', sa.Float(), nullable=False),
    sa.Column('features', sa.JSON(), nullable=False),
    sa.Column('salt', sa.String(length=32), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('rationale', sa.Text(), nullable=False),
    sa.Column('proposed_by', sa.String(length=64), nullable=False),
    sa.Column('proposed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reviewed_by', sa.String(length=64), nullable=True),
    sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('review_note', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rollout_configs')),
    sa.UniqueConstraint('version', name=op.f('uq_rollout_configs_version'))
    )
    with op.batch_alter_table('rollout_configs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rollout_configs_status'), ['status'], unique=False)

    op.create_table('survey_responses',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('period', sa.String(length=16), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('nps', sa.Integer(), nullable=False),
    sa.Column('satisfaction', sa.Integer(), nullable=True),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_survey_responses_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_survey_responses'))
    )
    with op.batch_alter_table('survey_responses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_survey_responses_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_survey_responses_user_id'), ['user_id'], unique=False)
        batch_op.create_index('uq_survey_user_period', ['user_id', 'period'], unique=True)

    op.create_table('outcomes',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('application_id', sa.Uuid(), nullable=False),
    sa.Column('funded', sa.Boolean(), nullable=False),
    sa.Column('defaulted', sa.Boolean(), nullable=True),
    sa.Column('observed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('imported_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('batch_id', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['application_id'], ['applications.id'], name=op.f('fk_outcomes_application_id_applications')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outcomes')),
    sa.UniqueConstraint('application_id', name=op.f('uq_outcomes_application_id'))
    )
    with op.batch_alter_table('outcomes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outcomes_batch_id'), ['batch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outcomes_observed_at'), ['observed_at'], unique=False)

    op.create_table('explanation_feedback',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('explanation_id', sa.Uuid(), nullable=True),
    sa.Column('prediction_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('helpful', sa.Boolean(), nullable=False),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['explanation_id'], ['explanations.id'], name=op.f('fk_explanation_feedback_explanation_id_explanations')),
    sa.ForeignKeyConstraint(['prediction_id'], ['predictions.id'], name=op.f('fk_explanation_feedback_prediction_id_predictions')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_explanation_feedback_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_explanation_feedback'))
    )
    with op.batch_alter_table('explanation_feedback', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_explanation_feedback_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_explanation_feedback_explanation_id'), ['explanation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_explanation_feedback_prediction_id'), ['prediction_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_explanation_feedback_user_id'), ['user_id'], unique=False)

    # Plain ALTER TABLE ADD COLUMN (SQLite supports it for these columns): a batch "move and copy"
    # of applications would drop a table that predictions and decisions reference.
    op.add_column('applications', sa.Column('rollout_version', sa.Integer(), nullable=True))
    op.add_column('applications', sa.Column('ai_visible', sa.Boolean(), nullable=False, server_default=sa.true()))
    op.create_index('ix_applications_applied_arm', 'applications', ['applied_at', 'arm'], unique=False)
    op.add_column('predictions', sa.Column('timings', sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_index('ix_applications_applied_arm', table_name='applications')
    for table, column in (('predictions', 'timings'), ('applications', 'ai_visible'),
                          ('applications', 'rollout_version')):
        op.drop_column(table, column)  # SQLite >= 3.35 drops a column in place

    with op.batch_alter_table('explanation_feedback', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_explanation_feedback_user_id'))
        batch_op.drop_index(batch_op.f('ix_explanation_feedback_prediction_id'))
        batch_op.drop_index(batch_op.f('ix_explanation_feedback_explanation_id'))
        batch_op.drop_index(batch_op.f('ix_explanation_feedback_at'))

    op.drop_table('explanation_feedback')
    with op.batch_alter_table('outcomes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outcomes_observed_at'))
        batch_op.drop_index(batch_op.f('ix_outcomes_batch_id'))

    op.drop_table('outcomes')
    with op.batch_alter_table('survey_responses', schema=None) as batch_op:
        batch_op.drop_index('uq_survey_user_period')
        batch_op.drop_index(batch_op.f('ix_survey_responses_user_id'))
        batch_op.drop_index(batch_op.f('ix_survey_responses_at'))

    op.drop_table('survey_responses')
    with op.batch_alter_table('rollout_configs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rollout_configs_status'))

    op.drop_table('rollout_configs')
