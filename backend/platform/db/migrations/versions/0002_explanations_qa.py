"""explanations, LLM usage and decision Q&A; the result fields a stored prediction lacked

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('predictions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('base_value', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('margin', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('member_spread', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('fallback_error', sa.String(length=300), nullable=True))

    op.create_table('explanations',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('prediction_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('model', sa.String(length=128), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('fact_check_ok', sa.Boolean(), nullable=False),
    sa.Column('failures', sa.JSON(), nullable=False),
    sa.Column('fallback_used', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['prediction_id'], ['predictions.id'], name=op.f('fk_explanations_prediction_id_predictions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_explanations'))
    )
    with op.batch_alter_table('explanations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_explanations_prediction_id'), ['prediction_id'], unique=False)

    op.create_table('llm_usage',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('prediction_id', sa.Uuid(), nullable=True),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('model', sa.String(length=128), nullable=False),
    sa.Column('input_tokens', sa.Integer(), nullable=True),
    sa.Column('output_tokens', sa.Integer(), nullable=True),
    sa.Column('cost_usd', sa.Float(), nullable=True),
    sa.Column('latency_ms', sa.Float(), nullable=False),
    sa.Column('fallback_used', sa.Boolean(), nullable=False),
    sa.Column('fact_check_ok', sa.Boolean(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['prediction_id'], ['predictions.id'], name=op.f('fk_llm_usage_prediction_id_predictions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_llm_usage'))
    )
    with op.batch_alter_table('llm_usage', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_llm_usage_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_llm_usage_prediction_id'), ['prediction_id'], unique=False)

    op.create_table('qa_exchanges',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('prediction_id', sa.Uuid(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('turn', sa.Integer(), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('question', sa.Text(), nullable=False),
    sa.Column('answer', sa.Text(), nullable=False),
    sa.Column('intent', sa.String(length=32), nullable=False),
    sa.Column('refused', sa.Boolean(), nullable=False),
    sa.Column('counterfactuals', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['prediction_id'], ['predictions.id'], name=op.f('fk_qa_exchanges_prediction_id_predictions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_qa_exchanges'))
    )
    with op.batch_alter_table('qa_exchanges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_qa_exchanges_prediction_id'), ['prediction_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('qa_exchanges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_qa_exchanges_prediction_id'))
    op.drop_table('qa_exchanges')
    with op.batch_alter_table('llm_usage', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_llm_usage_prediction_id'))
        batch_op.drop_index(batch_op.f('ix_llm_usage_at'))
    op.drop_table('llm_usage')
    with op.batch_alter_table('explanations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_explanations_prediction_id'))
    op.drop_table('explanations')
    with op.batch_alter_table('predictions', schema=None) as batch_op:
        batch_op.drop_column('fallback_error')
        batch_op.drop_column('member_spread')
        batch_op.drop_column('margin')
        batch_op.drop_column('base_value')
