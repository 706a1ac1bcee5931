"""`creditrisk audit …` (the tamper-evident trail) and, from :mod:`.pii_cli`, `creditrisk pii …`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from backend.platform.cli import err, guarded, out, progress_bar, services

audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)


@audit_app.command("verify")
def audit_verify(
    archive: Annotated[Path | None, typer.Option("--archive", help="Verify this archive file (JSON Lines) "
                                                 "instead of the database; needs no database")] = None,
    anchor: Annotated[str | None, typer.Option(help="Accept the live chain starting at this anchor (the "
                                               "archive's header 'anchor') after archived rows were deleted")] = None,
) -> None:
    """Recompute the hash chain and report the first broken link (exit 1 if broken)."""
    from backend.compliance import verify_archive

    if archive is not None:
        check = verify_archive(archive)
        if check.ok:
            h = check.header
            out.print(f"archive intact: {check.rows} rows, seq {h['first_seq']}..{h['last_seq']}, "
                      f"starts at {h.get('start_prev_mac', h.get('start_prev_hash'))}, anchor {h['anchor']}", highlight=False)
            return
        err.print(f"archive BROKEN at line {check.first_broken_line}: {check.detail} ({check.rows} rows read)",
                  highlight=False)
        raise typer.Exit(1)
    from backend.compliance import AuditKeyError

    svc = services()
    report = guarded(lambda: svc.audit.verify((anchor,) if anchor else (), progress=progress_bar("audit verify")),
                     AuditKeyError)
    tail = (f"{report.batches} batches, {report.pending} pending, {report.archived} archived; "
            f"held to the {report.checkpoint}")
    if report.ok:
        start = f", starting at archive anchor {report.start_anchor}" if report.start_anchor else ""
        out.print(f"audit chain intact: {report.rows} rows{start} ({tail})", highlight=False)
        return
    err.print(f"audit chain BROKEN at seq {report.first_broken_seq}: {report.detail} ({report.rows} rows read; "
              f"{tail})", highlight=False)
    raise typer.Exit(1)


@audit_app.command("sequence")
def audit_sequence(
    once: Annotated[bool, typer.Option("--once", help="Seal what is committed now, write a checkpoint, exit")] = False,
) -> None:
    """Seal committed audit rows into signed batches: one elected sequencer at a time (PostgreSQL
    advisory lock; a second copy stands by and takes over when the first dies). Stop with Ctrl-C."""
    import signal
    import threading

    from backend.compliance import AuditKeyError

    svc = services()
    if once:
        n = guarded(svc.audit.seal, AuditKeyError)
        cp = svc.audit.checkpoint()
        out.print(f"sealed {n} rows; checkpoint batch {cp['batch']} through seq {cp['last_seq']}", highlight=False)
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    out.print("audit sequencer running (Ctrl-C stops it)", highlight=False)
    try:
        svc.audit.sequencer.run(stop, on_leader=lambda lead: out.print(
            "elected: sealing" if lead else "lost the database: standing by", highlight=False))
    except KeyboardInterrupt:
        stop.set()


@audit_app.command("retention")
def audit_retention(as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """Show the retention period, the oldest row and how many rows are past retention."""
    svc = services()
    r = svc.audit.retention(svc.settings.audit.retention_days, svc.clock.now())
    if as_json:
        out.print_json(json.dumps(r.__dict__, default=str))
        return
    out.print(f"retention        {r.retention_days} days (CREDITRISK_AUDIT__RETENTION_DAYS)", highlight=False)
    out.print(f"cutoff           {r.cutoff.isoformat(timespec='seconds')} (rows written before it are past retention)",
              highlight=False)
    out.print(f"rows             {r.total_rows}", highlight=False)
    oldest = f"seq {r.oldest_seq} at {r.oldest_at.isoformat(timespec='seconds')}" if r.oldest_at else "none"
    out.print(f"oldest row       {oldest}", highlight=False)
    out.print(f"past retention   {r.past_retention}", highlight=False)
    if r.older_than_cutoff != r.past_retention:
        out.print(f"note: {r.older_than_cutoff} rows are older than the cutoff, but an archive takes only the "
                  f"unbroken start of the chain ({r.past_retention} rows)", highlight=False)
    if r.past_retention:
        out.print("archive them with `creditrisk audit archive --out FILE`; deleting them afterwards is a DBA step "
                  "(see README)", highlight=False)


@audit_app.command("archive")
def audit_archive(
    out_file: Annotated[Path, typer.Option("--out", help="The archive file to write (JSON Lines; never overwritten)")],
) -> None:
    """Write the rows past retention to a verified JSON Lines archive (nothing is deleted)."""
    from backend.compliance import ArchiveError
    from backend.platform.cli import operator

    svc = services()
    who = operator(svc, role_without_proof="admin")  # the CLI token's user, else the (unverified) OS login
    res = guarded(lambda: svc.audit.archive(out_file, retention_days=svc.settings.audit.retention_days,
                                            now=svc.clock.now(), actor=who.username, role=who.role or "unverified"),
                  ArchiveError)
    out.print(f"archived {res.rows} rows (seq {res.first_seq}..{res.last_seq}) to {res.path}", highlight=False)
    out.print(f"archive verified; sha256 {res.sha256}", highlight=False)
    out.print(f"anchor {res.anchor} (the prev_hash of the first kept row)", highlight=False)
    out.print(f"the rows are still in the database: a DBA may now delete seq <= {res.last_seq} (see README)",
              highlight=False)


def register(app: typer.Typer) -> None:
    from backend.compliance import pii_cli

    app.add_typer(audit_app, name="audit")
    pii_cli.register(app)
