"""The `creditrisk` command (also `python -m backend`). Every command has --help."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from backend.config import Settings, SettingsError, load_settings

app = typer.Typer(help="creditrisk: AI-assisted credit decisioning.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
users_app = typer.Typer(help="Console users: add, disable, enable, list, set-password.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(audit_app, name="audit")

out = Console()
err = Console(stderr=True)
T = TypeVar("T")


def fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, markup=True)
    raise typer.Exit(code)


def settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        fail(str(exc))
        raise  # unreachable


def services(migrate: bool = True) -> Any:
    from backend.container import build_services

    try:
        return build_services(settings(), migrate=migrate)
    except Exception as exc:  # noqa: BLE001 - one clear line instead of a traceback
        fail(f"cannot open the backends: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")


def guarded(fn: Callable[[], T], *errors: type[Exception]) -> T:
    try:
        return fn()
    except errors as exc:
        fail(str(exc))
        raise  # unreachable


@app.command("config")
def show_config() -> None:
    """Show the configured backends (secrets redacted)."""
    for k, v in settings().describe().items():
        out.print(f"{k:12} {v}", highlight=False)


@app.command()
def doctor() -> None:
    """Check every configured backend and exit non-zero if one is unhealthy."""
    svc = services(migrate=False)
    report = svc.health.report()
    table = Table("component", "ok", "backend", "detail")
    for name, r in report.items():
        table.add_row(name, "yes" if r.get("ok") else "[red]no[/]", str(r.get("backend", "")), str(r.get("detail", "")))
    out.print(table)
    raise typer.Exit(0 if all(r.get("ok") for r in report.values()) else 1)


@db_app.command("migrate")
def db_migrate() -> None:
    """Create or upgrade the schema to the newest revision (safe to run again)."""
    svc = services(migrate=True)
    out.print(f"schema at revision {svc.db.current_revision()} on {svc.db.dialect}")


@db_app.command("status")
def db_status() -> None:
    """Show the schema revision."""
    svc = services(migrate=False)
    out.print(json.dumps(svc.db.ping()))


@users_app.command("add")
def users_add(
    username: str,
    role: Annotated[str, typer.Option(help="loan_officer, risk_manager, product_lead, ml_engineer or admin")],
    name: Annotated[str, typer.Option(help="Display name")] = "",
    senior: Annotated[bool, typer.Option(help="Senior officer (eligible for pilots)")] = False,
    password_stdin: Annotated[bool, typer.Option(help="Read the password from standard input")] = False,
) -> None:
    """Add a user; without --password-stdin a random password is generated and printed once."""
    from backend.services.users import UserError

    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    svc = services()
    user, generated = guarded(lambda: svc.users.add(username, role=role, display_name=name, password=password,
                                                    senior=senior), UserError)
    out.print(f"created {user.username} ({user.role})")
    if generated:
        out.print(f"password (shown once): {generated}", highlight=False)


@users_app.command("disable")
def users_disable(username: str) -> None:
    """Disable a user and end their sessions at once."""
    from backend.services.users import UserError

    svc = services()
    guarded(lambda: svc.users.set_disabled(username, True), UserError)
    out.print(f"disabled {username}; their sessions are revoked")


@users_app.command("enable")
def users_enable(username: str) -> None:
    """Enable a disabled user."""
    from backend.services.users import UserError

    svc = services()
    guarded(lambda: svc.users.set_disabled(username, False), UserError)
    out.print(f"enabled {username}")


@users_app.command("set-password")
def users_set_password(username: str) -> None:
    """Set a password read from standard input; ends the user's sessions."""
    from backend.services.users import UserError

    password = sys.stdin.readline().rstrip("\n")
    svc = services()
    guarded(lambda: svc.users.set_password(username, password), UserError)
    out.print(f"password changed for {username}; their sessions are revoked")


@users_app.command("list")
def users_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """List users and their roles."""
    rows = services().users.list()
    if as_json:
        out.print_json(json.dumps(rows, default=str))
        return
    table = Table("username", "name", "role", "senior", "disabled")
    for r in rows:
        table.add_row(str(r["username"]), str(r["name"]), str(r["role"]), "yes" if r["senior"] else "",
                      "[red]disabled[/]" if r["disabled"] else "")
    out.print(table)


@audit_app.command("verify")
def audit_verify(
    archive: Annotated[Path | None, typer.Option("--archive", help="Verify this archive file (JSON Lines) "
                                                 "instead of the database; needs no database")] = None,
    anchor: Annotated[str | None, typer.Option(help="Accept the live chain starting at this anchor (the "
                                               "archive's header 'anchor') after archived rows were deleted")] = None,
) -> None:
    """Recompute the hash chain and report the first broken link (exit 1 if broken)."""
    from backend.services.audit import verify_archive

    if archive is not None:
        check = verify_archive(archive)
        if check.ok:
            h = check.header
            out.print(f"archive intact: {check.rows} rows, seq {h['first_seq']}..{h['last_seq']}, "
                      f"starts at {h['start_prev_hash']}, anchor {h['anchor']}", highlight=False)
            return
        err.print(f"archive BROKEN at line {check.first_broken_line}: {check.detail} ({check.rows} rows read)",
                  highlight=False)
        raise typer.Exit(1)
    report = services().audit.verify((anchor,) if anchor else ())
    if report.ok:
        start = f", starting at archive anchor {report.start_anchor}" if report.start_anchor else ""
        out.print(f"audit chain intact: {report.rows} rows{start}", highlight=False)
        return
    err.print(f"audit chain BROKEN at seq {report.first_broken_seq}: {report.detail} ({report.rows} rows read)")
    raise typer.Exit(1)


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
    import getpass

    from backend.services.audit import ArchiveError

    svc = services()
    res = guarded(lambda: svc.audit.archive(out_file, retention_days=svc.settings.audit.retention_days,
                                            now=svc.clock.now(), actor=f"cli:{getpass.getuser()}"[:64], role="admin"),
                  ArchiveError)
    out.print(f"archived {res.rows} rows (seq {res.first_seq}..{res.last_seq}) to {res.path}", highlight=False)
    out.print(f"archive verified; sha256 {res.sha256}", highlight=False)
    out.print(f"anchor {res.anchor} (the prev_hash of the first kept row)", highlight=False)
    out.print(f"the rows are still in the database: a DBA may now delete seq <= {res.last_seq} (see README)",
              highlight=False)


def _register_subcommands() -> None:
    from backend import cli_data

    cli_data.register(app)
    from backend import cli_outcomes

    cli_outcomes.register(app)
    cli_data.register_seed_demo(app)
    __import__("backend.cli_monitor", fromlist=["register"]).register(app)
    __import__("backend.cli_api", fromlist=["register"]).register(app)
    __import__("backend.cli_pii", fromlist=["register"]).register(app)
    __import__("backend.cli_backup", fromlist=["register"]).register(app)
    __import__("backend.cli_readiness", fromlist=["register"]).register(app)
    __import__("backend.cli_sso", fromlist=["register"]).register(app)
    __import__("backend.cli_security", fromlist=["register"]).register(app)
    try:
        from backend import cli_models
    except ImportError:  # the scoring engine is optional until it is installed
        return
    cli_models.register(app)
    from backend import cli_workspace

    cli_workspace.register(app)
    __import__("backend.cli_rollout", fromlist=["register"]).register(app)
    __import__("backend.cli_deploy", fromlist=["register"]).register(app)


_register_subcommands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
