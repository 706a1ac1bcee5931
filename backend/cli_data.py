"""`creditrisk generate` and `creditrisk demo`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    from backend.cli import fail, out, services

    @app.command()
    def generate(
        rows: Annotated[int, typer.Option(min=1, max=50_000_000, help="Number of applications")] = 10_000,
        seed: Annotated[int, typer.Option(help="Random seed (same seed, same data)")] = 0,
        out_path: Annotated[Path, typer.Option("--out", help="Output file: .csv or .parquet")] = Path("applications.parquet"),
        scenario: Annotated[str, typer.Option(help="none, data_quality_incident, economic_downturn, population_shift")] = "none",
        default_rate: Annotated[float, typer.Option(min=0.001, max=0.5, help="Target default rate")] = 0.05,
        months: Annotated[int, typer.Option(min=1, max=120, help="Months of application dates")] = 6,
        start: Annotated[str, typer.Option(help="First application date (YYYY-MM-DD)")] = "2025-08-01",
    ) -> None:
        """Write synthetic applications (features, protected attributes, timestamp, outcome)."""
        from backend.training.synthetic import SCENARIOS, write_dataset
        from backend.training.synthetic import generate as gen

        if scenario not in SCENARIOS:
            fail(f"unknown --scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}")
        if out_path.suffix.lower() not in (".csv", ".parquet"):
            fail(f"--out must end in .csv or .parquet, got {out_path.name!r}")
        try:
            start_at = datetime.fromisoformat(start).replace(tzinfo=UTC)
        except ValueError:
            fail(f"--start must be a date like 2025-08-01, got {start!r}")
        t0 = datetime.now(UTC)
        df = gen(rows, seed=seed, scenario=scenario, default_rate=default_rate, months=months, start=start_at)
        path = write_dataset(df, out_path)
        secs = (datetime.now(UTC) - t0).total_seconds()
        out.print(f"wrote {len(df):,} applications to {path} in {secs:.1f}s "
                  f"(default rate {df['default'].mean():.2%}, scenario {scenario})")

    @app.command()
    def demo(
        rows: Annotated[int, typer.Option(min=0, max=2_000_000, help="Simulated applications to load")] = 5_000,
        seed: Annotated[int, typer.Option(help="Random seed")] = 7,
        train_rows: Annotated[int, typer.Option(min=2_000, help="Rows to train the demo model on")] = 40_000,
    ) -> None:
        """Prepare the demo (idempotent): schema, one user per role, a trained model, simulated applications."""
        from backend.services.demo import DemoService

        svc = services(migrate=True)
        demo_svc = DemoService(svc)
        created = demo_svc.ensure_users()
        if created:
            out.print("[bold]Demo users created. Passwords are shown once here and kept in "
                      f"{demo_svc.credentials_path} (mode 600):[/]")
            for username, role, password in created:
                out.print(f"  {username:18} {role:14} {password}", highlight=False)
        else:
            out.print(f"demo users exist (passwords in {demo_svc.credentials_path})")
        model_msg = demo_svc.ensure_model(train_rows=train_rows, seed=seed, echo=out.print)
        out.print(model_msg)
        added = demo_svc.load_applications(rows=rows, seed=seed, echo=out.print)
        out.print(f"simulated applications: {added:,} added")


def register_seed_demo(app: typer.Typer) -> None:
    from backend.cli import fail, out, services

    @app.command("seed-demo")
    def seed_demo(
        volume: Annotated[int, typer.Option(min=10, max=2_000_000, help="Applications per month")] = 20_000,
        months: Annotated[int, typer.Option(min=1, max=24, help="Months of history")] = 6,
        seed: Annotated[int, typer.Option(help="Random seed (same seed, same history)")] = 11,
        start: Annotated[str, typer.Option(help="First month (YYYY-MM-DD)")] = "2025-08-01",
        incident: Annotated[bool, typer.Option(help="The month-2 data-quality incident and model rollback")] = True,
        retrain: Annotated[bool, typer.Option(help="Train the incident's retrained model (needs ~20 s)")] = True,
        as_of: Annotated[str | None, typer.Option(help="Outcomes observed as of (default: end of history)")] = None,
        monitoring: Annotated[bool, typer.Option(help="Run the monitors weekly through the history (drift, "
                                                      "performance, fairness, alerts)")] = True,
    ) -> None:
        """Replay months of simulated operations through the real services (idempotent, resumable).

        Rollout phases (shadow, pilot 10%, scaled 50%), applications scored and assigned to arms,
        officers' decisions and overrides with four-eyes reviews, explanations with their LLM usage,
        feedback, monthly surveys, a data-quality incident with a model rollback, and loan outcomes.
        Everything is stored with source "simulated" and labelled so in the console.
        """
        from tqdm import tqdm

        from backend.services.demo import DemoService
        from backend.services.operations_sim import OperationsSimulator, SimConfig

        try:
            start_at = datetime.fromisoformat(start).replace(tzinfo=UTC)
            as_of_at = datetime.fromisoformat(as_of).replace(tzinfo=UTC) if as_of else None
        except ValueError:
            fail(f"--start and --as-of take dates like 2025-08-01 (got {start!r}, {as_of!r})")
        svc = services(migrate=True)
        demo = DemoService(svc)
        demo.ensure_users()
        out.print(demo.ensure_model(train_rows=40_000, seed=7, echo=out.print))
        cfg = SimConfig(volume=volume, months=months, seed=seed, start=start_at, incident=incident, retrain=retrain,
                        as_of=as_of_at, monitoring=monitoring)
        bar = tqdm(total=0, desc="simulating operations", unit="day")

        def progress(done: int, total: int, label: str) -> None:
            bar.total = total
            bar.n = done
            bar.set_postfix_str(label)
            bar.refresh()

        report = OperationsSimulator(svc, cfg, echo=out.print, progress=progress).run()
        bar.close()
        out.print(f"simulated history ({start_at:%Y-%m} + {months} months, seed {seed}): "
                  f"{report.applications:,} applications, {report.decisions:,} decisions, "
                  f"{report.explanations:,} explanations ({report.usage_rows:,} LLM usage rows), "
                  f"{report.feedback:,} ratings, {report.surveys:,} survey answers, {report.outcomes:,} outcomes "
                  f"in {report.seconds:.1f}s" + (f"; {report.skipped_days} days already present" if report.skipped_days
                                                 else ""))
        for note in report.notes:
            out.print(f"  {note}")
