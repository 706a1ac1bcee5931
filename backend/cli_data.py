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
