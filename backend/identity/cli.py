"""`creditrisk users …` (console accounts, CLI tokens), `creditrisk whoami` and, from :mod:`.sso_cli`,
`creditrisk sso …`.

Changes to accounts need a proven user allowed to manage users (an admin): ``--as NAME`` (password
prompt), or the CLI token file (see :func:`backend.platform.cli.prove`). Before the first admin exists the
operator may create one (bootstrap). Audit rows name the proven user.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from backend.domain import Perm
from backend.platform.cli import (
    TOKEN_FILE_ENV,
    fail,
    guarded,
    out,
    prove,
    require,
    services,
    signed_in,
    token_path,
)

users_app = typer.Typer(help="Console users: add, disable, enable, list, set-password, mfa-reset; CLI tokens.",
                        no_args_is_help=True)
tokens_app = typer.Typer(help="CLI tokens: what proves a user to the command line.", no_args_is_help=True)
users_app.add_typer(tokens_app, name="cli-token")
AS_HELP = "Act as this user (an admin); proven by their CLI token or a password prompt"
AsUser = Annotated[str | None, typer.Option("--as", help=AS_HELP)]


@users_app.command("add")
def users_add(
    username: str,
    role: Annotated[str, typer.Option(help="loan_officer, risk_manager, product_lead, ml_engineer or admin")],
    name: Annotated[str, typer.Option(help="Display name")] = "",
    senior: Annotated[bool, typer.Option(help="Senior officer (eligible for pilots)")] = False,
    password_stdin: Annotated[bool, typer.Option(help="Read the password from standard input")] = False,
    as_user: AsUser = None,
) -> None:
    """Add a user; without --password-stdin a random password is generated and printed once."""
    from backend.identity import UserError

    svc = services()
    actor = require(svc, Perm.MANAGE_USERS, "adding a user", as_user)
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    user, generated = guarded(lambda: svc.users.add(username, role=role, display_name=name, password=password,
                                                    senior=senior, actor=actor), UserError)
    out.print(f"created {user.username} ({user.role})")
    if generated:
        out.print(f"password (shown once): {generated}", highlight=False)


@users_app.command("disable")
def users_disable(username: str, as_user: AsUser = None) -> None:
    """Disable a user and end their sessions (and CLI tokens) at once."""
    from backend.identity import UserError

    svc = services()
    actor = require(svc, Perm.MANAGE_USERS, "disabling a user", as_user)
    guarded(lambda: svc.users.set_disabled(username, True, actor=actor), UserError)
    out.print(f"disabled {username}; their sessions are revoked")


@users_app.command("enable")
def users_enable(username: str, as_user: AsUser = None) -> None:
    """Enable a disabled user."""
    from backend.identity import UserError

    svc = services()
    actor = require(svc, Perm.MANAGE_USERS, "enabling a user", as_user)
    guarded(lambda: svc.users.set_disabled(username, False, actor=actor), UserError)
    out.print(f"enabled {username}")


@users_app.command("set-password")
def users_set_password(username: str, as_user: AsUser = None) -> None:
    """Set a password read from standard input (after the --as prompt, if any); ends the user's sessions."""
    from backend.identity import UserError

    svc = services()
    actor = require(svc, Perm.MANAGE_USERS, "setting a password", as_user)
    password = sys.stdin.readline().rstrip("\n")
    guarded(lambda: svc.users.set_password(username, password, actor=actor), UserError)
    out.print(f"password changed for {username}; their sessions are revoked")


@users_app.command("list")
def users_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """List users and their roles."""
    rows = services().users.list()
    if as_json:
        out.print_json(json.dumps(rows, default=str))
        return
    table = Table("username", "name", "role", "senior", "second factor", "disabled")
    for r in rows:
        table.add_row(str(r["username"]), str(r["name"]), str(r["role"]), "yes" if r["senior"] else "",
                      str(r["second_factor"]), "[red]disabled[/]" if r["disabled"] else "")
    out.print(table)


@users_app.command("mfa-reset")
def users_mfa_reset(username: str, as_user: AsUser = None) -> None:
    """Forget USERNAME's second factor and recovery codes (a lost phone): they enrol again at their next
    console sign-in; their sessions and CLI tokens end. Audited; never your own (another admin does it)."""
    from backend.identity import UserError

    svc = services()
    actor = require(svc, Perm.MANAGE_USERS, "resetting a second factor", as_user)
    done = guarded(lambda: svc.users.reset_mfa(username, actor=actor), UserError)
    out.print(f"second factor of {username} reset ({done['recovery_codes_removed']} recovery codes removed, "
              f"{done['sessions_ended']} sessions ended); they enrol again at their next console sign-in")


@tokens_app.command("issue")
def token_issue(
    username: str,
    days: Annotated[float, typer.Option(help="Valid this many days", min=0.01, max=366)] = 30.0,
    out_file: Annotated[Path | None, typer.Option("--out", help="Write it to this file (mode 0600) instead "
                                                  "of printing it once")] = None,
    as_user: AsUser = None,
) -> None:
    """Issue a CLI token for USERNAME (admins only): the command line then acts as that user, and audit
    rows name them. Only its SHA-256 is stored; disabling the user or changing their password ends it."""
    svc = services()
    actor = require(svc, Perm.MANAGE_USERS, "issuing a CLI token", as_user)
    user = svc.users.get(username)
    if user is None or any(u["username"] == user.username and u["disabled"] for u in svc.users.list()):
        fail(f"no enabled user {svc.users.normalize(username)!r}")
        raise AssertionError  # unreachable
    token = svc.auth.issue_cli_token(user, days=days, issued_by=actor)
    if out_file is None:
        print(token)  # noqa: T201 - shown once, for a file the user keeps with mode 0600
        return
    _write_private(out_file, token)
    out.print(f"CLI token for {user.username} ({days:g} days) written to {out_file} (mode 0600); the command line "
              f"reads {token_path()} (set {TOKEN_FILE_ENV} to use another file)", highlight=False, soft_wrap=True)


@tokens_app.command("revoke")
def token_revoke(username: str, as_user: AsUser = None) -> None:
    """End every CLI token of USERNAME (admins only)."""
    svc = services()
    actor = require(svc, Perm.MANAGE_USERS, "revoking CLI tokens", as_user)
    user = svc.users.get(username)
    if user is None:
        fail(f"no user {svc.users.normalize(username)!r}")
        raise AssertionError  # unreachable
    n = svc.auth.revoke_cli_tokens(user, revoked_by=actor)
    out.print(f"revoked {n} CLI token(s) of {user.username}", highlight=False)


def whoami(as_user: AsUser = None) -> None:
    """Who the command line acts as: the CLI token's user, the one --as proves, or the unproven OS login."""
    svc = services()
    user = prove(svc, as_user) if as_user else signed_in(svc)
    if user is None:
        out.print(f"nobody proven (no CLI token in {token_path()}): commands run as the operating-system login, "
                  "without a role once an admin exists", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    out.print(f"{user.username} ({user.role})", highlight=False)


def _write_private(path: Path, text: str) -> None:
    """``text`` into ``path``, created or truncated with mode 0600 (never through a symbolic link)."""
    import os

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "w") as fh:
        os.fchmod(fh.fileno(), 0o600)
        fh.write(text + "\n")


def register(app: typer.Typer) -> None:
    from backend.identity import sso_cli

    app.add_typer(users_app, name="users")
    app.command("whoami")(whoami)
    sso_cli.register(app)
