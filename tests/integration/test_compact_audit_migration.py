"""Migration 0017 (audit payloads stored compact, hashes as bytes; three unneeded indexes dropped) on both databases: payloads
written as JSON by 0016 read back unchanged, every hash still verifies, the table stays append-only, an
interrupted upgrade runs again, and a downgrade gives JSON back."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from backend.compliance.audit_payload import canonical_json, sha256
from backend.compliance.audit_queries import row_hash_v2
from backend.container import build_services
from backend.operations.backup_queries import migrate_to
from backend.platform.db import compact
from backend.platform.db.engine import Database

# written to break it: look-alike letters, escapes, bidi controls, huge integers, floats to the last bit, nesting
PAYLOADS = [
    {}, {"note": None}, {"a": [1, 2.5, None, True]},
    {"application_id": str(uuid.uuid4()), "recommendation": "approve", "risk_class": "low_risk", "outcome": "deny",
     "status": "final", "is_override": True, "reason_code": "fraud_suspected", "reason_text": "Ηome \u202e =cmd|' /C",
     "materiality": ["approves against a deny recommendation"], "loan_amount": 4800.0, "decision_seconds": 0.1 + 0.2},
    {"big": 2**70, "neg": -(2**63), "tiny": 5e-324, "text": "line\nbreak\t\"q\"\\ \u2028", "emoji": "\U0001f4b8"},
    {"nested": {"deeper": [{"x": [1, [2, [3]]]}]}, "": ""},
    {"x" * 300: "y" * 5000},
]


REFS = [sha256("applicant-0"), sha256("applicant-1")]  # blind indexes as 0007-0016 stored them (hex)
DROPPED = {"ix_applications_applied_at", "ix_decisions_application_id", "ix_outcomes_batch_id"}


def _audit_0016() -> sa.Table:
    return sa.Table("audit_log", sa.MetaData(), sa.Column("seq", sa.Integer, primary_key=True),
                    sa.Column("id", sa.Uuid), sa.Column("at", sa.DateTime(timezone=True)), sa.Column("actor", sa.String),
                    sa.Column("role", sa.String), sa.Column("action", sa.String),
                    sa.Column("entity_type", sa.String), sa.Column("entity_id", sa.String),
                    sa.Column("payload", sa.JSON), sa.Column("payload_hash", sa.String),
                    sa.Column("prev_hash", sa.String), sa.Column("row_hash", sa.String))


def _write_0016_rows(db: Database) -> None:
    """Rows as 0016's code wrote them: the payload a JSON column, the row hash without a link (revision 0009)."""
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    rows = []
    for i, p in enumerate(PAYLOADS * 3):
        rid, at = uuid.uuid4(), t0 + timedelta(seconds=i)
        ph = sha256(canonical_json(p))
        naive = at.replace(tzinfo=None) if db.dialect == "sqlite" else at
        rows.append(dict(id=rid, at=naive, actor="alice", role="admin", action="test", entity_type="user",
                         entity_id=str(i), payload=p, payload_hash=ph, prev_hash="",
                         row_hash=row_hash_v2(rid, at, "alice", "admin", "test", "user", str(i), ph)))
    with db.engine.begin() as c:
        c.execute(_audit_0016().insert(), rows)
    apps = sa.Table("applications", sa.MetaData(), *[sa.Column(n, t) for n, t in (
        ("id", sa.Uuid()), ("applicant_id", sa.String()), ("features", sa.LargeBinary()), ("protected", sa.JSON()),
        ("loan_amount", sa.Float()), ("applied_at", sa.DateTime(timezone=True)),
        ("created_at", sa.DateTime(timezone=True)), ("source", sa.String()), ("ai_visible", sa.Boolean()),
        ("applicant_ref", sa.String()))])  # as 0016 stores them (features compact since 0015)
    with db.engine.begin() as c:
        c.execute(apps.insert(), [dict(id=uuid.uuid4(), applicant_id=f"a{k}", features=compact.dumps({}), protected={},
                                       loan_amount=1.0, applied_at=t0, created_at=t0, source="console",
                                       ai_visible=True, applicant_ref=ref) for k, ref in enumerate(REFS)])


def _stored(db: Database) -> list[object]:
    with db.engine.connect() as c:
        return list(c.execute(sa.text("SELECT payload FROM audit_log ORDER BY seq")).scalars())


def _indexes(db: Database) -> set[str]:
    insp = sa.inspect(db.engine)
    return {i["name"] for t in ("applications", "decisions", "outcomes") for i in insp.get_indexes(t)}


def test_0017_compacts_audit_payloads_and_every_hash_still_verifies(db: Database, settings, clock) -> None:
    migrate_to(db, "0016")
    _write_0016_rows(db)
    assert DROPPED <= _indexes(db)
    with db.engine.connect() as c:
        text_size = sum(len(v) for v in c.execute(sa.text(
            "SELECT payload::text FROM audit_log" if db.dialect == "postgresql" else
            "SELECT payload FROM audit_log")).scalars())
    migrate_to(db, "0017")
    stored = _stored(db)
    assert len(stored) == 3 * len(PAYLOADS)
    assert all(isinstance(v, bytes | memoryview) and bytes(v)[0] == compact.AUDIT for v in stored)
    assert sum(len(bytes(v)) for v in stored) < text_size
    with db.engine.connect() as c:  # the hashes as their bytes: 32, none (sealed in batches), 32
        hashes = c.execute(sa.text("SELECT payload_hash, prev_hash, row_hash FROM audit_log")).all()
    assert {tuple(len(bytes(v)) for v in r) for r in hashes} == {(32, 0, 32)}
    # the applicant id's blind index: its bytes stored, the same hex read (and found) by the code
    from backend.platform.db.tables_book import Application

    with db.engine.connect() as c:
        assert [len(bytes(v)) for v in c.execute(sa.text("SELECT applicant_ref FROM applications"))
                .scalars()] == [32, 32]
        assert sorted(c.execute(sa.select(Application.applicant_ref)).scalars()) == sorted(REFS)
        assert c.execute(sa.select(Application.applicant_id).where(Application.applicant_ref.in_([REFS[1]])))\
            .scalar_one() == "a1"
    assert not DROPPED & _indexes(db)
    svc = build_services(settings, db=db, clock=clock)
    assert [r["payload"] for r in reversed(svc.audit.recent(100))] == PAYLOADS * 3
    report = svc.audit.verify()
    assert report.ok and report.rows == 3 * len(PAYLOADS), report
    # still append-only
    for stmt in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), db.transaction() as s:
            s.execute(sa.text(stmt))
    # an upgrade that stopped half-way runs again: compact payloads are left as they are
    with db.engine.begin() as c:
        c.execute(sa.text("UPDATE alembic_version SET version_num = '0016'"))
    migrate_to(db, "0017")
    assert [bytes(v) for v in _stored(db)] == [bytes(v) for v in stored]
    assert svc.audit.verify().ok


def test_0017_downgrade_gives_json_back_and_an_upgrade_verifies_again(db: Database, settings, clock) -> None:
    migrate_to(db, "0016")
    _write_0016_rows(db)
    migrate_to(db, "0017")
    migrate_to(db, "0016")
    with db.engine.connect() as c:
        got = [json.loads(v) if isinstance(v, str) else v
               for v in c.execute(sa.select(_audit_0016().c.payload).order_by(_audit_0016().c.seq)).scalars()]
    assert got == PAYLOADS * 3
    assert DROPPED <= _indexes(db)
    with pytest.raises(sa.exc.DatabaseError, match="append-only"), db.transaction() as s:
        s.execute(sa.text("UPDATE audit_log SET actor = 'mallory'"))
    db.migrate()
    assert build_services(settings, db=db, clock=clock).audit.verify().ok


def test_0017_never_changes_a_hash_it_could_not_read_back(db: Database) -> None:
    """A hash that is not lowercase hex (never written by the product) cannot round-trip through bytes: SQLite
    keeps it as the text it is; PostgreSQL, whose column becomes bytea, stops the upgrade and names the row."""
    migrate_to(db, "0016")
    _write_0016_rows(db)
    with db.engine.begin() as c:
        if db.dialect == "sqlite":
            c.execute(sa.text("DROP TRIGGER audit_log_no_update"))
        else:
            c.execute(sa.text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update"))
        c.execute(sa.text("UPDATE audit_log SET row_hash = upper(row_hash) WHERE seq = 2"))
        odd = c.execute(sa.text("SELECT row_hash FROM audit_log WHERE seq = 2")).scalar_one()
    if db.dialect == "postgresql":
        with pytest.raises(RuntimeError, match="row 2 holds a hash that is not lowercase hex"):
            migrate_to(db, "0017")
        assert db.current_revision() == "0016"
        return
    migrate_to(db, "0017")
    with db.engine.connect() as c:
        assert c.execute(sa.text("SELECT row_hash FROM audit_log WHERE seq = 2")).scalar_one() == odd
        assert isinstance(c.execute(sa.text("SELECT row_hash FROM audit_log WHERE seq = 3")).scalar_one(), bytes)
