"""``creditrisk restore``: verify a backup completely, then load it into an empty database.

Order of work, each step refusing with a clear message before anything is written:

1. fetch (extract an archive / download from S3) and check the manifest's checksum and every
   file's size and sha256 (a corrupted or incomplete backup names the bad file);
2. check the schema revision is known to this code, the target database holds no rows and the
   target registry folder is empty (``force`` lets the registry files be overwritten; a database
   is only ever restored into an empty one: create a new database rather than overwrite one);
3. migrate the target to the backup's revision; load every table in foreign-key order with bulk
   inserts, reset PostgreSQL sequences, count the rows and verify the audit hash chain, all in
   one transaction that commits only if the counts and the chain are right;
4. write the registry files (each re-checked), then upgrade the schema to this code's newest revision.

The backup may come from another backend (SQLite to PostgreSQL and back).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.compliance import ChainReport
from backend.operations import backup_queries as repo_backup
from backend.operations.backup_format import (
    BackupError,
    Manifest,
    decode_row,
    file_sha256,
    read_gzip_lines,
    verify_folder,
)
from backend.operations.backup_store import Fetched, S3ClientFactory
from backend.platform.db.engine import Database, make_engine

TARGET_NOT_EMPTY = ("the target database is not empty (table {table} has rows); a backup is restored only into an "
                    "empty database: create a new one and pass its URL")
REGISTRY_NOT_EMPTY = "the registry folder {dir} is not empty; pass --force to overwrite its files"
UNKNOWN_REVISION = ("the backup's schema revision {rev} is unknown to this version of creditrisk; restore it with "
                    "the version that made it")
UNKNOWN_TABLE = "the backup holds table {table}, unknown to this version of creditrisk"
COUNT_MISMATCH = "restored {table}: {got} rows where the backup holds {want}; nothing was committed"
CHAIN_BROKEN = "the restored audit chain is broken at seq {seq}: {detail}; nothing was committed"
NAN_IN_SQLITE = ("{table}.{column} holds NaN, which SQLite cannot store; restore this backup into PostgreSQL; "
                 "nothing was committed")
REGISTRY_CHANGED = "registry file {file} changed while it was restored; restore again"
Echo = Callable[[str], None]


def sqlalchemy_url(url: str) -> str:
    """A database URL as SQLAlchemy wants it (psycopg 3 for PostgreSQL)."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


@dataclass(frozen=True)
class RestoreReport:
    backup_id: str
    source: str
    target: str  # without password
    revision: str | None  # the backup's
    schema_now: str | None  # the target's after the upgrade
    table_rows: dict[str, int]  # counted in the target
    registry_dir: str
    registry_files: int
    chain: ChainReport
    seconds: float
    manifest: Manifest = field(repr=False)

    @property
    def rows(self) -> int:
        return sum(self.table_rows.values())


class RestoreService:
    def __init__(self, *, s3: S3ClientFactory | None = None, echo: Echo | None = None,
                 upgrade: bool = True, chunk: int = 2000) -> None:
        self.s3, self.upgrade, self.chunk = s3, upgrade, chunk
        self.echo = echo or (lambda _m: None)

    def verify(self, location: str) -> Manifest:
        """Check a backup without restoring it (raises :class:`BackupError` naming the bad file)."""
        fetched = Fetched(location, self.s3)
        try:
            return verify_folder(fetched.folder, location)
        finally:
            fetched.close()

    def restore(self, location: str, database_url: str, *, registry_dir: Path | None,
                force: bool = False) -> RestoreReport:
        start = time.perf_counter()
        fetched = Fetched(location, self.s3)
        try:
            m = verify_folder(fetched.folder, location)
            self.echo(f"backup {m.id} verified: {len(m.files)} files, checksums match")
            target = Database(make_engine(sqlalchemy_url(database_url)))
            try:
                return self._restore(fetched.folder, location, m, target, registry_dir, force, start)
            finally:
                target.dispose()
        finally:
            fetched.close()

    def _restore(self, folder: Path, location: str, m: Manifest, target: Database, registry_dir: Path | None,
                 force: bool, start: float) -> RestoreReport:
        tables = {t.name: t for t in repo_backup.app_tables()}
        if m.alembic_revision is None or not repo_backup.known_revision(m.alembic_revision):
            raise BackupError(UNKNOWN_REVISION.format(rev=m.alembic_revision))
        for entry in m.tables:
            if entry.name not in tables:
                raise BackupError(UNKNOWN_TABLE.format(table=entry.name))
        busy = repo_backup.first_nonempty_table(target)
        if busy:
            raise BackupError(TARGET_NOT_EMPTY.format(table=busy))
        if registry_dir is not None and registry_dir.is_dir() and any(registry_dir.iterdir()) and not force:
            raise BackupError(REGISTRY_NOT_EMPTY.format(dir=registry_dir))
        if repo_backup.migrate_to(target, m.alembic_revision):
            self.echo(f"target schema at revision {m.alembic_revision}")
        counts: dict[str, int] = {}
        with repo_backup.load_transaction(target) as conn:
            for entry in m.tables:
                writer = repo_backup.TableWriter(conn, tables[entry.name], entry.columns)
                batch: list[tuple[Any, ...]] = []
                # SQLite has no NaN (it would store NULL): refuse rather than change a value
                nan_check = [] if writer.keeps_nan else [i for i, k in enumerate(entry.kinds) if k == "float"]
                for line in read_gzip_lines(folder / entry.file):
                    row = decode_row(line, entry.kinds)
                    for i in nan_check:
                        if row[i] != row[i]:
                            raise BackupError(NAN_IN_SQLITE.format(table=entry.name, column=entry.columns[i]))
                    batch.append(row)
                    if len(batch) >= self.chunk:
                        writer.insert(batch)
                        batch = []
                writer.insert(batch)
                writer.reset_sequences()
                counts[entry.name] = repo_backup.count_rows(conn, tables[entry.name])
                if counts[entry.name] != entry.rows:
                    raise BackupError(COUNT_MISMATCH.format(table=entry.name, got=counts[entry.name], want=entry.rows))
                self.echo(f"  {entry.name:22} {entry.rows:>10,} rows")
            chain = repo_backup.verify_audit_chain(conn) if "audit_log" in counts else ChainReport(0, True)
            if not chain.ok:
                raise BackupError(CHAIN_BROKEN.format(seq=chain.first_broken_seq, detail=chain.detail))
        self.echo(f"audit chain verified: {chain.rows:,} rows")
        files = self._restore_registry(folder, m, registry_dir)
        if self.upgrade:
            target.migrate()
        return RestoreReport(m.id, location, target.engine.url.render_as_string(hide_password=True),
                             m.alembic_revision, target.current_revision(), counts,
                             str(registry_dir) if registry_dir else "", files, chain,
                             time.perf_counter() - start, m)

    def _restore_registry(self, folder: Path, m: Manifest, registry_dir: Path | None) -> int:
        if registry_dir is None:
            return 0
        n = 0
        for rel, info in sorted(m.files.items()):
            if not rel.startswith("registry/"):
                continue
            src = folder / rel
            dest = registry_dir / rel[len("registry/"):]
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(dest.name + ".restoring")
            tmp.write_bytes(src.read_bytes())
            if file_sha256(tmp)[0] != info["sha256"]:
                tmp.unlink()
                raise BackupError(REGISTRY_CHANGED.format(file=rel))
            tmp.replace(dest)
            n += 1
        self.echo(f"model registry: {n} files written to {registry_dir}")
        return n
