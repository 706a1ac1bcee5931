"""Backup, restore and the drill: every row and registry byte comes back, a damaged backup is refused.

The round trip runs on the simulated history (``sim_services``) on both backends and restores each
into the *other* backend (SQLite -> PostgreSQL, PostgreSQL -> SQLite), then compares every row of
every table value for value (JSON columns as their stored text).
"""

from __future__ import annotations

import json
import math
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from backend.cli import app
from backend.compliance import evidence
from backend.compliance.audit import AuditService
from backend.container import Services, build_services
from backend.container.settings import load_settings
from backend.operations import backup_queries as repo_backup
from backend.operations.backup import ARCHIVE_EXISTS, BackupService
from backend.operations.backup_drill import RPO_MISSED, DrillService
from backend.operations.backup_format import (
    FILE_CORRUPT,
    FILE_MISSING,
    MANIFEST_CORRUPT,
    NOT_A_BACKUP,
    BackupError,
)
from backend.operations.backup_restore import (
    NAN_IN_SQLITE,
    REGISTRY_NOT_EMPTY,
    TARGET_NOT_EMPTY,
    RestoreService,
)
from backend.platform.clock import FixedClock
from backend.platform.db.engine import Database, make_engine
from backend.platform.db.tables_access import LoginThrottle
from backend.platform.db.tables_book import Prediction
from backend.platform.db.tables_governance import AuditLog, MonitorSnapshot

# tests/conftest.py's PostgreSQL (a conftest cannot be imported: every one loads as module "conftest")
SESSION_SIGNING_KEY = __import__("os").environ["CREDITRISK_MODEL__SIGNING_KEY"]  # the root conftest's


PG_ADMIN_URL = os.environ.get("CREDITRISK_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
PG_BASE = PG_ADMIN_URL.rsplit("/", 1)[0]


# ------------------------------------------------------------------------------------------ helpers
def dump(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (JSON as stored text), sorted by primary key; NaN made comparable."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with db.engine.connect() as conn:
        for t in repo_backup.app_tables():
            cols = [c.name for c in t.columns]
            pk = [cols.index(c.name) for c in t.primary_key.columns]
            rows = [tuple("NaN" if isinstance(v, float) and math.isnan(v) else v for v in r)
                    for part in repo_backup.stream_rows(conn, t, cols, 500) for r in part]
            out[t.name] = sorted(rows, key=lambda r: tuple(r[i] if isinstance(r[i], int) else str(r[i]) for i in pk))
    return out


def registry_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def add_edge_rows(svc: Services) -> None:
    """Values that lose precision or meaning in a careless copy."""
    at = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    with svc.db.transaction() as s:
        pred = s.execute(sa.select(Prediction).limit(1)).scalar_one()
        pred.timings = None  # JSON null (not SQL NULL), kept apart from SQL NULL in other rows
        s.add(MonitorSnapshot(kind="edge", granularity="week", period="max", window_start=at, window_end=at,
                              value=1.7976931348623157e308, payload={"x": 0.1 + 0.2, "tiny": 5e-324, "neg0": -0.0,
                                                           "text": "ünïcødé ✓ \"quoted\" \\ 🙂"}))
        s.add(MonitorSnapshot(kind="edge", granularity="week", period="inf", window_start=at, window_end=at,
                              value=float("-inf"), payload={}))
        s.add(LoginThrottle(key="edge:ÄÖ", score=0.1 + 0.2, updated_at=at, locked_until=None))


def small_services(tmp_path: Path, clock: FixedClock) -> Services:
    """A tiny SQLite database with a user, audit rows and a two-file registry."""
    s = load_settings(data_dir=tmp_path / "var", auth={"bcrypt_rounds": 4},
                      model={"registry_dir": tmp_path / "models"})
    (tmp_path / "models" / "creditrisk" / "v1").mkdir(parents=True)
    (tmp_path / "models" / "creditrisk" / "v1" / "model.bin").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "models" / "creditrisk" / "aliases.json").write_text('{"champion": "v1"}')
    db = Database(make_engine(s.database_url))
    db.migrate()
    svc = build_services(s, db=db, clock=clock)
    svc.users.add("ops_admin", role="admin", display_name="Ops", password="a-long-enough-password-1")
    svc.audit.record(actor="ops_admin", role="admin", action="test_event", entity_type="x", entity_id="1",
                     payload={"f": 0.1, "none": None})
    return svc


# ------------------------------------------------------------------------------------------ round trip
def test_round_trip_every_row_and_registry_byte_across_backends(sim_services: Services, tmp_path: Path,
                                                                 request: pytest.FixtureRequest) -> None:
    svc = sim_services
    add_edge_rows(svc)
    before = dump(svc.db)
    res = BackupService(svc.db, svc.settings, svc.clock).backup(str(tmp_path / "backups"))
    m = res.manifest
    assert {t.name: t.rows for t in m.tables} == {k: len(v) for k, v in before.items()}
    assert m.rows > 1000 and m.alembic_revision == svc.db.current_revision()
    assert m.newest_data_at is not None and m.snapshot_at == svc.clock.now().isoformat(timespec="microseconds")
    settings_doc = json.loads((Path(res.location) / "settings.json").read_text())
    assert "auth.cookie_key" in settings_doc["omitted_secrets"]

    # restore into the other backend, and check every row and every registry byte
    # PostgreSQL target: an empty database already at the newest revision (the restore skips migrating)
    target_url = (request.getfixturevalue("pg_database").engine.url.render_as_string(hide_password=False)
                  if svc.db.dialect == "sqlite" else f"sqlite:///{tmp_path / 'restored.db'}")
    reg = tmp_path / "restored_models"
    rep = RestoreService().restore(res.location, target_url, registry_dir=reg)
    assert rep.chain.ok and rep.chain.rows == len(before["audit_log"]) > 100
    target = Database(make_engine(target_url))
    try:
        assert dump(target) == before
        assert registry_bytes(reg) == registry_bytes(svc.settings.model.registry_dir)
        # sequences continue after the restored ids: the chain grows from its restored head
        last = before["audit_log"][-1]
        AuditService(target).record(actor="t", role="admin", action="after_restore", entity_type="x", entity_id="1")
        head = AuditService(target).recent(1)[0]
        assert head["seq"] == last[0] + 1 and head["action"] == "after_restore"
        with target.read() as s:
            # written since 0009: no link to the head in the row (pending until a sequencer seals it)
            assert s.execute(sa.select(AuditLog.prev_hash).where(AuditLog.seq == head["seq"])).scalar() == ""
    finally:
        target.dispose()

    # evidence of the backup, for the readiness checklist
    ev = evidence.latest(svc.db, "backup")
    assert ev is not None and ev.ok and ev.payload["id"] == res.id and ev.payload["rows"] == m.rows


def test_postgresql_nan_is_never_silently_lost_in_sqlite(pg_database: Database, tmp_path: Path,
                                                         clock: FixedClock) -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    with pg_database.transaction() as s:
        s.add(MonitorSnapshot(kind="edge", granularity="week", period="nan", window_start=at, window_end=at,
                              value=float("nan"), payload={"v": None}))
    settings = load_settings(data_dir=tmp_path, model={"registry_dir": tmp_path / "none"})
    res = BackupService(pg_database, settings, clock).backup(str(tmp_path / "b"), record=False)
    with pytest.raises(BackupError) as exc:  # SQLite would store NULL
        RestoreService().restore(res.location, f"sqlite:///{tmp_path / 'x.db'}", registry_dir=None)
    assert str(exc.value) == NAN_IN_SQLITE.format(table="monitor_snapshots", column="value")
    probe = Database(make_engine(f"sqlite:///{tmp_path / 'x.db'}"))
    assert all(not rows for rows in dump(probe).values())  # nothing committed
    probe.dispose()


def test_backup_is_one_point_in_time(services: Services, tmp_path: Path) -> None:
    """Writes committed while the backup runs (after its first table) are not in it, on either backend."""
    services.users.add("early", role="admin", display_name="Early", password="a-long-enough-password-1")
    before = {k: len(v) for k, v in dump(services.db).items()}
    written: list[str] = []

    def write_during_backup(_line: str) -> None:
        if not written:  # a user and its audit row, committed between two tables of the backup
            services.users.add("late", role="admin", display_name="Late", password="a-long-enough-password-2")
            written.append("late")

    res = BackupService(services.db, services.settings, services.clock,
                        echo=write_during_backup).backup(str(tmp_path / "b"), record=False)
    assert written and {t.name: t.rows for t in res.manifest.tables} == before
    assert dump(services.db)["users"] != [] and len(dump(services.db)["audit_log"]) == before["audit_log"] + 1
    rep = RestoreService().restore(res.location, f"sqlite:///{tmp_path / 'r.db'}", registry_dir=None)
    assert rep.chain.ok and rep.table_rows == before


# ------------------------------------------------------------------------------------------ refusals
@pytest.fixture
def small(tmp_path: Path, clock: FixedClock) -> Services:
    svc = small_services(tmp_path, clock)
    yield svc
    svc.db.dispose()


def test_corrupted_or_incomplete_backup_is_refused(small: Services, tmp_path: Path) -> None:
    res = BackupService(small.db, small.settings, small.clock).backup(str(tmp_path / "b"))
    folder = Path(res.location)
    target = f"sqlite:///{tmp_path / 'target.db'}"
    restore = RestoreService()
    table_file = next(t.file for t in res.manifest.tables if t.name == "audit_log")

    blob = bytearray((folder / table_file).read_bytes())
    blob[len(blob) // 2] ^= 0x01  # one flipped bit
    (folder / table_file).write_bytes(bytes(blob))
    with pytest.raises(BackupError) as exc:
        restore.restore(str(folder), target, registry_dir=tmp_path / "r")
    assert str(exc.value) == FILE_CORRUPT.format(id=res.id, file=table_file)
    blob[len(blob) // 2] ^= 0x01
    (folder / table_file).write_bytes(bytes(blob))
    assert restore.verify(str(folder)).id == res.id  # repaired: intact again

    model_file = "registry/creditrisk/v1/model.bin"
    (folder / model_file).unlink()
    with pytest.raises(BackupError) as exc:
        restore.restore(str(folder), target, registry_dir=tmp_path / "r")
    assert str(exc.value) == FILE_MISSING.format(id=res.id, file=model_file)

    manifest = folder / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"rows": 1', '"rows": 2', 1))
    with pytest.raises(BackupError) as exc:
        restore.verify(str(folder))
    assert str(exc.value) == MANIFEST_CORRUPT.format(where=str(folder))
    manifest.unlink()  # an interrupted backup has no manifest
    with pytest.raises(BackupError) as exc:
        restore.verify(str(folder))
    assert str(exc.value) == NOT_A_BACKUP.format(where=str(folder), manifest="manifest.json")
    # nothing was written anywhere
    assert not (tmp_path / "r").exists()
    probe = Database(make_engine(target))
    assert probe.current_revision() is None
    probe.dispose()


def test_non_empty_targets_are_refused(small: Services, tmp_path: Path) -> None:
    backups = BackupService(small.db, small.settings, small.clock)
    res = backups.backup(str(tmp_path / "b"), archive=True)
    assert res.location.endswith(".tar.gz")
    small.clock.advance(seconds=1)  # type: ignore[attr-defined]
    with pytest.raises(BackupError) as exc:  # never overwrites; the failure is evidence too
        backups.backup(res.location)
    assert str(exc.value) == ARCHIVE_EXISTS.format(path=res.location)
    failed = evidence.latest(small.db, "backup")
    assert failed is not None and not failed.ok and ARCHIVE_EXISTS.format(path=res.location) in failed.summary
    rows = dump(small.db)
    with pytest.raises(BackupError) as exc:  # the source itself holds rows
        RestoreService().restore(res.location, str(small.db.engine.url), registry_dir=tmp_path / "r")
    assert str(exc.value) == TARGET_NOT_EMPTY.format(table="audit_batch")  # the first table that holds rows
    assert dump(small.db) == rows
    reg = tmp_path / "busy_registry"
    reg.mkdir()
    (reg / "keep.txt").write_text("x")
    target = f"sqlite:///{tmp_path / 'target.db'}"
    with pytest.raises(BackupError) as exc:
        RestoreService().restore(res.location, target, registry_dir=reg)
    assert str(exc.value) == REGISTRY_NOT_EMPTY.format(dir=reg)
    rep = RestoreService().restore(res.location, target, registry_dir=reg, force=True)  # from the archive
    assert rep.chain.ok and (reg / "keep.txt").exists()
    assert registry_bytes(reg) == {**registry_bytes(small.settings.model.registry_dir), "keep.txt": b"x"}


# ------------------------------------------------------------------------------------------ S3
def test_s3_round_trip_and_drill_find_the_newest(small: Services, tmp_path: Path) -> None:
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="crbackups")
        backups = BackupService(small.db, small.settings, small.clock, s3=lambda: client)
        first = backups.backup("s3://crbackups/prod/db")
        small.clock.advance(minutes=15)  # type: ignore[attr-defined]
        second = backups.backup("s3://crbackups/prod/db")
        assert second.location == f"s3://crbackups/prod/db/{second.id}" and second.id > first.id
        keys = [o["Key"] for o in client.list_objects_v2(Bucket="crbackups")["Contents"]]
        assert f"prod/db/{second.id}/manifest.json" in keys
        assert not any("cookie" in k for k in keys)

        with pytest.raises(BackupError) as exc:  # a prefix of backups is not one backup: refused before downloading
            RestoreService(s3=lambda: client).verify("s3://crbackups/prod/db")
        assert str(exc.value) == NOT_A_BACKUP.format(where="s3://crbackups/prod/db", manifest="manifest.json")
        # the drill downloads the newest, checks every sha256, restores and counts every table
        report = DrillService(small.db, small.settings, small.clock, s3=lambda: client).run("s3://crbackups/prod/db")
        assert report.ok and report.backup_id == second.id, report.failures
        assert report.registry_files == 2 and report.table_rows == {t.name: t.rows for t in second.manifest.tables}


# ------------------------------------------------------------------------------------------ drill
def test_drill_records_rto_rpo_and_fails_when_backups_are_stale(small: Services, tmp_path: Path) -> None:
    clock: FixedClock = small.clock  # type: ignore[assignment]
    drills = DrillService(small.db, small.settings, clock)
    missing = drills.run(str(tmp_path / "nowhere"))
    assert not missing.ok and "no backup found" in missing.failures[0]

    clock.advance(seconds=1)
    taken = clock.now()
    report = drills.run(fresh=True)  # default location: <data_dir>/backups
    assert report.ok, report.failures
    assert report.counts_ok and report.chain_ok and report.rows > 0 and report.registry_files == 2
    assert report.rto_seconds is not None and report.rpo_seconds == 0.0
    ev = evidence.latest(small.db, "backup_drill")
    assert ev is not None and ev.ok and ev.payload["rto_seconds"] == report.rto_seconds
    assert ev.payload["backup_id"] == report.backup_id and ev.payload["chain_ok"] is True

    clock.advance(hours=1)  # no backup for an hour: the newest one is older than the 15-minute RPO
    stale = drills.run()
    assert not stale.ok and stale.rpo_seconds == 3600.0
    assert stale.failures == [RPO_MISSED.format(rpo=3600.0, at=taken.isoformat(timespec="microseconds"),
                                                target=900.0)]
    ev = evidence.latest(small.db, "backup_drill")
    assert ev is not None and not ev.ok and ev.payload["rpo_seconds"] == 3600.0
    assert AuditService(small.db).verify().ok


def test_drill_into_a_throwaway_postgresql_database(small: Services, pg_database: Any, pg_template: Any) -> None:
    # pg_database: the server is required (a failure under CI=true, a skip locally)
    report = DrillService(small.db, small.settings, small.clock).run(fresh=True,
                                                                      scratch_url=f"{PG_BASE}/crt_drill")
    assert report.ok, report.failures
    name = report.scratch.split()[2]
    assert name.startswith("crt_drill_")
    with pg_template[0].connect() as c:  # created and dropped again
        assert c.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first() is None


# ------------------------------------------------------------------------------------------ CLI
def test_cli_backup_restore_drill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for k in list(__import__("os").environ):
        if k.startswith("CREDITRISK_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("CREDITRISK_MODEL__SIGNING_KEY", SESSION_SIGNING_KEY)  # the copied registries are signed with it
    monkeypatch.setenv("CREDITRISK_AUTH__MFA_REQUIRED", "false")  # password-only sign-in (tests/mfa_helpers.py)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CREDITRISK_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("CREDITRISK_MODEL__REGISTRY_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("CREDITRISK_AUTH__COOKIE_KEY", "k" * 40)
    runner = CliRunner()
    assert runner.invoke(app, ["db", "migrate"]).exit_code == 0
    res = runner.invoke(app, ["backup", "--json"])
    assert res.exit_code == 0, res.output
    backup = json.loads(res.output)
    assert "k" * 40 not in (Path(backup["location"]) / "settings.json").read_text()

    res = runner.invoke(app, ["restore", backup["location"], "--database-url", f"sqlite:///{tmp_path / 'r.db'}",
                              "--registry-dir", str(tmp_path / "r_models")])
    assert res.exit_code == 0, res.output
    assert "audit chain intact" in res.output

    monkeypatch.setenv("CREDITRISK_OPS__RPO_TARGET_SECONDS", "0.000001")  # any age is too old
    res = runner.invoke(app, ["drill"])  # the newest backup: the one above
    assert res.exit_code == 1 and "DRILL FAILED" in res.output and "RPO target" in res.output, res.output

    db_file = next(Path(backup["location"], "db").glob("*audit_log*"))
    db_file.write_bytes(db_file.read_bytes()[:-3])  # truncated
    res = runner.invoke(app, ["restore", backup["location"], "--database-url", f"sqlite:///{tmp_path / 'x.db'}"])
    assert res.exit_code == 1 and "corrupted" in res.output and db_file.name in res.output.replace("\n", "")


def test_backup_timestamps_are_utc_and_unique(small: Services, tmp_path: Path) -> None:
    backups = BackupService(small.db, small.settings, small.clock)
    a, b = backups.backup(str(tmp_path / "b")), backups.backup(str(tmp_path / "b"))  # same second
    assert a.id == small.clock.now().strftime("%Y%m%dT%H%M%SZ") and b.id == f"{a.id}-2"
    assert datetime.fromisoformat(b.manifest.snapshot_at) - small.clock.now() == timedelta(0)
