"""`creditrisk train` (a lender's file or the synthetic generator) and `creditrisk retrain` (from the book)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from backend.platform.cli import acting, jsonable, metric, progress_bar

SEARCH_HELP = ("Then search for a less discriminatory alternative (features carrying the disparity dropped, monotone "
               "constraints, regularisation; same held-out rows) and register the chosen one as the challenger")
AS_HELP = "The username acting, proven by their CLI token or a password prompt (their role is read from the users table)"


def _refused(fn: Any) -> Any:
    from backend.models import REFUSALS
    from backend.platform.cli import fail
    from backend.training.retrain import RetrainError

    errors: tuple[type[BaseException], ...] = (*REFUSALS, RetrainError)
    try:
        return fn()
    except errors as exc:
        fail(str(exc))


def register(app: typer.Typer) -> None:
    from backend.platform.cli import err, fail, out, services, settings

    @app.command()
    def train(
        data: Annotated[Path | None, typer.Option(help="CSV or Parquet file; default: the synthetic generator")] = None,
        target: Annotated[str | None, typer.Option(help="Target column (1 = bad outcome, see --positive)")] = None,
        positive: Annotated[str | None, typer.Option(help="Value of the target that means default/bad")] = None,
        protected: Annotated[str | None, typer.Option(help="Protected columns, comma-separated (fairness only)")] = None,
        exclude: Annotated[str | None, typer.Option(help="Columns to ignore, comma-separated")] = None,
        reasons: Annotated[Path | None, typer.Option(help="YAML/JSON map column: adverse-action reason for your own "
                                                     "columns (default: 'Other, specify: <column>')")] = None,
        schema: Annotated[Path | None, typer.Option(help="YAML file with data/target/positive/protected/exclude")] = None,
        rows: Annotated[int, typer.Option(min=1000, help="Synthetic rows when no --data is given")] = 20_000,
        seed: Annotated[int, typer.Option(help="Random seed")] = 0,
        promote: Annotated[bool, typer.Option(help="Promote to champion if every gate passes")] = False,
        search_alternatives: Annotated[bool, typer.Option("--search-alternatives", help=SEARCH_HELP)] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print the evaluation report as JSON on stdout")] = False,
    ) -> None:
        """Train the primary (EasyEnsemble) and fallback (BalancedRandomForest), evaluate, register a candidate."""
        from backend.models import DeploymentsHalted, PromotionRefused, RegistryError
        from backend.training.dataset import DatasetError
        from backend.training.train import train_and_register

        s = settings()
        svc = services()
        try:
            report = train_and_register(data, target=target, positive=positive, protected=protected, exclude=exclude,
                                        reasons=reasons, schema=schema, registry_root=s.model.registry_dir, name=s.model.name,
                                        rows=rows, seed=seed, progress=None if as_json else progress_bar("training"),
                                        registry=svc.models.registry(),  # the folder or MLflow (registry_url)
                                        search_alternatives=search_alternatives)
        except (DatasetError, FileNotFoundError, RegistryError) as exc:  # RegistryError: e.g. MLflow is down
            fail(str(exc))
        admin, actor = svc.model_admin, acting(svc, None)  # the CLI token's user, else the OS login
        admin.registered(report, actor)
        alt = (report.get("alternatives") or {}).get("report")
        if alt:
            admin.registered(alt, actor)  # the search's summary is in its lineage, so in the audit row
        if promote:
            try:
                admin.promote(report["version"], actor)
                report["promoted"] = True
            except (PromotionRefused, DeploymentsHalted) as exc:
                report["promoted"] = False
                err.print(f"not promoted: {exc}")
        if as_json:
            print(json.dumps(jsonable(report), default=str, indent=2))
            return
        _print_summary(report)
        _print_search(report)

    @app.command()
    def retrain(
        as_of: Annotated[str | None, typer.Option(help="Date (YYYY-MM-DD, UTC): outcomes known by then; "
                                                  "default now")] = None,
        months: Annotated[int | None, typer.Option(min=1, max=120, help="Window in months (default: "
                                                   "monitoring.retrain_window_months)")] = None,
        if_due: Annotated[bool, typer.Option("--if-due", help="Only when the last registration is older than "
                                             "monitoring.retrain_every_days or a retrain alert is open (cron)")] = False,
        as_user: Annotated[str | None, typer.Option("--as", help=AS_HELP)] = None,
        search_alternatives: Annotated[bool, typer.Option("--search-alternatives", help=SEARCH_HELP)] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout")] = False,
    ) -> None:
        """Retrain on the book (funded loans with known outcomes), run the gates, register the challenger."""
        from datetime import UTC, datetime

        from backend.domain import Perm, allowed

        svc = services()
        at = None
        if as_of:
            try:
                at = datetime.fromisoformat(as_of)
            except ValueError:
                fail(f"--as-of {as_of!r} is not a date (YYYY-MM-DD)")
                raise
            at = at.replace(tzinfo=UTC) if at.tzinfo is None else at
        actor = acting(svc, as_user)
        if not allowed(actor.role, Perm.MANAGE_MODELS):
            fail(f"{actor.username!r} may not retrain models (an ML engineer does)")
        trigger = "manual"
        if if_due:
            due, why = svc.retrainer.due(at)
            err.print(why, highlight=False)
            if not due:
                return
            trigger = f"scheduled ({why})"
        report = _refused(lambda: svc.retrainer.from_book(actor, at=at, months=months, trigger=trigger,
                                                    progress=None if as_json else progress_bar("retraining"),
                                                    search_alternatives=search_alternatives))
        if as_json:
            print(json.dumps(jsonable(report), default=str, indent=2))
            return
        _print_summary(report, promote_hint=False)
        _print_search(report)
        out.print(report["selection_bias"], highlight=False)
        out.print(f"retrained in {report['timings']['total_s']:.1f} s; next: creditrisk models compare, then "
                  "creditrisk models canary propose --as USER", highlight=False)


def _print_summary(report: dict[str, Any], *, promote_hint: bool = True) -> None:
    from backend.platform.cli import out

    m = report.get("metrics", {})
    out.print(f"[bold]registered {report.get('version')}[/] (candidate)")
    out.print("held-out: " + ", ".join(f"{k} {metric(v)}" for k, v in m.items() if isinstance(v, int | float)))
    for g in report.get("gates", []):
        mark = "[green]pass[/]" if g.get("passed") else "[red]FAIL[/]"
        out.print(f"  gate {g.get('name')}: {mark} {g.get('detail', '')}", highlight=False)
    if promote_hint:
        out.print("promote with: creditrisk models promote " + str(report.get("version")))


def _print_search(report: dict[str, Any]) -> None:
    """The frontier of a less-discriminatory-alternatives search, or the hint to run one when a fairness gate failed."""
    from backend.platform.cli import out
    from backend.training.alternatives_views import frontier_table, headline

    record = report.get("alternatives")
    if not record:
        if any(str(g.get("name", "")).startswith("fairness:") and not g.get("passed") for g in report.get("gates", [])):
            out.print("a disparate-impact screen failed: run again with --search-alternatives to search for a less "
                      "discriminatory alternative", highlight=False)
        return
    table = frontier_table(record)
    out.print("[bold]less-discriminatory-alternatives search[/] (same held-out rows, one cutoff for every group)")
    for _, r in table.iterrows():
        mark = "*" if r["chosen"] else " "
        air = "n/a" if r["worst AIR"] is None else f"{r['worst AIR']:.3f} [{r['AIR low']:.3f}, {r['AIR high']:.3f}]"
        out.print(f" {mark} {r['candidate']:<22} AUC {r['AUC']:.4f} [{r['AUC low']:.4f}, {r['AUC high']:.4f}] "
                  f"cost {r['AUC cost']:+.4f}  worst AIR {air} {r['worst attribute'] or ''}  "
                  f"{'passes' if r['passes screen'] else 'FAILS'}", highlight=False)
    out.print(headline(record), highlight=False)
    if record.get("version"):
        out.print(f"registered {record['version']} as the challenger; next: creditrisk models compare", highlight=False)
    out.print(f"search took {record['timings']['total_s']:.1f} s", highlight=False)
