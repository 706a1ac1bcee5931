"""``creditrisk backup``: a portable, consistent, verifiable copy of everything needed to rebuild.

What goes in: every table of the database (read in one snapshot, streamed in primary-key order in
chunks, so memory stays flat however large the tables), the schema's Alembic revision, every file
of the model registry byte for byte, and the settings without their secrets. What stays out: the
secrets themselves (they belong to the secret store, see the README). The format is described in
:mod:`backend.operations.backup_format`; restore and the drill live in ``backup_restore`` and
``backup_drill``.

Each backup is recorded as ``backup`` evidence (ok or failed) for the readiness checklist.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, SecretStr
from pydantic_core import to_jsonable_python

from backend.compliance import record as evidence_record
from backend.models import ModelSettings
from backend.operations import backup_queries as repo_backup
from backend.operations.adapters.s3 import s3_client_factory
from backend.operations.backup_format import (
    SETTINGS_FILE,
    BackupError,
    Manifest,
    TableEntry,
    encode_row,
    file_sha256,
    write_gzip_blocks,
    write_manifest,
)
from backend.operations.backup_store import (
    ARCHIVE_SUFFIX,
    S3ClientFactory,
    S3Url,
    has_manifest_s3,
    is_archive,
    is_s3,
    next_id,
    pack_archive,
    publish_folder,
    upload_folder,
)
from backend.operations.config import OpsSettings
from backend.platform.db.engine import Database
from backend.platform.ports import Clock

#: Datetime columns whose newest value says how fresh the copied data is.
NEWEST_DATA_COLUMNS = ("at", "created_at", "recorded_at")
ARCHIVE_EXISTS = "{path} already exists; a backup never overwrites a file"
NO_REVISION = "the database has no schema (no alembic_version); nothing to back up"
Echo = Callable[[str], None]



class BackupSettings(Protocol):
    """What a backup reads from the settings (all of them are written, secrets omitted): ``data_dir``, ``ops``, ``model``."""

    @property
    def data_dir(self) -> Path: ...

    @property
    def ops(self) -> OpsSettings: ...

    @property
    def model(self) -> ModelSettings: ...


def default_location(settings: BackupSettings) -> str:
    return settings.ops.backup_location or str(settings.data_dir / "backups")


@dataclass(frozen=True)
class BackupResult:
    id: str
    location: str  # the backup itself: a folder, an archive or an s3:// URL
    manifest: Manifest
    seconds: float

    def summary(self) -> str:
        m = self.manifest
        return (f"backup {self.id}: {len(m.tables)} tables, {m.rows:,} rows, {m.registry.get('files', 0)} registry "
                f"files, {m.bytes / 1e6:.1f} MB in {self.seconds:.1f}s; snapshot at {m.snapshot_at}")


def _redact_url(value: str) -> tuple[str, bool]:
    parts = urlsplit(value)
    if not parts.password:
        return value, False
    host = parts.hostname or ""
    netloc = f"{parts.username}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc)), True


def redacted_settings(settings: BackupSettings) -> dict[str, Any]:
    """The settings as JSON without any secret: SecretStr fields and URL passwords are omitted and listed."""
    if not isinstance(settings, BaseModel):
        raise TypeError("a backup records the settings model itself")
    omitted: list[str] = []

    def walk(model: BaseModel, prefix: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in type(model).model_fields:
            value, path = getattr(model, name), prefix + name
            if isinstance(value, SecretStr):
                omitted.append(path)
            elif isinstance(value, BaseModel):
                out[name] = walk(value, path + ".")
            elif isinstance(value, str) and "://" in value:
                out[name], had = _redact_url(value)
                if had:
                    omitted.append(f"{path} (password)")
            else:
                out[name] = to_jsonable_python(value, fallback=lambda _v: "<omitted>")
        return out

    body = walk(settings, "")  # narrowed to BaseModel above
    return {"settings": body, "omitted_secrets": omitted,
            "note": "secrets are never in a backup: restore them from the secret store"}


class BackupService:
    def __init__(self, db: Database, settings: BackupSettings, clock: Clock, *,
                 s3: S3ClientFactory | None = None, echo: Echo | None = None) -> None:
        self.db, self.settings, self.clock = db, settings, clock
        self.s3 = s3 or s3_client_factory(settings.ops)
        self.echo = echo or (lambda _m: None)

    def backup(self, to: str | None = None, *, archive: bool = False, record: bool = True) -> BackupResult:
        """Back up to ``to`` (default: ``ops.backup_location`` or ``<data_dir>/backups``).

        ``to`` is a folder that receives ``<id>/`` (or ``<id>.tar.gz`` with ``archive``), an
        explicit ``*.tar.gz`` path, or ``s3://bucket/prefix`` (objects under ``prefix/<id>/``).
        """
        location = to or default_location(self.settings)
        start = time.perf_counter()
        try:
            result = self._backup(location, archive, start)
        except Exception as exc:
            if record:
                self._record_failure(location, exc)
            raise
        if record:
            m = result.manifest
            evidence_record(self.db, self.clock, kind="backup", ok=True, summary=result.summary(), payload={
                "id": result.id, "location": result.location, "tables": len(m.tables), "rows": m.rows,
                "table_rows": {t.name: t.rows for t in m.tables}, "bytes": m.bytes,
                "registry_files": m.registry.get("files", 0), "alembic_revision": m.alembic_revision,
                "snapshot_at": m.snapshot_at, "newest_data_at": m.newest_data_at,
                "seconds": round(result.seconds, 3)})
        return result

    def _record_failure(self, location: str, exc: Exception) -> None:
        try:
            evidence_record(self.db, self.clock, kind="backup", ok=False,
                            summary=f"backup to {location} FAILED: {type(exc).__name__}: {exc}"[:500],
                            payload={"location": location, "error": f"{type(exc).__name__}: {exc}"[:1000]})
        except Exception:  # noqa: BLE001, S110 - the database may be the thing that failed
            pass

    # ---------------------------------------------------------------------------------- steps
    def _backup(self, location: str, archive: bool, start: float) -> BackupResult:
        stamp = self.clock.now().strftime("%Y%m%dT%H%M%SZ")
        if is_s3(location):
            url = S3Url.parse(location)
            client = self.s3()
            backup_id = next_id(lambda i: has_manifest_s3(client, S3Url(url.bucket, url.key(i))), stamp)
            final = str(S3Url(url.bucket, url.key(backup_id)))
            build = Path(tempfile.mkdtemp(prefix="creditrisk-backup-"))
        elif is_archive(location):
            dest = Path(location)
            if dest.exists():
                raise BackupError(ARCHIVE_EXISTS.format(path=dest))
            backup_id = stamp
            final = str(dest)
            build = Path(tempfile.mkdtemp(prefix=".creditrisk-backup-", dir=_mkdir(dest.parent)))
        else:
            root = Path(location)
            suffix = ARCHIVE_SUFFIX if archive else ""
            backup_id = next_id(lambda i: (root / f"{i}{suffix}").exists(), stamp)
            final = str(root / f"{backup_id}{suffix}")
            build = Path(tempfile.mkdtemp(prefix=f".{backup_id}.partial-", dir=_mkdir(root)))
        try:
            manifest = self._build(build, backup_id)
            if is_s3(location):
                self.echo(f"uploading to {final}")
                upload_folder(client, S3Url.parse(location), build, backup_id)
            elif is_archive(location) or archive:
                pack_archive(build, Path(final))
            else:
                publish_folder(build, Path(final))
        finally:
            if build.exists():
                shutil.rmtree(build, ignore_errors=True)
        return BackupResult(backup_id, final, manifest, time.perf_counter() - start)

    def _build(self, folder: Path, backup_id: str) -> Manifest:
        files: dict[str, dict[str, Any]] = {}
        (folder / "db").mkdir()
        chunk = self.settings.ops.backup_chunk_rows
        snapshot_at = self.clock.now()  # at or before the snapshot taken just below
        newest: datetime | None = None
        tables: list[TableEntry] = []
        with repo_backup.snapshot(self.db.engine) as conn:
            revision = repo_backup.current_revision(conn)
            if revision is None:
                raise BackupError(NO_REVISION)
            for n, table in enumerate(repo_backup.app_tables(), start=1):
                columns = repo_backup.existing_columns(conn, table)
                if columns is None:
                    continue  # not created at this revision
                kinds = [repo_backup.column_kind(table.c[c].type, (table.name, c)) for c in columns]
                entry = TableEntry(table.name, f"db/{n:02d}_{table.name}.jsonl.gz", columns, kinds)
                stamps = [i for i, c in enumerate(columns) if c in NEWEST_DATA_COLUMNS and kinds[i] == "datetime"]

                def blocks(t: Any = table, e: TableEntry = entry, st: list[int] = stamps) -> Iterator[bytes]:
                    nonlocal newest
                    for rows in repo_backup.stream_rows(conn, t, e.columns, chunk):
                        e.rows += len(rows)
                        for i in st:
                            top = max((r[i] for r in rows if r[i] is not None), default=None)
                            if top is not None and (newest is None or top > newest):
                                newest = top
                        yield b"".join(encode_row(r, e.kinds) for r in rows)

                digest, size = write_gzip_blocks(folder / entry.file, blocks())
                files[entry.file] = {"sha256": digest, "bytes": size}
                tables.append(entry)
                self.echo(f"  {table.name:22} {entry.rows:>10,} rows")
        registry = self._copy_registry(folder, files)
        settings_path = folder / SETTINGS_FILE
        settings_path.write_text(json.dumps(redacted_settings(self.settings), indent=1, sort_keys=True))
        digest, size = file_sha256(settings_path)
        files[SETTINGS_FILE] = {"sha256": digest, "bytes": size}
        manifest = Manifest(
            id=backup_id, created_at=self.clock.now().isoformat(timespec="microseconds"),
            snapshot_at=snapshot_at.isoformat(timespec="microseconds"),
            source={"dialect": self.db.dialect, "database": self.db.engine.url.render_as_string(hide_password=True)},
            alembic_revision=revision, newest_data_at=newest.isoformat(timespec="microseconds") if newest else None,
            tables=tables, files=files, registry=registry)
        write_manifest(folder, manifest)
        return manifest

    def _copy_registry(self, folder: Path, files: dict[str, dict[str, Any]]) -> dict[str, Any]:
        src = Path(self.settings.model.registry_dir)
        count = total = 0
        if src.is_dir():
            for p in sorted(src.rglob("*")):
                if not p.is_file():
                    continue
                rel = "registry/" + p.relative_to(src).as_posix()
                dest = folder / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(p, dest)
                digest, size = file_sha256(dest)
                files[rel] = {"sha256": digest, "bytes": size}
                count, total = count + 1, total + size
        self.echo(f"  model registry         {count:>10,} files ({src})")
        return {"dir": str(src), "files": count, "bytes": total}


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p

