"""Migration 0015 (compact features, attributions and reasons) on both databases: rows written as JSON by
0014 read back unchanged after the upgrade and are stored compact; a downgrade gives JSON back; an
interrupted upgrade can run again; the book's services read what they wrote."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from old_schema import HEAD, book_tables

from backend.operations.backup_queries import migrate_to
from backend.platform.db import compact
from backend.platform.db.engine import Database

FEATURES = {"months_employed": 136.0, "employment_type": "full_time", "annual_income": 47200.0,
            "note": "Ηome \u200b\n\"q\"", "missing": None, "big": 2**62}
ATTRIBUTIONS = {"months_employed": -0.02829814, "annual_income": 5e-324, "employment_type": 0.0}
REASONS = [{"code": "limited_credit_experience", "text": "Limited credit experience", "weight": 0.00017,
            "features": [{"name": "credit_history_months", "value": 301, "contribution": 0.00017}]}]


def _write_0014_rows(db: Database, n: int) -> list[uuid.UUID]:
    apps, preds = book_tables(("ai_visible", sa.Boolean()))  # as 0014 writes them (JSON columns)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    ids = [uuid.uuid4() for _ in range(n)]
    with db.engine.begin() as c:
        c.execute(apps.insert(), [dict(id=i, applicant_id=f"a{k}", features={**FEATURES, "k": k}, protected={},
                                       loan_amount=1000.0, applied_at=now, created_at=now, source="console",
                                       ai_visible=True) for k, i in enumerate(ids)])
        c.execute(preds.insert(), [dict(
            id=uuid.uuid4(), application_id=i, model_name="m", model_version="v", model_role="primary",
            engine="compiled", pd=0.1, raw_score=-2.0, risk_class="low", confidence=0.9, recommendation="approve",
            policy_reasons=[], reasons=REASONS, attributions=ATTRIBUTIONS, cache_hit=False, latency_ms=1.0,
            created_at=now) for i in ids])
    return ids


def _stored(db: Database, *, json_columns: bool = False) -> list[tuple[object, object, object]]:
    """The stored values as the driver hands them over (PostgreSQL's json as its text, not parsed)."""
    t = "::text" if json_columns and db.dialect == "postgresql" else ""
    with db.engine.connect() as c:
        return [tuple(r) for r in c.execute(sa.text(
            f"SELECT a.features{t}, p.attributions{t}, p.reasons{t} FROM applications a "
            "JOIN predictions p ON p.application_id = a.id ORDER BY a.applicant_id"))]


def _values(db: Database) -> list[tuple[object, object, object]]:
    from backend.platform.db.tables_book import Application, Prediction

    with db.engine.connect() as c:
        return [tuple(r) for r in c.execute(sa.select(Application.features, Prediction.attributions, Prediction.reasons)
                                            .join(Prediction, Prediction.application_id == Application.id)
                                            .order_by(Application.applicant_id))]


def test_upgrade_compacts_every_row_and_keeps_every_value(db: Database) -> None:
    migrate_to(db, "0014")
    _write_0014_rows(db, 12)
    before = _stored(db, json_columns=True)
    assert all(compact.is_plain(v) for row in before for v in row)  # JSON text (PostgreSQL json / SQLite text)
    migrate_to(db, "0015")
    stored = _stored(db)
    assert all(isinstance(v, bytes | memoryview) and not compact.is_plain(v) for row in stored for v in row)
    plain_size = sum(len(str(v)) for row in before for v in row)
    assert sum(len(bytes(v)) for row in stored for v in row) < plain_size / 2
    values = _values(db)
    assert len(values) == 12
    for k, (features, attributions, reasons) in enumerate(sorted(values, key=lambda r: r[0]["k"])):
        assert features == {**FEATURES, "k": k} and attributions == ATTRIBUTIONS and reasons == REASONS
    # an upgrade that stopped half-way runs again: compact rows are left as they are
    with db.engine.begin() as c:
        c.execute(sa.text("UPDATE alembic_version SET version_num = '0014'"))
    migrate_to(db, "0015")
    assert [tuple(map(bytes, r)) for r in _stored(db)] == [tuple(map(bytes, r)) for r in stored]


def test_downgrade_gives_json_back(db: Database) -> None:
    migrate_to(db, "0014")
    _write_0014_rows(db, 3)
    migrate_to(db, "0015")
    migrate_to(db, "0014")
    apps, preds = book_tables()
    with db.engine.connect() as c:
        rows = c.execute(sa.select(apps.c.features, preds.c.attributions, preds.c.reasons)
                         .join(preds, preds.c.application_id == apps.c.id)).all()
    assert len(rows) == 3
    for features, attributions, reasons in rows:
        assert {k: v for k, v in features.items() if k != "k"} == FEATURES
        assert attributions == ATTRIBUTIONS and reasons == REASONS
    db.migrate()
    assert db.current_revision() == HEAD and len(_values(db)) == 3


def test_nan_in_a_feature_survives_where_the_database_can_hold_it(db: Database) -> None:
    """JSON text holds NaN as ``NaN`` (Python's json); the compact value is that text, on both databases."""
    from backend.platform.db.tables_book import Application

    app_id = uuid.uuid4()
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with db.transaction() as s:
        s.add(Application(id=app_id, applicant_id="n", features={"x": math.nan, "y": 1.0}, loan_amount=1.0,
                          applied_at=now))
    with db.read() as s:
        got = s.get(Application, app_id).features
    assert math.isnan(got["x"]) and got["y"] == 1.0


def test_a_backup_taken_before_0015_restores_into_either_database_and_is_compacted(
        db: Database, tmp_path, clock, request) -> None:  # noqa: ANN001
    """The backup of a 0014 database (these columns JSON there) restores at 0014 and is upgraded: the same
    values, stored compact; a backup of the upgraded database restores them again, byte for byte as JSON."""
    from backend.container.settings import load_settings
    from backend.operations.backup import BackupService
    from backend.operations.backup_restore import RestoreService
    from backend.platform.db.engine import make_engine

    migrate_to(db, "0014")
    _write_0014_rows(db, 5)
    settings = load_settings(data_dir=tmp_path / "var", model={"registry_dir": tmp_path / "models"})
    # record=False: the backup's own audit row would be written by this code, which stores payloads compact
    # (0017), into a 0014 table that holds JSON; 0014's code wrote it as JSON
    res = BackupService(db, settings, clock).backup(str(tmp_path / "backups"), record=False)
    assert res.manifest.alembic_revision == "0014"
    target_url = (request.getfixturevalue("pg_database").engine.url.render_as_string(hide_password=False)
                  if db.dialect == "sqlite" else f"sqlite:///{tmp_path / 'restored.db'}")
    target = Database(make_engine(target_url))
    try:
        if target.dialect == "postgresql":
            migrate_to(target, "0014")  # an empty database, as a restore target is
        rep = RestoreService().restore(res.location, target_url, registry_dir=None)
        assert rep.chain.ok and target.current_revision() == HEAD
        values = sorted(_values(target), key=lambda r: r[0]["k"])
        assert [v[0] for v in values] == [{**FEATURES, "k": k} for k in range(5)]
        assert all(v[1] == ATTRIBUTIONS and v[2] == REASONS for v in values)
        assert all(not compact.is_plain(v) for row in _stored(target) for v in row)
        again = BackupService(target, settings, clock).backup(str(tmp_path / "again"))
        assert again.manifest.alembic_revision == HEAD
        third = Database(make_engine(f"sqlite:///{tmp_path / 'third.db'}"))
        try:
            RestoreService().restore(again.location, str(third.engine.url), registry_dir=None)
            assert _values(third) == _values(target)
            # restored at 0015: stored compact again, not as the backup's JSON text
            assert all(not compact.is_plain(v) for row in _stored(third) for v in row)
        finally:
            third.dispose()
    finally:
        target.dispose()
