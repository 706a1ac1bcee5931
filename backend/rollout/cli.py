"""`creditrisk rollout`: show the phase in force, its history, and propose/approve/reject/withdraw a change.

Every change names a real user with ``--as``: the service reads their role from the users table and
enforces four-eyes (a product lead proposes; a risk manager, never the proposer, approves or rejects).
A refusal prints the service's message and exits with code 1; nothing is written.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from backend.platform.cli import acting

if TYPE_CHECKING:
    from backend.rollout.service import Phase

rollout_app = typer.Typer(help="Rollout phases (shadow, pilot, scaled, full): show, history, set (propose), "
                               "approve, reject, withdraw.", no_args_is_help=True)

AS_HELP = ("The username acting, proven by their CLI token or a password prompt (their role is checked: product "
           "lead proposes, risk manager reviews)")




def _csv(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _when(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        _fail(f"--starts {value!r} is not an ISO date-time (e.g. 2026-02-01T09:00 or 2026-02-01T09:00+00:00).")
        raise  # unreachable
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def _fail(message: str) -> None:
    from backend.platform.cli import fail

    fail(message, 1)


def _iso(at: datetime | None) -> str:
    return at.isoformat(timespec="minutes") if at else "—"


def _as_dict(p: Phase) -> dict[str, Any]:
    return {"version": p.version, "phase": p.phase, "label": p.label, "status": p.status, "ai_share": p.ai_share,
            "eligible_roles": list(p.eligible_roles), "senior_only": p.senior_only,
            "eligible_officers": list(p.eligible_officers), "loan_amount_cap": p.loan_amount_cap,
            "confidence_threshold": p.confidence_threshold, "features": dict(p.features),
            "starts_at": _iso(p.starts_at), "ends_at": _iso(p.ends_at), "rationale": p.rationale,
            "proposed_by": p.proposed_by, "proposed_at": _iso(p.proposed_at), "reviewed_by": p.reviewed_by,
            "reviewed_at": _iso(p.reviewed_at), "review_note": p.review_note}


def _print_phase(p: Phase, title: str) -> None:
    from backend.platform.cli import out

    off = [f for f, on in p.features.items() if not on]
    lines = [f"{title}: {p.label} (version {p.version}{', built-in default' if not p.version else ''})",
             f"  {p.describe()}",
             f"  AI share {p.ai_share:.0%} · cap ${p.loan_amount_cap:,.0f} · threshold {p.confidence_threshold:.2f}",
             f"  eligible roles: {', '.join(p.eligible_roles) or 'any'}"
             + (" (senior only)" if p.senior_only else "")
             + (f" · named officers: {', '.join(p.eligible_officers)}" if p.eligible_officers else ""),
             f"  features off: {', '.join(off) or 'none'}",
             f"  starts {_iso(p.starts_at)} · proposed by {p.proposed_by}"
             + (f" · reviewed by {p.reviewed_by}" if p.reviewed_by else "")]
    if p.rationale:
        lines.append(f"  rationale: {p.rationale}")
    for line in lines:
        out.print(line, markup=False, highlight=False)


def _run(fn: Any) -> Any:
    from backend.rollout.service import RolloutError

    try:
        return fn()
    except RolloutError as exc:
        _fail(str(exc))


@rollout_app.command("show")
def show(as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """The phase in force now and the proposals waiting for review."""
    from backend.platform.cli import out, services

    svc = services()
    active, pending = svc.rollout.active(), svc.rollout.pending()
    if as_json:
        out.print_json(json.dumps({"active": _as_dict(active), "pending": [_as_dict(p) for p in pending]}))
        return
    _print_phase(active, "in force")
    out.print("")
    if not pending:
        out.print("no proposal is waiting for review", highlight=False)
    for p in pending:
        _print_phase(p, "pending")
    out.print("A change applies only to applications made after it takes effect.", highlight=False)


@rollout_app.command("history")
def history(as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """Every version, newest first, with who proposed and reviewed it."""
    from rich.table import Table
    from rich.text import Text

    from backend.platform.cli import out, services

    rows = services().rollout.history()
    if as_json:
        out.print_json(json.dumps([_as_dict(p) for p in rows]))
        return
    if not rows:
        out.print("no rollout versions yet (built-in default: full production)", highlight=False)
        return
    table = Table("version", "phase", "status", "AI share", "starts", "ends", "proposed by", "proposed at",
                  "reviewed by", "reviewed at", "note")
    for p in rows:  # user text as Text cells: never read as rich markup
        table.add_row(*(Text(v) for v in (str(p.version), p.label, p.status, f"{p.ai_share:.0%}", _iso(p.starts_at),
                                          _iso(p.ends_at), p.proposed_by, _iso(p.proposed_at), p.reviewed_by or "",
                                          _iso(p.reviewed_at), p.review_note or "")))
    out.print(table)


@rollout_app.command("set")
def set_phase(
    phase: Annotated[str, typer.Option(help="shadow, pilot, scaled or full")],
    rationale: Annotated[str, typer.Option(help="Why (at least 10 characters)")],
    as_user: Annotated[str, typer.Option("--as", help=AS_HELP)],
    ai_share: Annotated[float | None, typer.Option(help="Share in the AI arm, 0-1 (default: 0 shadow, 1 full)")] = None,
    cap: Annotated[float | None, typer.Option(help="Loan-amount cap in $ (default: the policy's)")] = None,
    threshold: Annotated[float | None, typer.Option(help="Confidence threshold 0.5-1 (default: the policy's)")] = None,
    senior_only: Annotated[bool, typer.Option("--senior-only", help="Senior officers only")] = False,
    roles: Annotated[str, typer.Option(help="Eligible roles, comma-separated")] = "loan_officer,risk_manager",
    officers: Annotated[str, typer.Option(help="Named officers (usernames), comma-separated; empty: all")] = "",
    disable: Annotated[str, typer.Option(help="Features to switch off: explanations,qa,letters")] = "",
    starts: Annotated[str | None, typer.Option(help="Start, ISO date-time (UTC if no zone); default: "
                                               "on approval")] = None,
) -> None:
    """Propose a phase change (it changes nothing until a risk manager approves it)."""
    from backend.platform.cli import out, services
    from backend.rollout.service import FEATURES

    svc = services()
    if ai_share is None:
        ai_share = {"shadow": 0.0, "full": 1.0}.get(phase)
        if ai_share is None:
            _fail(f"the {phase} phase needs --ai-share (a fraction between 0 and 1).")
    off = _csv(disable)
    if unknown := [f for f in off if f not in FEATURES]:
        _fail(f"unknown feature(s) {', '.join(unknown)} for --disable: expected {', '.join(FEATURES)}.")
    policy = svc.settings.policy
    p = _run(lambda: svc.rollout.propose(
        acting(svc, as_user, role_without_name=""), phase=phase, ai_share=ai_share,
        loan_amount_cap=policy.loan_amount_cap if cap is None else cap,
        confidence_threshold=policy.confidence_threshold if threshold is None else threshold,
        starts_at=_when(starts), eligible_roles=_csv(roles), senior_only=senior_only,
        eligible_officers=_csv(officers), features={f: f not in off for f in FEATURES}, rationale=rationale))
    out.print(f"proposed version {p.version} ({p.label}); a risk manager must approve it: "
              f"creditrisk rollout approve {p.version} --as USERNAME", highlight=False, markup=False)


@rollout_app.command("approve")
def approve(version: int, as_user: Annotated[str, typer.Option("--as", help=AS_HELP)],
            note: Annotated[str, typer.Option(help="Review note (optional)")] = "") -> None:
    """Approve a proposed version (four-eyes: not by its proposer). It applies to new applications."""
    from backend.platform.cli import out, services

    svc = services()
    p = _run(lambda: svc.rollout.approve(version, acting(svc, as_user, role_without_name=""), note=note))
    out.print(f"approved version {p.version}: {p.label} from {_iso(p.starts_at)}", highlight=False, markup=False)


@rollout_app.command("reject")
def reject(version: int, as_user: Annotated[str, typer.Option("--as", help=AS_HELP)],
           note: Annotated[str, typer.Option(help="Why (at least 10 characters; required)")]) -> None:
    """Reject a proposed version (four-eyes: not by its proposer)."""
    from backend.platform.cli import out, services

    svc = services()
    p = _run(lambda: svc.rollout.reject(version, acting(svc, as_user, role_without_name=""), note=note))
    out.print(f"rejected version {p.version}", highlight=False)


@rollout_app.command("withdraw")
def withdraw(version: int, as_user: Annotated[str, typer.Option("--as", help="The proposer's username")]) -> None:
    """Withdraw your own proposal while it is still waiting."""
    from backend.platform.cli import out, services

    svc = services()
    p = _run(lambda: svc.rollout.withdraw(version, acting(svc, as_user, role_without_name="")))
    out.print(f"withdrew version {p.version}", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(rollout_app, name="rollout")
