"""`creditrisk monitor`: run the alert rules (for cron), list, acknowledge and resolve alerts.

``monitor run`` exit codes, for cron and schedulers: 0 all clear (no unresolved alert); 1 at least
one alert is open or acknowledged; 2 the checks could not all run (a reader or a summary refresh
failed; the other rules were still evaluated) or bad input.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from backend.alerts.rules import STATUS_LABELS, fmt

monitor_app = typer.Typer(help="Monitoring rules and alerts: run the checks (cron), list, acknowledge, resolve.",
                          no_args_is_help=True)
BAD_AS_OF = "--as-of {value!r} is not a date or date-time (YYYY-MM-DD or YYYY-MM-DDTHH:MM, UTC)."
BY_HELP = ("The username acting, proven by their CLI token or a password prompt (must hold the ack_alerts "
           "permission: risk manager or ML engineer)")


def _fail(message: str, code: int = 1) -> None:
    from rich.markup import escape

    from backend.platform.cli import fail

    fail(escape(message), code)


def _as_of(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError:
        _fail(BAD_AS_OF.format(value=value[:40]), 2)
        raise  # unreachable
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _iso(at: datetime | None) -> str:
    return at.isoformat(timespec="minutes") if at else ""


def _reading(r: Any) -> dict[str, Any]:
    return {"rule": r.rule, "label": r.label, "status": r.status, "value": r.value, "threshold": r.threshold,
            "direction": r.direction, "action": r.action, "n": r.n, "period": r.period, "detail": r.detail,
            "extra": r.extra}  # e.g. the latency p95's interval, the fairness figure's group and interval


def _alert(a: Any) -> dict[str, Any]:
    return {"id": a.id, "rule": a.rule, "status": a.status, "severity": a.severity, "action": a.action,
            "value": a.value, "threshold": a.threshold, "message": a.message, "opened_at": _iso(a.opened_at),
            "last_seen_at": _iso(a.last_seen_at), "acknowledged_by": a.acknowledged_by,
            "acknowledged_at": _iso(a.acknowledged_at), "ack_note": a.ack_note, "resolved_by": a.resolved_by,
            "resolved_at": _iso(a.resolved_at), "notifications": a.notifications}


def _alerts_table(alerts: list[Any]) -> Any:
    from rich.table import Table
    from rich.text import Text

    table = Table("id", "rule", "status", "value", "threshold", "opened", "last seen", "by", "message")
    for a in alerts:  # stored text as Text cells: never read as rich markup
        unit = a.details.get("unit", "")
        by = a.resolved_by or a.acknowledged_by or ""
        table.add_row(*(Text(v) for v in (a.id, a.rule, a.status, fmt(a.value, unit), fmt(a.threshold, unit),
                                          _iso(a.opened_at), _iso(a.last_seen_at), by, a.message)))
    return table


@monitor_app.command("run")
def run(
    as_of: Annotated[str | None, typer.Option("--as-of", help="Evaluate as of this UTC moment (YYYY-MM-DD or "
                                              "YYYY-MM-DDTHH:MM; a date means its 00:00); default: now")] = None,
    no_refresh: Annotated[bool, typer.Option("--no-refresh", help="Judge the stored summaries as they are "
                                             "(skip recomputing drift, performance and fairness)")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    retrain_on_alert: Annotated[bool, typer.Option("--retrain-on-alert", help="When the accuracy rule has an "
                                                   "unresolved alert, retrain and register a challenger")] = False,
) -> None:
    """Evaluate every alert rule, open/update/resolve alerts and notify.

    Exit code 0: all clear; 1: an alert is open or acknowledged; 2: a check could not run.
    """
    from rich.table import Table
    from rich.text import Text

    from backend.platform.cli import err, out, services

    _log_alert_events()
    svc = services()
    at = _as_of(as_of)
    try:
        alerts = svc.alerts
    except ValueError as exc:  # the notifier's settings
        _fail(str(exc), 2)
    report = alerts.evaluate(at=at, refresh=not no_refresh)
    retrain = _retrain(svc, report) if retrain_on_alert else None
    if as_json:
        out.print_json(json.dumps({"at": report.at.isoformat(), "readings": [_reading(r) for r in report.readings],
                                   "opened": report.opened, "resolved": report.resolved, "updated": report.updated,
                                   "refreshed": report.refreshed, "errors": report.errors,
                                   "unresolved": [_alert(a) for a in report.unresolved], "retrain": retrain},
                                  default=str))
    else:
        table = Table("rule", "status", "value", "fires when", "action", "n", "period", "detail",
                      title=f"alert rules as of {report.at:%Y-%m-%d %H:%M} UTC")
        for r in report.readings:
            style = {"firing": "bold red", "ok": "green"}.get(r.status, "yellow")
            table.add_row(Text(r.label), Text(STATUS_LABELS[r.status], style=style), Text(fmt(r.value, r.unit)),
                          Text(("< " if r.direction == "below" else "> ") + fmt(r.threshold, r.unit)), Text(r.action),
                          Text("" if r.n is None else f"{r.n:,}"), Text(r.period), Text(r.detail))
        out.print(table)
        say = lambda s: out.print(s, markup=False, highlight=False)  # noqa: E731
        refreshed = ", ".join(f"{k}: {v}" for k, v in report.refreshed.items())
        say(f"refreshed: {refreshed or 'skipped (--no-refresh)'}")
        say(f"opened {len(report.opened)}, still firing {len(report.updated)}, resolved {len(report.resolved)}; "
            f"unresolved now: {len(report.unresolved)}")
        if report.unresolved:
            out.print(_alerts_table(report.unresolved))
        if retrain:
            say(f"retrain: {retrain}")
        for e in report.errors:
            err.print(f"check failed: {e}", markup=False, highlight=False)
    raise typer.Exit(1 if report.unresolved else 2 if report.errors else 0)


def _log_alert_events() -> None:
    """With no logging configured, the log notifier's lines (opened and resolved) go to stderr."""
    from backend.platform.adapters.notify_log import LOGGER_NAME

    logger = logging.getLogger(LOGGER_NAME)
    if not logging.getLogger().handlers and not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def _retrain(svc: Any, report: Any) -> str:
    if not any(a.rule == "accuracy" for a in report.unresolved):
        return "not needed (no unresolved accuracy alert)"
    from backend import training
    from backend.domain import Actor

    try:
        result = svc.retrainer.from_book(Actor("monitor", "system"), at=report.at)
    except training.RetrainError as exc:  # e.g. too few matured loans: the alert stays open, the reason is said
        return f"failed: {exc}"
    return f"done: {result}"


@monitor_app.command("alerts")
def list_alerts(
    status: Annotated[str, typer.Option(help="open, acknowledged, resolved, unresolved (open + acknowledged) "
                                        "or all")] = "unresolved",
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many, newest first")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """List alerts with their state (who acknowledged or resolved them, when)."""
    from backend.alerts.records import AlertError
    from backend.platform.cli import out, services

    svc = services()
    try:
        rows = svc.alerts.list(status=status, limit=limit)
    except (AlertError, ValueError) as exc:
        _fail(str(exc), 2)
        raise  # unreachable
    if as_json:
        out.print_json(json.dumps([_alert(a) for a in rows], default=str))
        return
    if not rows:
        out.print(f"no {status if status != 'all' else ''} alerts".replace("  ", " "), highlight=False)
        return
    out.print(_alerts_table(rows))


def _change(alert_id: str, by: str, note: str, *, resolve: bool) -> None:
    from backend.alerts.records import AlertError
    from backend.models import active_halts
    from backend.platform.cli import out, prove, services

    svc = services()
    actor = prove(svc, by)  # --by NAME: their CLI token or their password (resolving may lift a deployment halt)
    try:
        fn = svc.alerts.resolve if resolve else svc.alerts.acknowledge
        a = fn(alert_id, actor, note)
    except (AlertError, ValueError) as exc:
        _fail(str(exc), 1)
        raise  # unreachable
    say = lambda s: out.print(s, markup=False, highlight=False)  # noqa: E731
    say(f"{'resolved' if resolve else 'acknowledged'} alert {a.id} ({a.rule}) as {actor.username}")
    if resolve and a.action == "halt_deployments":
        left = active_halts(svc.db)
        say("deployments are no longer halted" if not left else f"deployments are still halted by {len(left)} alert(s)")
    if resolve:
        say("if the rule still fires, the next `creditrisk monitor run` opens a new alert")


@monitor_app.command("ack")
def ack(alert_id: Annotated[str, typer.Argument(metavar="ID", help="The alert id")],
        by: Annotated[str, typer.Option("--by", help=BY_HELP)],
        note: Annotated[str, typer.Option("--note", help="What is being done (required)")]) -> None:
    """Acknowledge an open alert (it stays unresolved; a halt stays in force)."""
    _change(alert_id, by, note, resolve=False)


@monitor_app.command("resolve")
def resolve(alert_id: Annotated[str, typer.Argument(metavar="ID", help="The alert id")],
            by: Annotated[str, typer.Option("--by", help=BY_HELP)],
            note: Annotated[str, typer.Option("--note", help="What was done (required)")]) -> None:
    """Resolve an alert by hand (lifts a deployment halt; a rule still firing re-opens next run)."""
    _change(alert_id, by, note, resolve=True)


def register(app: typer.Typer) -> None:
    app.add_typer(monitor_app, name="monitor")
