"""`creditrisk incidents`: rollback incidents (open from the registry's rollbacks, list, show with the step clocks and
a sample of the review queue, verify from the records, review a decision, post-mortem, close). Refusals exit 2."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

incidents_app = typer.Typer(help="Rollback incidents: the seed's procedure with its clocks (rollback < 5 min, verify "
                                 "< 10 min, post-mortem < 24 h) and the rolled-back version's last decisions queued "
                                 "for review.", no_args_is_help=True)
AS_HELP = "The username acting, proven by their CLI token or a password prompt (a risk manager or an ML engineer)"
JSON_HELP = "Print JSON on stdout"


def _run(fn: Any) -> Any:
    from backend.operations import IncidentError
    from backend.platform.cli import fail

    try:
        return fn()
    except IncidentError as exc:
        fail(str(exc))


def _clock(step: dict[str, Any]) -> str:
    if step.get("seconds") is None:
        return "not done"
    took, target = step["seconds"], step["target_s"]
    return f"{took / 60:.1f} min (target {target / 60:.0f} min: {'met' if step['met'] else 'MISSED'})"


def _print(view: dict[str, Any], sample: list[dict[str, Any]] | None = None) -> None:
    from backend.platform.cli import out

    st = view["steps"]
    out.print(f"[bold]incident {view['id']}[/] ({view['status']}): {view['model_version']} rolled back to "
              f"{view['restored_version']} on {view['opened_at']:%Y-%m-%d %H:%M} UTC by {view['opened_by']}",
              highlight=False)
    out.print(f"  cause: {view['cause'] or '—'}", highlight=False, markup=False)
    out.print(f"  1 rollback: {_clock(st['rollback'])}", highlight=False)
    v = st["verify"]
    out.print(f"  2 verify: {_clock(v)}; passed: {v['passed']}", highlight=False)
    for c in v["checks"]:
        out.print(f"      {c['name']}: baseline {c['baseline']}, after {c['after']} (n={c['n_after']}) -> "
                  f"{ {True: 'ok', False: 'NOT back to baseline', None: 'no data yet'}[c['ok']]}", highlight=False)
    r = st["review"]
    out.print(f"  3 review: {r['queued']} queued, {r['reviewed']} reviewed", highlight=False)
    p = st["postmortem"]
    out.print(f"  4 post-mortem: {_clock(p)}; owner {p['owner'] or '—'}, due {p['due']:%Y-%m-%d %H:%M} UTC, "
              f"test {p['test'] or '—'}", highlight=False, markup=False)
    for row in sample or []:
        out.print(f"      {row['application']} scored {row['scored_at']:%Y-%m-%d %H:%M} {row['recommendation']} -> "
                  f"{row['final decision']} [{row['status']}]", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    from backend.platform.cli import acting, jsonable, out, services

    @incidents_app.command("open")
    def open_() -> None:
        """Open an incident for every rollback in the registry that has none (the page and the monitor do it too)."""
        opened = services().incidents.open_from_registry()
        out.print(f"opened {len(opened)} incident(s)" + (": " + ", ".join(opened) if opened else ""), highlight=False)

    @incidents_app.command("list")
    def list_(status: Annotated[str | None, typer.Option(help="open or closed")] = None,
              as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False) -> None:
        """Incidents, newest first."""
        svc = services()
        svc.incidents.open_from_registry()  # a rollback opens its incident
        rows = svc.incidents.all(status)
        if as_json:
            print(json.dumps(jsonable(rows), default=str, indent=2))
            return
        for v in rows:
            _print(v)
        if not rows:
            out.print("no incidents")

    @incidents_app.command("show")
    def show(ref: Annotated[str, typer.Argument(help="Incident id or the rolled-back version")],
             sample: Annotated[int, typer.Option(min=0, max=100, help="Queued decisions to show")] = 10,
             as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False) -> None:
        """One incident: its steps with their clocks and a sample of the review queue."""
        svc = services()
        svc.incidents.open_from_registry()
        view = _run(lambda: svc.incidents.get(ref))
        rows = svc.incidents.review_sample(ref, sample)
        if as_json:
            print(json.dumps(jsonable({**view, "review_sample": rows}), default=str, indent=2))
            return
        _print(view, rows)

    @incidents_app.command("verify")
    def verify(ref: str, as_user: Annotated[str | None, typer.Option("--as", help=AS_HELP)] = None) -> None:
        """Read the records since the rollback against the baseline; passes when every measured check is back."""
        svc = services()
        res = _run(lambda: svc.incidents.verify(ref, acting(svc, as_user)))
        _print(svc.incidents.get(ref))
        if not res["passed"]:
            raise typer.Exit(1)

    @incidents_app.command("review")
    def review(ref: str, application: str, note: Annotated[str, typer.Option(help="What the review found")],
               as_user: Annotated[str | None, typer.Option("--as", help=AS_HELP)] = None) -> None:
        """Mark one queued decision reviewed."""
        svc = services()
        n = _run(lambda: svc.incidents.review(ref, application, acting(svc, as_user), note=note))
        out.print("reviewed" if n else "not in this incident's queue (or already reviewed)", highlight=False)

    @incidents_app.command("postmortem")
    def postmortem(ref: str, owner: Annotated[str, typer.Option(help="Who owns the post-mortem")],
                   summary: Annotated[str, typer.Option(help="What happened and why")],
                   test: Annotated[str, typer.Option(help="The test that now catches the cause (path::name or URL)")],
                   as_user: Annotated[str | None, typer.Option("--as", help=AS_HELP)] = None) -> None:
        """Record the post-mortem (owner, summary, the test that now catches the cause)."""
        svc = services()
        _run(lambda: svc.incidents.postmortem(ref, acting(svc, as_user), owner=owner, summary=summary, test=test))
        _print(svc.incidents.get(ref))

    @incidents_app.command("close")
    def close(ref: str, as_user: Annotated[str | None, typer.Option("--as", help=AS_HELP)] = None) -> None:
        """Close the incident (refused until verification passed, decisions are queued and the post-mortem is in)."""
        svc = services()
        _print(_run(lambda: svc.incidents.close(ref, acting(svc, as_user))))

    app.add_typer(incidents_app, name="incidents")
