"""qa_exchanges: conversations, refusal kind, engine, facts used, tool calls and the fact-check verdict

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06

A decision may have several conversations (``conversation_id``); each exchange records which engine
answered (``offline`` or the LLM provider and model), the refusal kind, the facts used, the LLM's tool
calls with their arguments and results, and the fact-check verdict. Rows written before this revision
keep NULLs (one conversation per decision, answered offline).
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('qa_exchanges', schema=None) as batch_op:
        batch_op.add_column(sa.Column('conversation_id', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('refusal', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('engine', sa.String(length=160), nullable=True))
        batch_op.add_column(sa.Column('facts', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('tool_calls', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('fact_check', sa.JSON(), nullable=True))
        batch_op.create_index(batch_op.f('ix_qa_exchanges_conversation_id'), ['conversation_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('qa_exchanges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_qa_exchanges_conversation_id'))
        for name in ('fact_check', 'tool_calls', 'facts', 'engine', 'refusal', 'conversation_id'):
            batch_op.drop_column(name)
