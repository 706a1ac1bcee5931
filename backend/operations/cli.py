"""`creditrisk readiness` (the production checklist, a rollback drill) and `creditrisk signoff` (add, list,
revoke named release sign-offs for the current champion).

``readiness`` exit codes: 0 printed (ready or not); with ``--strict`` 1 when any item is red. ``signoff``:
a refusal (role, unknown user, bad input) prints the reason and exits 2.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

readiness_app = typer.Typer(help="The production-readiness checklist: every item green or red, with its evidence.")
signoff_app = typer.Typer(help="Named release sign-offs for the current champion: pm (product lead), engineering "
                               "(ML engineer), compliance (risk manager), legal (recorded by an admin or risk manager, "
                               "naming the counsel).", no_args_is_help=True)
USER_HELP = ("The console user acting, proven by their CLI token or a password prompt (their role is read from "
             "the users table)")
STATUS_STYLE = {"green": "bold green", "red": "bold red"}


def _fail(message: str, code: int = 2) -> None:
    from rich.markup import escape

    from backend.platform.cli import fail

    fail(escape(message), code)


def _checklist_table(report: Any) -> Any:
    from rich.table import Table
    from rich.text import Text

    table = Table("status", "item", "evidence", "date (UTC)", "produced by", "refresh with", show_lines=True,
                  title=f"production readiness, {report.at:%Y-%m-%d %H:%M} UTC, champion {report.champion or 'none'}")
    for i in report.items:  # stored text as Text cells: never read as rich markup
        status = Text(i.status.upper() + (f"\n({i.reason})" if i.reason else ""), style=STATUS_STYLE[i.status])
        table.add_row(status, Text(i.title), Text(i.evidence), Text(f"{i.date:%Y-%m-%d %H:%M}" if i.date else ""),
                      Text(i.command, overflow="fold"), Text(i.refresh, overflow="fold"))  # commands: whole, never "…"
    return table


@readiness_app.callback(invoke_without_command=True)
def readiness(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the checklist as JSON")] = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the checklist as a Markdown table")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 unless every item is green (for CI and "
                                         "release scripts)")] = False,
) -> None:
    """Evaluate the checklist from the system's own records: champion held-out metrics and gates, fairness
    audit, load test, security scan, backup drill, rollback, sign-offs."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.text import Text

    from backend.platform.cli import out, services

    report = services().readiness.evaluate()
    if as_json:
        out.print_json(report.to_json())
    elif markdown:
        out.print(report.to_markdown(), markup=False, highlight=False, soft_wrap=True)
    else:
        out.print(_checklist_table(report))
        out.print(Text(report.verdict, style="bold green" if report.ready else "bold red"))
    if strict and not report.ready:
        raise typer.Exit(1)


@readiness_app.command("rollback-drill")
def rollback_drill(
    to: Annotated[str | None, typer.Option(help="Roll back to this earlier champion (default: the newest one)")] = None,
) -> None:
    """Roll the champion back in a scratch copy of the registry (the serving registry is not touched), load
    and score the restored model, and record the result as rollback evidence. Exit 1 if the drill failed."""
    from rich.text import Text

    from backend.operations.readiness_rollback import rollback_drill as drill
    from backend.platform.cli import operator, out, services

    svc = services()
    ev = drill(svc.models.registry(), svc.db, svc.clock, actor=operator(svc).username, to=to,
               command="creditrisk readiness rollback-drill" + (f" --to {to}" if to else ""))
    out.print(Text(("ok: " if ev.ok else "FAILED: ") + ev.summary, style="green" if ev.ok else "bold red"))
    if not ev.ok:
        raise typer.Exit(1)


# -- sign-offs --------------------------------------------------------------------------------------------
def _record(r: Any) -> dict[str, Any]:
    from backend.operations.signoffs import describe

    return {"id": r.id, "area": r.area, "model_version": r.model_version, "signed_by": describe(r),
            "recorded_by": r.username, "signed_at": r.signed_at.isoformat(timespec="seconds"), "note": r.note,
            "revoked_at": r.revoked_at.isoformat(timespec="seconds") if r.revoked_at else None,
            "revoked_by": r.revoked_by}


@signoff_app.command("add")
def signoff_add(
    area: Annotated[str, typer.Option(help="pm, engineering, compliance or legal")],
    user: Annotated[str, typer.Option("--user", help=USER_HELP)],
    note: Annotated[str, typer.Option(help="What was reviewed (kept with the sign-off)")] = "",
    counsel: Annotated[str, typer.Option(help="legal only: the name of the legal counsel who signed (counsel has no "
                                         "console account; --user is recorded as the person entering it)")] = "",
) -> None:
    """Sign off an area for the current champion (a newer sign-off of the same area replaces the old one)."""
    from rich.text import Text

    from backend.operations.signoffs import SignOffError, describe
    from backend.platform.cli import out, prove, services

    services_ = services()
    who = prove(services_, user)  # a release sign-off is a named person's word: proven, not claimed
    svc = services_.signoffs
    try:
        rec = svc.add(who.username, area, note=note, counsel=counsel)
    except SignOffError as exc:
        _fail(str(exc))
        raise  # unreachable
    out.print(Text(f"signed off {rec.area} for {rec.model_version}: {describe(rec)} (id {rec.id})"))


@signoff_app.command("list")
def signoff_list(
    every_version: Annotated[bool, typer.Option("--all", help="Every model version (default: the champion)")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Sign-offs (active and revoked) for the current champion, or for every version with --all."""
    from rich.table import Table
    from rich.text import Text

    from backend.platform.cli import out, services

    svc = services().signoffs
    version = None if every_version else svc.champion()
    rows = svc.records(version=version) if every_version or version else []
    if as_json:
        out.print_json(json.dumps({"champion": svc.champion(), "signoffs": [_record(r) for r in rows]}))
        return
    table = Table("id (first 8)", "area", "version", "signed by", "signed (UTC)", "status", "note",
                  title=f"sign-offs for {'every version' if every_version else version or 'no champion'}")
    for r in rows:
        status = "active" if r.active else f"revoked {r.revoked_at:%Y-%m-%d %H:%M} ({r.revoked_by})"
        table.add_row(*(Text(v) for v in (r.id[:8], r.area, r.model_version, _record(r)["signed_by"],
                                          f"{r.signed_at:%Y-%m-%d %H:%M}", status, r.note[:80])))
    out.print(table)


@signoff_app.command("revoke")
def signoff_revoke(
    signoff_id: Annotated[str, typer.Argument(help="The sign-off's id (or its first 8+ characters)")],
    user: Annotated[str, typer.Option("--user", help=USER_HELP)],
    note: Annotated[str, typer.Option(help="Why (kept in the audit trail)")] = "",
) -> None:
    """Revoke a sign-off (needs the role that may sign its area)."""
    from rich.text import Text

    from backend.operations.signoffs import SignOffError
    from backend.platform.cli import out, prove, services

    services_ = services()
    who = prove(services_, user)
    svc = services_.signoffs
    try:
        rec = svc.revoke(who.username, signoff_id, note=note)
    except SignOffError as exc:
        _fail(str(exc))
        raise  # unreachable
    out.print(Text(f"revoked {rec.area} sign-off {rec.id} for {rec.model_version}"))


def register(app: typer.Typer) -> None:
    from backend.operations import backup_cli, incidents_cli, security_cli

    backup_cli.register(app)
    incidents_cli.register(app)
    security_cli.register(app)
    app.add_typer(readiness_app, name="readiness")
    app.add_typer(signoff_app, name="signoff")
