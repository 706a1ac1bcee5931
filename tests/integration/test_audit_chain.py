"""The hash-chained audit log: append, verify, tamper detection, append-only enforcement."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from backend.compliance.audit_queries import AuditRepository


def _fill(db, n=5):
    with db.transaction() as s:
        repo = AuditRepository(s)
        for i in range(n):
            repo.append(actor="alice", role="admin", action="test", entity_type="user", entity_id=str(i),
                        payload={"i": i, "text": "=HYPERLINK(\"x\") <script>alert(1)</script> \x00"[: 40 - i]})


def test_chain_verifies(services):
    _fill(services.db)
    report = services.audit.verify()
    assert report.ok and report.rows == 5


def test_update_and_delete_are_refused(services):
    _fill(services.db, 2)
    for stmt in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), services.db.transaction() as s:
            s.execute(sa.text(stmt))
    assert services.audit.verify().ok


def test_truncate_refused_on_postgres(pg_database):
    _fill(pg_database, 1)  # TRUNCATE exists only on PostgreSQL
    with pytest.raises(sa.exc.DatabaseError, match="append-only"), pg_database.transaction() as s:
        s.execute(sa.text("TRUNCATE audit_log"))


def test_direct_edit_is_detected(services):
    _fill(services.db, 6)
    db = services.db
    with db.transaction() as s:  # an attacker with owner rights drops the trigger and edits a row
        if db.dialect == "postgresql":
            s.execute(sa.text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update"))
        else:
            s.execute(sa.text("DROP TRIGGER audit_log_no_update"))
        s.execute(sa.text("UPDATE audit_log SET actor = 'mallory' WHERE seq = 4"))
    report = services.audit.verify()
    assert not report.ok and report.first_broken_seq == 4 and "changed" in report.detail


def test_deleted_row_is_detected(services):
    _fill(services.db, 6)
    db = services.db
    with db.transaction() as s:
        if db.dialect == "postgresql":
            s.execute(sa.text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update"))
        else:
            s.execute(sa.text("DROP TRIGGER audit_log_no_delete"))
        s.execute(sa.text("DELETE FROM audit_log WHERE seq = 3"))
    report = services.audit.verify()
    assert not report.ok and report.first_broken_seq == 3 and "deleted" in report.detail


def test_payload_stored_verbatim(services):
    nasty = "=cmd|' /C calc'!A0 <img src=x onerror=alert(1)> '; DROP TABLE users; -- \u202e"
    services.audit.record(actor="a", role="admin", action="note", entity_type="user", entity_id="1",
                          payload={"text": nasty})
    assert services.audit.recent(1)[0]["payload"]["text"] == nasty
    assert services.audit.verify().ok


def test_write_and_audit_share_a_transaction(services):
    with pytest.raises(RuntimeError), services.db.transaction() as s:
        AuditRepository(s).append(actor="a", role="admin", action="x", entity_type="user", entity_id="1")
        raise RuntimeError("boom")
    assert services.audit.count() == 0
