"""`creditrisk backup`, `creditrisk restore` and `creditrisk drill` (see backend/operations/backup*.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

LOCATION_HELP = ("A folder (the backup goes in <folder>/<UTC timestamp>/), a file ending .tar.gz, or "
                 "s3://bucket/prefix. Default: CREDITRISK_OPS__BACKUP_LOCATION, else <data dir>/backups")


def _one_line(exc: Exception) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}" if str(exc) else type(exc).__name__


def backup(
    to: Annotated[str | None, typer.Option("--to", help=LOCATION_HELP)] = None,
    archive: Annotated[bool, typer.Option(help="Write one <timestamp>.tar.gz file instead of a folder")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest summary as JSON")] = False,
) -> None:
    """Back up the database (one consistent snapshot), the model registry and the non-secret settings."""
    from backend.operations.backup_format import BackupError
    from backend.platform.cli import err, fail, out, services

    svc = services(migrate=False)
    try:
        res = svc.backups(echo=None if as_json else out.print).backup(to, archive=archive)
    except BackupError as exc:
        fail(str(exc), code=1)
    except Exception as exc:  # noqa: BLE001 - one clear line instead of a traceback
        fail(f"backup failed: {_one_line(exc)}", code=1)
    finally:
        svc.close()
    m = res.manifest
    if as_json:
        out.print_json(json.dumps({"id": res.id, "location": res.location, "snapshot_at": m.snapshot_at,
                                   "newest_data_at": m.newest_data_at, "alembic_revision": m.alembic_revision,
                                   "rows": {t.name: t.rows for t in m.tables}, "bytes": m.bytes,
                                   "registry_files": m.registry.get("files", 0), "seconds": round(res.seconds, 3)}))
        return
    out.print(res.summary(), highlight=False, soft_wrap=True)
    out.print(f"written to {res.location}", highlight=False, soft_wrap=True)
    err.print("secrets are not in the backup: keep them in your secret store (see README)", highlight=False)


def restore(
    source: Annotated[str, typer.Argument(metavar="FROM", help="A backup folder, a .tar.gz archive or "
                                          "s3://bucket/prefix/<id>")],
    database_url: Annotated[str | None, typer.Option("--database-url", help="The EMPTY database to restore into "
                                                     "(sqlite:///path or postgresql://...)")] = None,
    registry_dir: Annotated[Path | None, typer.Option(help="Where to write the model registry files "
                                                      "(default: the configured registry folder)")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite files in a non-empty registry folder (the database "
                                        "must still be empty)")] = False,
    check: Annotated[bool, typer.Option("--check", help="Only verify the backup's checksums; restore nothing")] = False,
) -> None:
    """Verify a backup completely, then restore it into an empty database and a registry folder."""
    from backend.operations.adapters.s3 import s3_client_factory
    from backend.operations.backup_format import BackupError
    from backend.operations.backup_restore import RestoreService
    from backend.platform.cli import fail, out, settings

    s = settings()
    svc = RestoreService(s3=s3_client_factory(s.ops), echo=out.print, chunk=s.ops.backup_chunk_rows)
    try:
        if check:
            m = svc.verify(source)
            out.print(f"backup {m.id} is intact: {len(m.files)} files, {m.rows:,} rows, schema {m.alembic_revision}, "
                      f"snapshot at {m.snapshot_at}", highlight=False, soft_wrap=True)
            return
        if not database_url:
            fail("--database-url is required (the empty database to restore into)")
            return
        rep = svc.restore(source, database_url, registry_dir=registry_dir or s.model.registry_dir, force=force)
    except BackupError as exc:
        fail(str(exc), code=1)
        return
    except Exception as exc:  # noqa: BLE001 - one clear line instead of a traceback
        fail(f"restore failed: {_one_line(exc)}", code=1)
        return
    out.print(f"restored backup {rep.backup_id} into {rep.target}: {len(rep.table_rows)} tables, {rep.rows:,} rows, "
              f"audit chain intact ({rep.chain.rows:,} rows), {rep.registry_files} registry files in "
              f"{rep.registry_dir}; schema now {rep.schema_now}; {rep.seconds:.1f}s", highlight=False, soft_wrap=True)
    out.print("restore the secrets (cookie key, API signing keys, PII keys, LLM keys) from your secret store "
              "before starting the services", highlight=False, soft_wrap=True)


def drill(
    source: Annotated[str | None, typer.Option("--from", help="A backup (folder, .tar.gz or s3:// URL), or a "
                                               "folder or s3://bucket/prefix holding backups: the newest is used. "
                                               "Default: CREDITRISK_OPS__BACKUP_LOCATION, else <data dir>/backups")
                      ] = None,
    fresh: Annotated[bool, typer.Option(help="Take a new backup first and drill on it")] = False,
    scratch_url: Annotated[str | None, typer.Option(help="postgresql://.../NAME: restore into a new database "
                                                    "NAME_<random> created and dropped by the drill "
                                                    "(default: a temporary SQLite file)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Restore the newest backup into a scratch database; check counts and the audit chain; report RTO/RPO.

    Exits 1 when anything fails or a target is missed. The result is recorded as evidence.
    """
    from backend.platform.cli import fail, out, services

    svc = services(migrate=False)
    try:
        rep = svc.drills(echo=None if as_json else out.print).run(
            source, fresh=fresh, scratch_url=scratch_url)
    except Exception as exc:  # noqa: BLE001 - one clear line instead of a traceback
        fail(f"drill failed: {_one_line(exc)}", code=1)
        return
    finally:
        svc.close()
    if as_json:
        out.print_json(json.dumps(rep.payload()))
    else:
        _print_drill(rep)
    raise typer.Exit(0 if rep.ok else 1)


def _print_drill(rep: Any) -> None:
    from rich.markup import escape

    from backend.platform.cli import out

    def line(label: str, value: str) -> None:
        out.print(f"{label:18} {value}", highlight=False, soft_wrap=True)

    out.print("[bold green]DRILL PASSED[/]" if rep.ok else "[bold red]DRILL FAILED[/]")
    line("backup", f"{rep.backup_id or '-'} ({rep.location or 'none'})")
    line("restored into", rep.scratch or "-")
    line("tables / rows", f"{rep.tables} / {rep.rows:,} (counts {'match' if rep.counts_ok else 'DIFFER'})")
    line("audit chain", f"{'intact' if rep.chain_ok else 'BROKEN'} ({rep.chain_rows:,} rows)")
    line("registry files", str(rep.registry_files))
    rto = "n/a" if rep.rto_seconds is None else f"{rep.rto_seconds:.1f}s"
    rpo = "n/a" if rep.rpo_seconds is None else f"{rep.rpo_seconds:.0f}s"
    line("RTO (restore time)", f"{rto}  target {rep.rto_target_seconds:.0f}s")
    line("RPO (data age)", f"{rpo}  target {rep.rpo_target_seconds:.0f}s  (snapshot {rep.snapshot_at or '-'})")
    line("newest data", rep.newest_data_at or "-")
    for f in rep.failures:
        out.print(f"[red]- {escape(f)}[/]", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("backup")(backup)
    app.command("restore")(restore)
    app.command("drill")(drill)
