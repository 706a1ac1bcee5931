"""`creditrisk train`, `creditrisk retrain`, `creditrisk models …` (list, show, compare, promote, rollback,
verify, rotate-key, sign-unsigned, canary …) and `creditrisk score`.

Canary steps name a real user with ``--as`` (role read from the users table; an ML engineer proposes,
a risk manager, never the proposer, approves). Promote and rollback act as ``cli:<login>`` (ML
engineer) unless ``--as`` names a user. A refusal prints the reason and exits with code 2.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from backend.platform.cli import acting, jsonable, metric

models_app = typer.Typer(help="Model registry: list, show, compare, promote, rollback, verify, canary.",
                         no_args_is_help=True)
canary_app = typer.Typer(help="Canary promotion of the challenger (5 -> 25 -> 50 -> 100 %), four-eyes per step.",
                         no_args_is_help=True)
models_app.add_typer(canary_app, name="canary")
AS_HELP = "The username acting (their role is read from the users table)"


def _refused(fn: Any) -> Any:
    from backend.models.lifecycle import REFUSALS
    from backend.platform.cli import fail

    try:
        return fn()
    except REFUSALS as exc:
        fail(str(exc))


def register(app: typer.Typer) -> None:  # noqa: C901 - a flat list of commands
    from backend.models import deploy_cli

    deploy_cli.register(app)
    from backend.models import signing_cli

    signing_cli.register(models_app)
    from backend.platform.cli import fail, out, services

    app.add_typer(models_app, name="models")

    @models_app.command("list")
    def models_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
        """All versions with lifecycle state, aliases, key metrics and integrity (--json adds label and cause)."""
        reg = services(migrate=False).models.registry()
        rows = _refused(reg.list)  # a garbage aliases.json is one line, not a traceback
        if as_json:
            print(json.dumps(jsonable(rows), default=str, indent=2))
            return
        table = Table("version", "state", "aliases", "AUC", "KS", "gates", "intact", "created (UTC)")
        for r in rows:  # the readable label and a cause are in --json (the table stays readable at 80 columns)
            m = r.get("metrics") or {}
            table.add_row(r["version"], r.get("state", ""), ",".join(r.get("aliases", [])), metric(m.get("auc")),
                          metric(m.get("ks")), "pass" if r.get("gates_passed") else "[red]fail[/]",
                          "yes" if r.get("intact") else "[red]NO[/]", str(r.get("created_at", ""))[:19])
        out.print(table)

    @models_app.command("show")
    def models_show(ref: Annotated[str, typer.Argument(help="version id, champion or challenger")] = "champion") -> None:
        """The full evaluation report and gates of one version (JSON)."""
        from backend.models.registry import RegistryError

        reg = services(migrate=False).models.registry()
        try:
            print(json.dumps(jsonable(reg.report(ref)), default=str, indent=2))
        except RegistryError as exc:
            fail(str(exc))

    @models_app.command("promote")
    def models_promote(ref: str, as_user: Annotated[str | None, typer.Option("--as", help=AS_HELP)] = None) -> None:
        """Make a version the champion directly (refused while deployments are halted, and for a version that
        failed its gates or was rolled back for cause unless a risk manager overrode it: `creditrisk models
        override`). The reviewed path is `creditrisk models canary`."""

        svc = services()
        res = _refused(lambda: svc.model_admin.promote(ref, acting(svc, as_user)))
        out.print(f"champion: {res['version']}" + ("" if res.get("changed") else " (unchanged)"))

    @models_app.command("rollback")
    def models_rollback(
        to: Annotated[str | None, typer.Option(help="Any earlier champion (default: the previous one)")] = None,
        as_user: Annotated[str | None, typer.Option("--as", help=AS_HELP)] = None,
        note: Annotated[str | None, typer.Option(help="Why (kept in the audit trail)")] = None,
        cause: Annotated[str | None, typer.Option(help="Roll the current champion back FOR CAUSE, with this written "
                                                  "reason: it cannot come back (canary, promotion, rollback) "
                                                  "without a risk manager's override")] = None,
    ) -> None:
        """Return to an earlier champion in one action: the current one is retired (or rolled back for cause), a
        running canary aborted, cached scores of the versions that stopped serving purged. Allowed while
        deployments are halted."""

        svc = services()
        admin = svc.model_admin
        target = _refused(lambda: admin.rollback(acting(svc, as_user), to=to, note=note, cause=cause))
        out.print(f"champion: {target} (rolled back in {admin.last_rollback_seconds:.2f} s)", highlight=False)
        out.print("this rollback opens an incident (verify, review, post-mortem): creditrisk incidents list --status open",
                  highlight=False)

    @models_app.command("override")
    def models_override(
        version: Annotated[str, typer.Argument(help="version id of a version that failed its gates or was rolled "
                                                    "back for cause")],
        reason: Annotated[str, typer.Option(help="Why it may serve again (at least 20 characters; audited)")],
        as_user: Annotated[str, typer.Option("--as", help=AS_HELP)],
    ) -> None:
        """A risk manager lets a blocked version go to a canary or be promoted, with a written reason; another
        person must then propose or promote it (four-eyes)."""

        svc = services()
        entry = _refused(lambda: svc.model_admin.override(acting(svc, as_user), version, reason=reason))
        out.print(f"override of {version} by {entry['by']} recorded (covers: {', '.join(entry['covers'])}); "
                  "another person may now propose it as a canary or promote it", highlight=False, markup=False)

    @models_app.command("compare")
    def models_compare(
        challenger: Annotated[str, typer.Argument(help="version id or challenger")] = "challenger",
        champion: Annotated[str, typer.Option(help="version id (default: the champion)")] = "champion",
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """Challenger and champion on the SAME rows (the challenger's held-out split)."""

        svc = services(migrate=False)
        reg = svc.models.registry()
        res = _refused(lambda: svc.model_admin.compare(reg.resolve(challenger), reg.resolve(champion)))
        if as_json:
            print(json.dumps(jsonable(res), default=str, indent=2))
            return
        table = Table("", "version", "AUC", "KS", "balanced acc.", "Brier", "ECE")
        for role, m in res["models"].items():
            table.add_row(role, m["version"], *(metric(m.get(k)) for k in ("auc", "ks", "balanced_accuracy", "brier", "ece")))
        out.print(f"held-out rows of {res['holdout_of']}: {res['rows']:,} ({res['defaults']:,} defaults)")
        out.print(table)

    @canary_app.command("status")
    def canary_status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
        """The running canary: version, share, pending step and its history."""

        admin = services().model_admin
        state = _refused(admin.canary_state)
        if as_json:
            print(json.dumps(state, indent=2))
            return
        if not state:
            out.print(f"no canary is running (steps {admin.canary_steps()}); start one with "
                      "creditrisk models canary propose --as USER", highlight=False)
            return
        pending = state.get("pending")
        out.print(f"canary {state['version']} at {state['share']}% (champion {state['champion']}); "
                  + (f"step to {pending['share']}% proposed by {pending['proposed_by']}, waiting for approval"
                     if pending else "no step pending"), highlight=False, markup=False)
        for h in state.get("history", []):
            out.print(f"  {h['at']} {h['action']} {h['share']}% by {h['by']}", highlight=False, markup=False)

    @canary_app.command("propose")
    def canary_propose(
        as_user: Annotated[str, typer.Option("--as", help=AS_HELP)],
        version: Annotated[str | None, typer.Argument(help="Version to start a canary with (default: the newest "
                                                                   "challenger that passed its gates)")] = None,
        note: Annotated[str, typer.Option(help="Note for the reviewer")] = "",
    ) -> None:
        """Start a canary (first step) or propose its next step (an ML engineer; nothing changes until approved)."""

        svc = services()
        state = _refused(lambda: svc.model_admin.canary_propose(acting(svc, as_user), version=version, note=note))
        out.print(f"proposed: {state['version']} from {state['share']}% to {state['pending']['share']}%; a risk "
                  "manager must approve it: creditrisk models canary approve --as USERNAME", highlight=False)

    @canary_app.command("approve")
    def canary_approve(as_user: Annotated[str, typer.Option("--as", help=AS_HELP)],
                       note: Annotated[str, typer.Option(help="Review note")] = "") -> None:
        """Approve the pending step (a risk manager, never the proposer); at 100% the canary becomes champion."""

        svc = services()
        res = _refused(lambda: svc.model_admin.canary_review(acting(svc, as_user), approve=True, note=note))
        if res["promoted"]:
            out.print(f"champion: {res['promoted']['version']} (canary completed)", highlight=False)
        else:
            out.print(f"canary {res['state']['version']} now serves {res['share']}% of applications", highlight=False)

    @canary_app.command("reject")
    def canary_reject(as_user: Annotated[str, typer.Option("--as", help=AS_HELP)],
                      note: Annotated[str, typer.Option(help="Why (at least 10 characters)")]) -> None:
        """Reject the pending step (the share stays as it is)."""

        svc = services()
        res = _refused(lambda: svc.model_admin.canary_review(acting(svc, as_user), approve=False, note=note))
        out.print(f"rejected the step to {res['share']}%", highlight=False)

    @canary_app.command("abort")
    def canary_abort(as_user: Annotated[str | None, typer.Option("--as", help=AS_HELP)] = None,
                     note: Annotated[str, typer.Option(help="Why")] = "") -> None:
        """Stop the canary: every application goes to the champion again (allowed while halted)."""

        svc = services()
        state = _refused(lambda: svc.model_admin.canary_abort(acting(svc, as_user), note=note))
        out.print(f"aborted the canary of {state['version']} (was at {state['share']}%)", highlight=False)
