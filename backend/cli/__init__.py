"""The `creditrisk` command (also `python -m backend`). Every command has --help."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.table import Table

from backend.container.settings import Settings, SettingsError, load_settings
from backend.platform.cli import close_opened, install, out, services, settings

app = typer.Typer(help="creditrisk: AI-assisted credit decisioning.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")



def _settings() -> Settings:
    return load_settings()


def _services(migrate: bool) -> Any:
    from backend.container import build_services

    return build_services(settings(), migrate=migrate)


install(_settings, _services, (SettingsError,))


@app.callback()
def _root(ctx: typer.Context) -> None:
    ctx.call_on_close(close_opened)  # whatever the command opened is closed when it ends


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


@db_app.command("compact")
def db_compact() -> None:
    """Give back the space of rewritten rows (SQLite: VACUUM, e.g. after an upgrade; PostgreSQL: VACUUM ANALYZE)."""
    svc = services(migrate=False)
    before, after = svc.db.vacuum()
    if before is None or after is None:
        out.print(f"VACUUM (ANALYZE) done on {svc.db.dialect}: freed space is reused by new rows")
    else:
        out.print(f"{svc.db.engine.url.database}: {before / 1e6:,.1f} MB -> {after / 1e6:,.1f} MB "
                  f"({(before - after) / 1e6:,.1f} MB given back)", highlight=False)


@db_app.command("status")
def db_status() -> None:
    """Show the schema revision."""
    svc = services(migrate=False)
    out.print(json.dumps(svc.db.ping()))


def _register_subcommands() -> None:
    """Each feature registers its own commands from its ``cli`` module; this order is the order of ``--help``."""
    from backend.alerts import cli as alerts_cli
    from backend.api import cli as api_cli
    from backend.compliance import cli as compliance_cli
    from backend.decisioning import cli as decisioning_cli
    from backend.identity import cli as identity_cli
    from backend.models import cli as models_cli
    from backend.operations import cli as operations_cli
    from backend.rollout import cli as rollout_cli
    from backend.scoring import cli as scoring_cli
    from backend.serving import cli as serving_cli
    from backend.simulation import cli as simulation_cli
    from backend.training import cli as training_cli

    simulation_cli.register(app)
    for feature_cli in (training_cli, scoring_cli, decisioning_cli, models_cli, rollout_cli, alerts_cli, compliance_cli,
                        identity_cli, operations_cli):
        feature_cli.register(app)
    simulation_cli.register_seed_demo(app)
    simulation_cli.register_demo_code(app)
    api_cli.register(app)
    serving_cli.register(app)


_register_subcommands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
