"""Migration 0018 (UUIDs as their 16 bytes on SQLite): rows that 0017's code wrote (32 hex digits) read back as the
same UUIDs, every reference still joins and passes SQLite's foreign-key check, the audit chain still verifies and
stays append-only, a downgrade gives the hex text back and an upgrade again converts it (PostgreSQL: nothing to
do, the same values)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from old_schema import HEAD

from backend.compliance.audit_payload import canonical_json, sha256
from backend.compliance.audit_queries import row_hash_v2
from backend.container import build_services
from backend.operations.backup_queries import migrate_to
from backend.platform.db import compact
from backend.platform.db.engine import Database
from backend.platform.db.tables_book import Application, Decision, Outcome, Prediction
from backend.platform.db.tables_governance import AuditLog

T0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def _t(name: str, *cols: tuple[str, sa.types.TypeEngine]) -> sa.Table:
    return sa.Table(name, sa.MetaData(), *[sa.Column(n, t) for n, t in cols])


def _write_0017_book(db: Database, n: int = 7) -> dict[str, list[uuid.UUID]]:
    """A small book as 0017's code stored it: ``sa.Uuid`` columns (32 hex digits on SQLite)."""
    naive = (lambda t: t.replace(tzinfo=None)) if db.dialect == "sqlite" else (lambda t: t)
    officer = uuid.uuid4()
    ids = {"app": [uuid.uuid4() for _ in range(n)], "pred": [uuid.uuid4() for _ in range(n)],
           "dec": [uuid.uuid4() for _ in range(n)], "out": [uuid.uuid4() for _ in range(n)], "officer": [officer]}
    U, S, D = sa.Uuid(), sa.String(), sa.DateTime(timezone=True)
    with db.engine.begin() as c:
        c.execute(_t("users", ("id", U), ("username", S), ("display_name", S), ("password_hash", S), ("role", S),
                     ("disabled", sa.Boolean()), ("senior", sa.Boolean()), ("created_at", D), ("updated_at", D))
                  .insert(), [dict(id=officer, username="olga", display_name="Olga", password_hash="x",
                                   role="loan_officer", disabled=False, senior=False, created_at=naive(T0),
                                   updated_at=naive(T0))])
        c.execute(_t("applications", ("id", U), ("applicant_id", S), ("features", sa.LargeBinary()),
                     ("protected", sa.JSON()), ("loan_amount", sa.Float()), ("applied_at", D), ("created_at", D),
                     ("officer_id", U), ("source", S), ("ai_visible", sa.Boolean())).insert(),
                  [dict(id=a, applicant_id=f"a{k}", features=compact.dumps({"k": k}), protected={}, loan_amount=1.0,
                        applied_at=naive(T0), created_at=naive(T0), officer_id=officer, source="console",
                        ai_visible=True) for k, a in enumerate(ids["app"])])
        c.execute(_t("predictions", ("id", U), ("application_id", U), ("model_name", S), ("model_version", S),
                     ("model_role", S), ("engine", S), ("pd", sa.Float()), ("raw_score", sa.Float()),
                     ("risk_class", S), ("confidence", sa.Float()), ("recommendation", S),
                     ("policy_reasons", sa.JSON()), ("reasons", sa.LargeBinary()), ("attributions", sa.LargeBinary()),
                     ("cache_hit", sa.Boolean()), ("latency_ms", sa.Float()), ("created_at", D)).insert(),
                  [dict(id=p, application_id=a, model_name="m", model_version="v1", model_role="primary",
                        engine="compiled", pd=0.1, raw_score=0.1, risk_class="low_risk", confidence=0.9,
                        recommendation="approve", policy_reasons=[], reasons=compact.dumps([]),
                        attributions=compact.dumps({}), cache_hit=False, latency_ms=1.0, created_at=naive(T0))
                   for p, a in zip(ids["pred"], ids["app"], strict=True)])
        c.execute(_t("decisions", ("id", U), ("application_id", U), ("prediction_id", U), ("outcome", S),
                     ("status", S), ("decided_by", U), ("decided_at", D), ("is_override", sa.Boolean())).insert(),
                  [dict(id=d, application_id=a, prediction_id=p, outcome="approve", status="final",
                        decided_by=officer, decided_at=naive(T0), is_override=False)
                   for d, a, p in zip(ids["dec"], ids["app"], ids["pred"], strict=True)])
        c.execute(_t("outcomes", ("id", U), ("application_id", U), ("funded", sa.Boolean()),
                     ("defaulted", sa.Boolean()), ("observed_at", D), ("imported_at", D), ("batch_id", S)).insert(),
                  [dict(id=o, application_id=a, funded=True, defaulted=k % 2 == 0, observed_at=naive(T0),
                        imported_at=naive(T0), batch_id="b") for k, (o, a) in enumerate(zip(ids["out"], ids["app"],
                                                                                              strict=True))])
        audit = _t("audit_log", ("id", U), ("at", D), ("actor", S), ("role", S), ("action", S), ("entity_type", S),
                   ("entity_id", S), ("payload", sa.LargeBinary()), ("payload_hash", sa.LargeBinary()),
                   ("prev_hash", sa.LargeBinary()), ("row_hash", sa.LargeBinary()))
        rows = []
        for k, d in enumerate(ids["dec"]):
            rid, at, payload = uuid.uuid4(), T0 + timedelta(seconds=k), {"decision": str(d), "k": k}
            ph = sha256(canonical_json(payload))
            rows.append(dict(id=rid, at=naive(at), actor="olga", role="loan_officer", action="decision_accepted",
                             entity_type="decision", entity_id=str(d), payload=compact.dumps(payload, compact.AUDIT),
                             payload_hash=bytes.fromhex(ph), prev_hash=b"",
                             row_hash=bytes.fromhex(row_hash_v2(rid, at, "olga", "loan_officer", "decision_accepted",
                                                                "decision", str(d), ph))))
            ids.setdefault("audit", []).append(rid)
        c.execute(audit.insert(), rows)
    return ids


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
    ids = _write_0017_book(db)
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
    ids = _write_0017_book(db, 4)
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
