"""`creditrisk train`, `creditrisk models …` and `creditrisk score`."""

from __future__ import annotations

import getpass
import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

models_app = typer.Typer(help="Model registry: list, show, promote, rollback, verify.", no_args_is_help=True)


def _actor() -> Any:
    from backend.services.users import Actor

    return Actor(f"cli:{getpass.getuser()}", "ml_engineer")


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
            except PromotionRefused as exc:
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
    def models_promote(ref: str, force: Annotated[bool, typer.Option(help="Promote even if a gate failed")] = False) -> None:
        """Make a version the champion (refused when a gate failed, unless --force)."""
        from backend.model.registry import RegistryError
        from backend.services.model_admin import ModelAdmin

        try:
            res = ModelAdmin(services()).promote(ref, _actor(), force=force)
        except RegistryError as exc:
            fail(str(exc))
        out.print(f"champion: {res['version']}" + ("" if res.get("changed") else " (unchanged)"))

    @models_app.command("rollback")
    def models_rollback() -> None:
        """Return to the previous champion; the current one is retired and its cached scores purged."""
        from backend.model.registry import RegistryError
        from backend.services.model_admin import ModelAdmin

        try:
            target = ModelAdmin(services()).rollback(_actor())
        except RegistryError as exc:
            fail(str(exc))
        out.print(f"champion: {target}")

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


def _print_summary(report: dict[str, Any]) -> None:
    from backend.cli import out

    m = report.get("metrics", {})
    out.print(f"[bold]registered {report.get('version')}[/] (candidate)")
    out.print("held-out: " + ", ".join(f"{k} {_f(v)}" for k, v in m.items() if isinstance(v, int | float)))
    for g in report.get("gates", []):
        mark = "[green]pass[/]" if g.get("passed") else "[red]FAIL[/]"
        out.print(f"  gate {g.get('name')}: {mark} {g.get('detail', '')}", highlight=False)
    out.print("promote with: creditrisk models promote " + str(report.get("version")))
