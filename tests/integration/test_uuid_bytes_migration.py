"""Migration 0018 (UUIDs as their 16 bytes on SQLite): rows that 0017's code wrote (32 hex digits) read back as the
same UUIDs, every reference still joins and passes SQLite's foreign-key check, the audit chain still verifies and
stays append-only, a downgrade gives the hex text back and an upgrade again converts it (PostgreSQL: nothing to
do, the same values)."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from old_schema import HEAD, write_0017_book

from backend.container import build_services
from backend.operations.backup_queries import migrate_to
from backend.platform.db.engine import Database
from backend.platform.db.tables_book import Application, Decision, Outcome, Prediction
from backend.platform.db.tables_governance import AuditLog


def _stored_types(db: Database) -> set[str]:
    with db.engine.connect() as c:
        return {t for table, col in (("applications", "id"), ("applications", "officer_id"), ("predictions", "id"),
                                     ("predictions", "application_id"), ("decisions", "prediction_id"),
                                     ("decisions", "decided_by"), ("outcomes", "application_id"), ("audit_log", "id"),
                                     ("users", "id"))
                for t in c.execute(sa.text(f"SELECT DISTINCT typeof({col}) FROM {table}")).scalars()}  # noqa: S608


def _book(db: Database) -> list[tuple[uuid.UUID, ...]]:
    """Each application joined to its prediction, decision and outcome through the stored references."""
    with db.engine.connect() as c:
        return sorted(c.execute(
            sa.select(Application.id, Application.officer_id, Prediction.id, Decision.id, Decision.decided_by,
                      Outcome.id)
            .join(Prediction, Prediction.application_id == Application.id)
            .join(Decision, Decision.prediction_id == Prediction.id)
            .join(Outcome, Outcome.application_id == Application.id)).tuples().all())


def test_0018_stores_uuids_as_bytes_and_every_reference_still_holds(db: Database, settings, clock) -> None:
    migrate_to(db, "0017")
    ids = write_0017_book(db)
    expected = sorted(zip(ids["app"], [ids["officer"][0]] * 7, ids["pred"], ids["dec"], [ids["officer"][0]] * 7,
                          ids["out"], strict=True))
    if db.dialect == "sqlite":
        assert _stored_types(db) == {"text"}
    migrate_to(db, HEAD)
    assert _book(db) == expected
    svc = build_services(settings, db=db, clock=clock)
    report = svc.audit.verify()
    assert report.ok and report.rows == 7, report
    with db.engine.connect() as c:
        assert sorted(c.execute(sa.select(AuditLog.id)).scalars()) == sorted(ids["audit"])
        # entity ids read back as written; a UUID's canonical text is found by it (stored as its bytes on SQLite)
        assert sorted(c.execute(sa.select(AuditLog.entity_id)).scalars()) == sorted(ids["entity"])
        for entity in ids["entity"]:
            assert c.execute(sa.select(AuditLog.seq).where(AuditLog.entity_id == entity)).scalar() is not None
        if db.dialect == "sqlite":
            kinds = dict(c.execute(sa.text("SELECT entity_id, typeof(entity_id) FROM audit_log")).tuples().all())
            assert sorted(kinds.values()) == ["blob"] * 3 + ["text"] * 4
    if db.dialect == "sqlite":
        assert _stored_types(db) == {"blob"}
        with db.engine.connect() as c:
            assert c.execute(sa.text("PRAGMA foreign_key_check")).all() == []
            assert c.execute(sa.text("SELECT DISTINCT length(id) FROM applications")).scalars().all() == [16]
            assert "ix_tmp_0018_decisions_prediction_id" not in {
                i["name"] for i in sa.inspect(c).get_indexes("decisions")}
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), db.engine.begin() as c:  # still append-only
        c.execute(sa.text("UPDATE audit_log SET actor = 'mallory'"))
    # the book's search finds an application by a prefix of its id, with or without dashes, in either case
    from backend.decisioning.queries import DecisionRepository

    with sa.orm.Session(db.engine) as s:
        for text in (str(ids["app"][3])[:13], ids["app"][3].hex[:10].upper()):
            found, total = DecisionRepository(s).applications_page(officer_id=None, text=text, ids=None, offset=0,
                                                                   limit=10)
            assert total == 1 and found[0].id == ids["app"][3], text


def test_0018_down_gives_hex_text_back_and_up_again_converts_it(db: Database) -> None:
    """(PostgreSQL: both directions leave its uuid column and the values as they are.)"""
    migrate_to(db, "0017")
    ids = write_0017_book(db, 4)
    migrate_to(db, HEAD)
    migrate_to(db, "0017")
    if db.dialect == "sqlite":
        assert _stored_types(db) == {"text"}
        with db.engine.connect() as c:
            assert sorted(c.execute(sa.text("SELECT id FROM applications")).scalars()) == sorted(
                a.hex for a in ids["app"])
    migrate_to(db, HEAD)
    if db.dialect == "sqlite":
        assert _stored_types(db) == {"blob"}
    assert [r[0] for r in _book(db)] == sorted(ids["app"])
