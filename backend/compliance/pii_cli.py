"""`creditrisk pii`: personal-data encryption status, key rotation, encryption of pre-0007 rows."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

if TYPE_CHECKING:
    from backend.compliance.pii_rotation import PiiRotation, RotationReport

pii_app = typer.Typer(help="Personal data: encryption status, key rotation, encryption of existing rows.",
                      no_args_is_help=True)
keys_app = typer.Typer(help="The AES-256 key ring that encrypts applicant data.", no_args_is_help=True)
pii_app.add_typer(keys_app, name="keys")
BatchSize = Annotated[int | None, typer.Option(help="Rows per transaction (default: CREDITRISK_PII__ROTATE_BATCH_SIZE)",
                                               min=1, max=50_000)]
MaxBatches = Annotated[int | None, typer.Option(help="Stop after this many batches (run again to continue)",
                                                min=1)]


def _rotation() -> tuple[Any, PiiRotation]:
    from backend.compliance.pii_rotation import PiiRotation
    from backend.platform.cli import services

    svc = services()
    return svc, PiiRotation(svc.db, svc.clock, svc.scoring.pii)


@pii_app.command("status")
def status(as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """Rows per key id, plaintext rows and rows not yet under the active key (exit 1 if any)."""
    from backend.platform.cli import out

    _svc, rot = _rotation()
    st = rot.status()
    if as_json:
        out.print_json(json.dumps({"active": st.active, "ring": list(st.ring), "total": st.total,
                                   "plaintext": st.plaintext, "with_details": st.with_details,
                                   "by_key": st.by_key, "foreign": st.foreign, "pending": st.pending}))
    else:
        out.print(f"active key {st.active}; ring {', '.join(st.ring)}; {st.total:,} applications", highlight=False)
        table = Table("key id", "applicant ids", "direct PII", "in ring")
        for kid, per in st.by_key.items():
            table.add_row(kid + (" (active)" if kid == st.active else ""), f"{per['applicant_id']:,}",
                          f"{per['pii']:,}", "yes")
        for kid, n in st.foreign.items():
            table.add_row(kid, f"{n:,}", "", "[red]no[/]")
        table.add_row("plaintext", f"{st.plaintext:,}", "", "")
        out.print(table)
        out.print(f"not under the active key: {st.pending:,}"
                  + ("  (run `creditrisk pii rotate`)" if st.pending else ""), highlight=False)
        if st.foreign:
            out.print("values under keys missing from the ring cannot be read: add those keys back", highlight=False)
    raise typer.Exit(0 if st.ok else 1)


def _run(plaintext_only: bool, batch_size: int | None, max_batches: int | None) -> None:
    from backend.compliance.pii_reveal import PiiUnreadable
    from backend.platform.cli import fail, operator, out

    svc, rot = _rotation()

    def tick(r: RotationReport) -> None:
        out.print(f"batch {r.batches}: {r.rows:,} rows so far", highlight=False)

    try:
        rep = rot.rotate(batch_size=batch_size or svc.settings.pii.rotate_batch_size, plaintext_only=plaintext_only,
                         max_batches=max_batches, actor=operator(svc).username, progress=tick)
    except PiiUnreadable as exc:
        fail(str(exc))
        return
    frm = ", ".join(f"{k}: {v:,}" for k, v in sorted(rep.sources.items())) or "nothing to do"
    out.print(f"{rep.rows:,} rows now under key {rep.active} in {rep.batches} batch(es) ({frm}); "
              f"{rep.remaining:,} remaining", highlight=False)
    raise typer.Exit(0 if rep.remaining == 0 else 1)


@pii_app.command("rotate")
def rotate(batch_size: BatchSize = None, max_batches: MaxBatches = None) -> None:
    """Re-encrypt every row not under the active key (plaintext rows too), batch by batch.

    Each batch is one transaction with one audit row; an interrupted run is resumed by running it again.
    Make the new key active first (`creditrisk pii keys add`, or CREDITRISK_PII__ACTIVE_KID); keep the old
    key in the ring until `creditrisk pii status` shows no row under it."""
    _run(False, batch_size, max_batches)


@pii_app.command("encrypt-existing")
def encrypt_existing(batch_size: BatchSize = None, max_batches: MaxBatches = None) -> None:
    """Encrypt the applicant ids still in clear (rows written before migration 0007), batch by batch."""
    _run(True, batch_size, max_batches)


@pii_app.command("find")
def find() -> None:
    """Application ids of one applicant (blind-index lookup). The applicant id is read from standard
    input, so it stays out of the shell history and the process list."""
    import sys

    from backend.platform.cli import PROOF_HELP, cli_actor, fail, out, services

    applicant = sys.stdin.readline().strip()
    if not applicant:
        fail("give the applicant id on standard input")
    svc = services()
    actor = cli_actor(svc)
    if not actor.role:
        fail(f"finding applicants needs a proven user: {PROOF_HELP}")
    for aid in svc.pii.find(applicant, actor=actor):
        out.print(aid, highlight=False)


@keys_app.command("new")
def keys_new() -> None:
    """Print a fresh random key as {kid: base64} for your secret store (nothing is written)."""
    import base64

    from backend.compliance.pii_keys import new_key, new_kid
    from backend.platform.cli import out

    out.print(json.dumps({new_kid(): base64.b64encode(new_key()).decode()}), highlight=False, soft_wrap=True)


@keys_app.command("add")
def keys_add() -> None:
    """Add a fresh key to the key file (the dev ring, or CREDITRISK_PII__KEY_FILE) and make it active."""
    from backend.compliance.pii import PiiKeyError, add_file_key, key_file_path
    from backend.platform.cli import fail, out, settings

    s = settings()
    try:
        ring = add_file_key(s)
    except PiiKeyError as exc:
        fail(str(exc))
        return
    out.print(f"key {ring.active} added to {key_file_path(s)} and active (ring: {', '.join(ring.kids)}); "
              "now run `creditrisk pii rotate`", highlight=False)
    if s.pii.active_kid:
        out.print(f"note: CREDITRISK_PII__ACTIVE_KID={s.pii.active_kid} overrides the file: set it to {ring.active}",
                  highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(pii_app, name="pii")
