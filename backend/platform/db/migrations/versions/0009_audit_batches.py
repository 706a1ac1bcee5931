"""audit_batch: the sequencer's sealed batches (Merkle root per batch, keyed chain), append-only

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06

Writers no longer chain rows under a lock: they insert audit rows with an empty ``prev_hash``
(pending) and the sequencer seals committed rows into batches (backend/compliance/audit_sequencer.py).
Rows written before this revision keep their SHA-256 chain and are sealed by the first sequencer run.
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

BATCH_BLOCKED = "audit_batch is append-only"


def upgrade() -> None:
    op.create_table(
        'audit_batch',
        sa.Column('batch_no', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False,
                  nullable=False),
        sa.Column('first_seq', sa.BigInteger(), nullable=False),
        sa.Column('last_seq', sa.BigInteger(), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('gaps', sa.Text(), nullable=False),
        sa.Column('tags', sa.LargeBinary(), nullable=False),
        sa.Column('root', sa.String(length=64), nullable=False),
        sa.Column('prev_mac', sa.String(length=64), nullable=False),
        sa.Column('mac', sa.String(length=64), nullable=False),
        sa.Column('sealed_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('batch_no', name=op.f('pk_audit_batch')),
        sa.UniqueConstraint('last_seq', name=op.f('uq_audit_batch_last_seq')),
        sa.UniqueConstraint('mac', name=op.f('uq_audit_batch_mac')),
    )
    if op.get_bind().dialect.name == "postgresql":
        # a writer's transaction gets its id before it draws a seq, whoever inserts: the sequencer's
        # horizon (every transaction that could still commit a lower seq is visible as running) holds
        seq = op.get_bind().execute(sa.text("SELECT pg_get_serial_sequence('audit_log', 'seq')")).scalar()
        op.execute(f"""
            CREATE OR REPLACE FUNCTION audit_next_seq() RETURNS bigint LANGUAGE sql VOLATILE AS $$
                SELECT pg_current_xact_id();
                SELECT nextval('{seq}');
            $$;
        """)
        op.execute("ALTER TABLE audit_log ALTER COLUMN seq SET DEFAULT audit_next_seq()")
        op.execute(f"""
            CREATE OR REPLACE FUNCTION audit_batch_block() RETURNS trigger AS $$
            BEGIN RAISE EXCEPTION '{BATCH_BLOCKED}'; END; $$ LANGUAGE plpgsql;
        """)
        op.execute("CREATE TRIGGER audit_batch_no_update BEFORE UPDATE OR DELETE ON audit_batch "
                   "FOR EACH ROW EXECUTE FUNCTION audit_batch_block()")
        op.execute("CREATE TRIGGER audit_batch_no_truncate BEFORE TRUNCATE ON audit_batch "
                   "FOR EACH STATEMENT EXECUTE FUNCTION audit_batch_block()")
    else:
        op.execute(f"CREATE TRIGGER audit_batch_no_update BEFORE UPDATE ON audit_batch "
                   f"BEGIN SELECT RAISE(ABORT, '{BATCH_BLOCKED}'); END")
        op.execute(f"CREATE TRIGGER audit_batch_no_delete BEFORE DELETE ON audit_batch "
                   f"BEGIN SELECT RAISE(ABORT, '{BATCH_BLOCKED}'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        seq = op.get_bind().execute(sa.text("SELECT pg_get_serial_sequence('audit_log', 'seq')")).scalar()
        op.execute(f"ALTER TABLE audit_log ALTER COLUMN seq SET DEFAULT nextval('{seq}'::regclass)")
        op.execute("DROP FUNCTION IF EXISTS audit_next_seq()")
        op.execute("DROP TRIGGER IF EXISTS audit_batch_no_update ON audit_batch")
        op.execute("DROP TRIGGER IF EXISTS audit_batch_no_truncate ON audit_batch")
        op.execute("DROP FUNCTION IF EXISTS audit_batch_block()")
    op.drop_table('audit_batch')
