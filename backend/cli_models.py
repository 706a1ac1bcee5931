"""`creditrisk train`, `creditrisk retrain`, `creditrisk models …` (list, show, compare, promote, rollback,
verify, canary …) and `creditrisk score`.

Canary steps name a real user with ``--as`` (role read from the users table; an ML engineer proposes,
a risk manager, never the proposer, approves). Promote and rollback act as ``cli:<login>`` (ML
engineer) unless ``--as`` names a user. A refusal prints the reason and exits with code 2.
"""

from __future__ import annotations

import getpass
import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

models_app = typer.Typer(help="Model registry: list, show, compare, promote, rollback, verify, canary.",
                         no_args_is_help=True)
canary_app = typer.Typer(help="Canary promotion of the challenger (5 -> 25 -> 50 -> 100 %), four-eyes per step.",
                         no_args_is_help=True)
models_app.add_typer(canary_app, name="canary")
AS_HELP = "The username acting (their role is read from the users table)"


def _actor(svc: Any = None, name: str | None = None) -> Any:
    from backend.services.users import Actor

    if svc is None or not name:
        return Actor(f"cli:{getpass.getuser()}", "ml_engineer")
    info = svc.users.get(name)
    return Actor(info.username, info.role) if info is not None else Actor(name, "")


def _refused(fn: Any) -> Any:
    from backend.cli import fail
    from backend.services.model_admin import REFUSALS
    from backend.training.retrain import RetrainError

    errors: tuple[type[BaseException], ...] = (*REFUSALS, RetrainError)
    try:
        return fn()
    except errors as exc:
        fail(str(exc))


def register(app: typer.Typer) -> None:  # noqa: C901 - a flat list of commands
    from backend.cli import err, fail, out, services, settings

    app.add_typer(models_app, name="models")

    @app.command()
    def train(
        data: Annotated[Path | None, typer.Option(help="CSV or Parquet file; default: the synthetic generator")] = None,
        target: Annotated[str | None, typer.Option(help="Target column (1 = bad outcome, see --positive)")] = None,
        positive: Annotated[str | None, typer.Option(help="Value of the target that means default/bad")] = None,
        protected: Annotated[str | None, typer.Option(help="Protected columns, comma-separated (fairness only)")] = None,
        exclude: Annotated[str | None, typer.Option(help="Columns to ignore, comma-separated")] = None,
        schema: Annotated[Path | None, typer.Option(help="YAML file with data/target/positive/protected/exclude")] = None,
        rows: Annotated[int, typer.Option(min=1000, help="Synthetic rows when no --data is given")] = 20_000,
        seed: Annotated[int, typer.Option(help="Random seed")] = 0,
        promote: Annotated[bool, typer.Option(help="Promote to champion if every gate passes")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print the evaluation report as JSON on stdout")] = False,
    ) -> None:
        """Train the primary (EasyEnsemble) and fallback (BalancedRandomForest), evaluate, register a candidate."""
        from backend.model.registry import PromotionRefused
        from backend.services.halts import DeploymentsHalted
        from backend.services.model_admin import ModelAdmin
        from backend.training.dataset import DatasetError
        from backend.training.pipeline import _bar
        from backend.training.train import train_and_register

        s = settings()
        try:
            report = train_and_register(data, target=target, positive=positive, protected=protected, exclude=exclude,
                                        schema=schema, registry_root=s.model.registry_dir, name=s.model.name,
                                        rows=rows, seed=seed, progress=None if as_json else _bar())
        except (DatasetError, FileNotFoundError) as exc:
            fail(str(exc))
        admin = ModelAdmin(services())
        admin.registered(report, _actor())
        if promote:
            try:
                admin.promote(report["version"], _actor())
                report["promoted"] = True
            except (PromotionRefused, DeploymentsHalted) as exc:
                report["promoted"] = False
                err.print(f"not promoted: {exc}")
        if as_json:
            print(json.dumps(_nan_to_none(report), default=str, indent=2))
            return
        _print_summary(report)

    @models_app.command("list")
    def models_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
        """All versions with status, aliases, key metrics and integrity."""
        rows = services(migrate=False).models.registry().list()
        if as_json:
            print(json.dumps(_nan_to_none(rows), default=str, indent=2))
            return
        table = Table("version", "status", "aliases", "AUC", "KS", "gates", "intact", "created (UTC)")
        for r in rows:
            m = r.get("metrics") or {}
            table.add_row(r["version"], r.get("status", ""), ",".join(r.get("aliases", [])), _f(m.get("auc")),
                          _f(m.get("ks")), "pass" if r.get("gates_passed") else "[red]fail[/]",
                          "yes" if r.get("intact") else "[red]NO[/]", str(r.get("created_at", ""))[:19])
        out.print(table)

    @models_app.command("show")
    def models_show(ref: Annotated[str, typer.Argument(help="version id, champion or challenger")] = "champion") -> None:
        """The full evaluation report and gates of one version (JSON)."""
        from backend.model.registry import RegistryError

        reg = services(migrate=False).models.registry()
        try:
            print(json.dumps(_nan_to_none(reg.report(ref)), default=str, indent=2))
        except RegistryError as exc:
            fail(str(exc))

    @models_app.command("promote")
    def models_promote(ref: str, force: Annotated[bool, typer.Option(help="Promote even if a gate failed")] = False,
                       as_user: Annotated[str | None, typer.Option("--as", help=AS_HELP)] = None) -> None:
        """Make a version the champion directly (refused when a gate failed, unless --force, and while
        deployments are halted). The reviewed path is `creditrisk models canary`."""
        from backend.services.model_admin import ModelAdmin

        svc = services()
        res = _refused(lambda: ModelAdmin(svc).promote(ref, _actor(svc, as_user), force=force))
        out.print(f"champion: {res['version']}" + ("" if res.get("changed") else " (unchanged)"))

    @models_app.command("rollback")
    def models_rollback(
        to: Annotated[str | None, typer.Option(help="Any earlier champion (default: the previous one)")] = None,
        as_user: Annotated[str | None, typer.Option("--as", help=AS_HELP)] = None,
        note: Annotated[str | None, typer.Option(help="Why (kept in the audit trail)")] = None,
    ) -> None:
        """Return to an earlier champion in one action: the current one is retired, a running canary aborted,
        cached scores of the versions that stopped serving purged. Allowed while deployments are halted."""
        from backend.services.model_admin import ModelAdmin

        svc = services()
        admin = ModelAdmin(svc)
        target = _refused(lambda: admin.rollback(_actor(svc, as_user), to=to, note=note))
        out.print(f"champion: {target} (rolled back in {admin.last_rollback_seconds:.2f} s)", highlight=False)

    @models_app.command("compare")
    def models_compare(
        challenger: Annotated[str, typer.Argument(help="version id or challenger")] = "challenger",
        champion: Annotated[str, typer.Option(help="version id (default: the champion)")] = "champion",
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """Challenger and champion on the SAME rows (the challenger's held-out split)."""
        from backend.services.model_admin import ModelAdmin

        svc = services(migrate=False)
        reg = svc.models.registry()
        res = _refused(lambda: ModelAdmin(svc).compare(reg.resolve(challenger), reg.resolve(champion)))
        if as_json:
            print(json.dumps(_nan_to_none(res), default=str, indent=2))
            return
        table = Table("", "version", "AUC", "KS", "balanced acc.", "Brier", "ECE")
        for role, m in res["models"].items():
            table.add_row(role, m["version"], *(_f(m.get(k)) for k in ("auc", "ks", "balanced_accuracy", "brier", "ece")))
        out.print(f"held-out rows of {res['holdout_of']}: {res['rows']:,} ({res['defaults']:,} defaults)")
        out.print(table)

    @models_app.command("verify")
    def models_verify(ref: Annotated[str, typer.Argument(help="version id, champion or challenger")] = "champion") -> None:
        """Check every artifact's SHA-256 (exit 1 if one fails)."""
        from backend.model.registry import RegistryError

        reg = services(migrate=False).models.registry()
        try:
            version = reg.resolve(ref)
            errors = reg.verify(version)
        except RegistryError as exc:
            fail(str(exc))
        if errors:
            for file, msg in errors.items():
                err.print(f"{file}: {msg}")
            raise typer.Exit(1)
        out.print(f"{version}: all artifacts intact")

    @app.command()
    def retrain(
        as_of: Annotated[str | None, typer.Option(help="Date (YYYY-MM-DD, UTC): outcomes known by then; "
                                                  "default now")] = None,
        months: Annotated[int | None, typer.Option(min=1, max=120, help="Window in months (default: "
                                                   "monitoring.retrain_window_months)")] = None,
        if_due: Annotated[bool, typer.Option("--if-due", help="Only when the last registration is older than "
                                             "monitoring.retrain_every_days or a retrain alert is open (cron)")] = False,
        as_user: Annotated[str | None, typer.Option("--as", help=AS_HELP)] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout")] = False,
    ) -> None:
        """Retrain on the book (funded loans with known outcomes), run the gates, register the challenger."""
        from datetime import UTC, datetime

        from backend.permissions import Perm, allowed
        from backend.training.pipeline import _bar
        from backend.training.retrain import retrain_due, retrain_from_book

        svc = services()
        at = None
        if as_of:
            try:
                at = datetime.fromisoformat(as_of)
            except ValueError:
                fail(f"--as-of {as_of!r} is not a date (YYYY-MM-DD)")
                raise
            at = at.replace(tzinfo=UTC) if at.tzinfo is None else at
        actor = _actor(svc, as_user)
        if not allowed(actor.role, Perm.MANAGE_MODELS):
            fail(f"{actor.username!r} may not retrain models (an ML engineer does)")
        trigger = "manual"
        if if_due:
            due, why = retrain_due(svc, at)
            err.print(why, highlight=False)
            if not due:
                return
            trigger = f"scheduled ({why})"
        report = _refused(lambda: retrain_from_book(svc, actor, at=at, months=months, trigger=trigger,
                                                    progress=None if as_json else _bar()))
        if as_json:
            print(json.dumps(_nan_to_none(report), default=str, indent=2))
            return
        _print_summary(report, promote_hint=False)
        out.print(report["selection_bias"], highlight=False)
        out.print(f"retrained in {report['timings']['total_s']:.1f} s; next: creditrisk models compare, then "
                  "creditrisk models canary propose --as USER", highlight=False)

    @canary_app.command("status")
    def canary_status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
        """The running canary: version, share, pending step and its history."""
        from backend.services.model_admin import ModelAdmin

        admin = ModelAdmin(services())
        state = admin.canary_state()
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
        version: Annotated[str | None, typer.Argument(help="Version to start a canary with (default: the challenger)")] = None,
        note: Annotated[str, typer.Option(help="Note for the reviewer")] = "",
    ) -> None:
        """Start a canary (first step) or propose its next step (an ML engineer; nothing changes until approved)."""
        from backend.services.model_admin import ModelAdmin

        svc = services()
        state = _refused(lambda: ModelAdmin(svc).canary_propose(_actor(svc, as_user), version=version, note=note))
        out.print(f"proposed: {state['version']} from {state['share']}% to {state['pending']['share']}%; a risk "
                  "manager must approve it: creditrisk models canary approve --as USERNAME", highlight=False)

    @canary_app.command("approve")
    def canary_approve(as_user: Annotated[str, typer.Option("--as", help=AS_HELP)],
                       note: Annotated[str, typer.Option(help="Review note")] = "") -> None:
        """Approve the pending step (a risk manager, never the proposer); at 100% the canary becomes champion."""
        from backend.services.model_admin import ModelAdmin

        svc = services()
        res = _refused(lambda: ModelAdmin(svc).canary_review(_actor(svc, as_user), approve=True, note=note))
        if res["promoted"]:
            out.print(f"champion: {res['promoted']['version']} (canary completed)", highlight=False)
        else:
            out.print(f"canary {res['state']['version']} now serves {res['share']}% of applications", highlight=False)

    @canary_app.command("reject")
    def canary_reject(as_user: Annotated[str, typer.Option("--as", help=AS_HELP)],
                      note: Annotated[str, typer.Option(help="Why (at least 10 characters)")]) -> None:
        """Reject the pending step (the share stays as it is)."""
        from backend.services.model_admin import ModelAdmin

        svc = services()
        res = _refused(lambda: ModelAdmin(svc).canary_review(_actor(svc, as_user), approve=False, note=note))
        out.print(f"rejected the step to {res['share']}%", highlight=False)

    @canary_app.command("abort")
    def canary_abort(as_user: Annotated[str | None, typer.Option("--as", help=AS_HELP)] = None,
                     note: Annotated[str, typer.Option(help="Why")] = "") -> None:
        """Stop the canary: every application goes to the champion again (allowed while halted)."""
        from backend.services.model_admin import ModelAdmin

        svc = services()
        state = _refused(lambda: ModelAdmin(svc).canary_abort(_actor(svc, as_user), note=note))
        out.print(f"aborted the canary of {state['version']} (was at {state['share']}%)", highlight=False)

    @app.command()
    def score(
        input_path: Annotated[Path, typer.Option("--input", help="CSV, Parquet, JSON or JSON-lines file")],
        model: Annotated[str, typer.Option(help="version id, champion or challenger")] = "champion",
        engine: Annotated[str, typer.Option(help="compiled or reference (scikit-learn)")] = "compiled",
        out_path: Annotated[Path | None, typer.Option("--out", help="Write .csv or .json; default: CSV on stdout")] = None,
        dry_run: Annotated[bool, typer.Option(help="Score without recording applications and predictions")] = False,
    ) -> None:
        """Score applications: one row each with id, PD, risk class, confidence, recommendation, reasons."""
        from backend.cli_scoring import run_score

        run_score(services(), input_path, model=model, engine=engine, out_path=out_path, persist=not dry_run,
                  fail=fail, out=out, err=err)


def _f(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, int | float) and math.isfinite(v) else "–"


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_nan_to_none(v) for v in obj]
    return obj


def _print_summary(report: dict[str, Any], *, promote_hint: bool = True) -> None:
    from backend.cli import out

    m = report.get("metrics", {})
    out.print(f"[bold]registered {report.get('version')}[/] (candidate)")
    out.print("held-out: " + ", ".join(f"{k} {_f(v)}" for k, v in m.items() if isinstance(v, int | float)))
    for g in report.get("gates", []):
        mark = "[green]pass[/]" if g.get("passed") else "[red]FAIL[/]"
        out.print(f"  gate {g.get('name')}: {mark} {g.get('detail', '')}", highlight=False)
    if promote_hint:
        out.print("promote with: creditrisk models promote " + str(report.get("version")))
