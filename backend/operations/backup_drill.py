"""``creditrisk drill``: prove the backups restore, and how fast and how fresh.

The drill takes the newest backup at the backup location (or makes one with ``fresh``), restores
it into a scratch database (a temporary SQLite file, or a throw-away PostgreSQL database it creates
and drops), counts every table against the manifest, verifies the audit hash chain, and reports:

* **RTO**, the measured restore time (fetch, checksums, schema, load, verification, registry);
* **RPO**, the age of the newest restorable data: now minus the backup's snapshot time (every
  change committed after the snapshot would be lost if the database were lost now). The manifest's
  newest data timestamp is reported too, for information.

Both are compared with ``ops.rto_target_seconds`` / ``ops.rpo_target_seconds``; the result is
recorded as ``backup_drill`` evidence. A drill on a fresh backup proves the restore path; a drill
on the newest existing backup also proves the backup schedule keeps up with the RPO.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from backend.compliance import AuditService
from backend.compliance import record as evidence_record
from backend.operations import backup_queries as repo_backup
from backend.operations.adapters.s3 import s3_client_factory
from backend.operations.backup import BackupService, BackupSettings, default_location
from backend.operations.backup_format import MANIFEST, BackupError, Manifest
from backend.operations.backup_restore import RestoreService, sqlalchemy_url
from backend.operations.backup_store import (
    NO_BACKUP_FOUND,
    S3ClientFactory,
    S3Url,
    has_manifest_s3,
    is_archive,
    is_s3,
    newest_local,
    newest_s3,
)
from backend.platform.db.engine import Database, make_engine
from backend.platform.ports import Clock

RTO_MISSED = "restore took {rto:.1f}s, above the RTO target of {target:.0f}s"
RPO_MISSED = ("the backup's snapshot is {rpo:.0f}s old ({at}), above the RPO target of {target:.0f}s: "
              "backups are not taken often enough")
COUNT_DIFFERS = "table {table}: {got} rows in the restored database, {want} in the manifest"
CHAIN_FAILED = "audit chain of the restored database broken at seq {seq}: {detail}"
Echo = Callable[[str], None]



@dataclass
class DrillReport:
    ok: bool
    backup_id: str | None
    location: str | None
    scratch: str
    rto_seconds: float | None
    rpo_seconds: float | None
    rto_target_seconds: float
    rpo_target_seconds: float
    tables: int = 0
    rows: int = 0
    table_rows: dict[str, int] = field(default_factory=dict)
    counts_ok: bool = False
    chain_ok: bool = False
    chain_rows: int = 0
    registry_files: int = 0
    snapshot_at: str | None = None
    newest_data_at: str | None = None
    checked_at: str = ""
    failures: list[str] = field(default_factory=list)

    def summary(self) -> str:
        verdict = "PASSED" if self.ok else "FAILED"
        if self.backup_id is None:
            return f"backup drill {verdict}: {'; '.join(self.failures)}"
        return (f"backup drill {verdict}: backup {self.backup_id}, {self.tables} tables, {self.rows:,} rows, "
                f"chain {'ok' if self.chain_ok else 'BROKEN'}; RTO {_s(self.rto_seconds)} "
                f"(target {self.rto_target_seconds:.0f}s), RPO {_s(self.rpo_seconds)} "
                f"(target {self.rpo_target_seconds:.0f}s)" + (f"; {'; '.join(self.failures)}" if self.failures else ""))

    def payload(self) -> dict[str, Any]:
        return asdict(self)


def _s(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.1f}s"


class DrillService:
    def __init__(self, db: Database, settings: BackupSettings, clock: Clock, *,
                 s3: S3ClientFactory | None = None, echo: Echo | None = None) -> None:
        self.db, self.settings, self.clock = db, settings, clock
        self.s3 = s3 or s3_client_factory(settings.ops)
        self.echo = echo or (lambda _m: None)

    def newest(self, location: str) -> str | None:
        """The backup at ``location`` itself, or the newest one under it."""
        if is_s3(location):
            url = S3Url.parse(location)
            client = self.s3()
            if has_manifest_s3(client, url):
                return str(url)
            best = newest_s3(client, url)
            return str(best) if best else None
        path = Path(location)
        if (is_archive(location) and path.is_file()) or (path / MANIFEST).is_file():
            return location
        found = newest_local(path)
        return str(found) if found else None

    def run(self, source: str | None = None, *, fresh: bool = False, scratch_url: str | None = None,
            record: bool = True) -> DrillReport:
        ops = self.settings.ops
        location = source or default_location(self.settings)
        report = DrillReport(False, None, None, "", None, None, ops.rto_target_seconds, ops.rpo_target_seconds)
        try:
            self._run(report, location, fresh, scratch_url)
        except BackupError as exc:
            report.failures.append(str(exc))
        report.checked_at = self.clock.now().isoformat(timespec="seconds")
        report.ok = not report.failures
        if record:
            evidence_record(self.db, self.clock, kind="backup_drill", ok=report.ok, summary=report.summary(),
                            payload=report.payload())
        return report

    def _run(self, report: DrillReport, location: str, fresh: bool, scratch_url: str | None) -> None:
        if fresh:
            self.echo(f"taking a fresh backup to {location}")
            chosen: str | None = BackupService(self.db, self.settings, self.clock, s3=self.s3,
                                               echo=self.echo).backup(location).location
        else:
            chosen = self.newest(location)
        if chosen is None:
            raise BackupError(NO_BACKUP_FOUND.format(where=location))
        report.location = chosen
        self.echo(f"restoring {chosen}")
        with _scratch(scratch_url) as (url, registry_dir, label):
            report.scratch = label
            start = time.perf_counter()
            try:
                restored = RestoreService(s3=self.s3, echo=self.echo, chunk=self.settings.ops.backup_chunk_rows) \
                    .restore(chosen, url, registry_dir=registry_dir)
            finally:
                report.rto_seconds = round(time.perf_counter() - start, 3)
            self._check(report, restored.manifest, url, restored.registry_files)

    def _check(self, report: DrillReport, m: Manifest, url: str, registry_files: int) -> None:
        report.backup_id, report.snapshot_at, report.newest_data_at = m.id, m.snapshot_at, m.newest_data_at
        report.registry_files = registry_files
        scratch = Database(make_engine(sqlalchemy_url(url)))
        try:
            report.table_rows = repo_backup.count_tables(scratch, [e.name for e in m.tables])
            chain = AuditService(scratch).verify()
        finally:
            scratch.dispose()
        report.tables, report.rows = len(report.table_rows), sum(report.table_rows.values())
        diffs = [COUNT_DIFFERS.format(table=e.name, got=report.table_rows[e.name], want=e.rows)
                 for e in m.tables if report.table_rows[e.name] != e.rows]
        report.counts_ok = not diffs
        report.failures += diffs
        report.chain_ok, report.chain_rows = chain.ok, chain.rows
        if not chain.ok:
            report.failures.append(CHAIN_FAILED.format(seq=chain.first_broken_seq, detail=chain.detail))
        rpo = max(0.0, (self.clock.now() - m.snapshot_time()).total_seconds())
        report.rpo_seconds = round(rpo, 3)
        if report.rto_seconds is not None and report.rto_seconds > report.rto_target_seconds:
            report.failures.append(RTO_MISSED.format(rto=report.rto_seconds, target=report.rto_target_seconds))
        if rpo > report.rpo_target_seconds:
            report.failures.append(RPO_MISSED.format(rpo=rpo, at=m.snapshot_at, target=report.rpo_target_seconds))


@contextmanager
def _scratch(scratch_url: str | None) -> Iterator[tuple[str, Path, str]]:
    """A throw-away database URL and registry folder, removed afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix="creditrisk-drill-"))
    try:
        if not scratch_url:
            yield f"sqlite:///{tmp / 'drill.db'}", tmp / "models", "temporary SQLite file"
            return
        with repo_backup.throwaway_database(sqlalchemy_url(scratch_url)) as (url, name):
            yield url, tmp / "models", f"PostgreSQL database {name} (dropped afterwards)"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
