"""`creditrisk generate` and `creditrisk demo`."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer


def register(app: typer.Typer) -> None:
    from backend.platform.cli import fail, out, progress_bar, services

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
        from backend.training import SCENARIOS, write_dataset
        from backend.training import generate as gen

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
        history: Annotated[bool, typer.Option(help="Also replay the simulated history (as `seed-demo` with its "
                                                   "defaults) before loading today's applications")] = False,
        volume: Annotated[int, typer.Option(min=10, max=2_000_000,
                                            help="With --history: applications per month")] = 20_000,
        background: Annotated[bool, typer.Option(help="With --history: load today's applications first and write "
                                                      "the history in a process of its own, returning at once "
                                                      "(`make run` opens the console meanwhile; pages say how far "
                                                      "it has got)")] = False,
    ) -> None:
        """Prepare the demo (idempotent): schema, one user per role, a trained model, simulated applications.

        ``make run`` calls it once with ``--history``: one process start instead of three (~4 s each)."""
        from backend.simulation.demo import DemoService

        if background and not history:
            fail("--background writes the simulated history beside the console: use it with --history")
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
        enrolled = demo_svc.ensure_mfa()
        if enrolled:
            out.print(f"[bold]Second factor:[/] {', '.join(enrolled)} enrolled in TOTP (their roles approve, override, "
                      f"promote or administer); secrets and recovery codes in {demo_svc.mfa_path} (mode 600). "
                      "At sign-in, enter the code `creditrisk demo-code NAME` prints, or scan the otpauth:// line "
                      "of that file with an authenticator app.")
        model_msg = demo_svc.ensure_model(train_rows=train_rows, seed=seed, echo=out.print,
                                          progress=progress_bar("training"))
        out.print(model_msg)
        sim = _simulator(svc, volume=volume) if history and background else None
        if sim is not None:  # the history beside the console (`make run`), so first what the console needs now:
            sim.prepare_rollout()  # the phases (today's applications are scored in the arm of the phase in force)
            for note in sim.prepare_models():  # the incident's retrained model promoted and rolled back already
                out.print(f"  {note}")
        elif history:
            _simulate(svc, volume=volume)
        added = demo_svc.load_applications(rows=rows, seed=seed, echo=out.print,
                                           progress=progress_bar("scoring simulated applications"))
        out.print(f"simulated applications: {added:,} added")
        if sim is not None:
            from backend.simulation.background import start_history

            # (more simulated applications than today's: the history's days are in this book)
            out.print(start_history(svc.settings.data_dir, sim.cfg, book_has_history=svc.book.simulated_count() > rows))


def register_demo_code(app: typer.Typer) -> None:
    from backend.platform.cli import fail, out, services

    @app.command("demo-code")
    def demo_code(username: str) -> None:
        """Print a demo user's current one-time code (from the secret `creditrisk demo` kept in
        <data_dir>/demo_mfa.txt; the database is not read: without that file there is no code)."""
        from backend.identity import current_code
        from backend.simulation.demo import DemoService

        demo_svc = DemoService(services())
        secret = demo_svc.secret_for(username)
        if secret is None:
            fail(f"no demo secret for {username!r} in {demo_svc.mfa_path} (run `creditrisk demo` first)")
            return
        code, left = current_code(secret)
        out.print(f"{code}  (valid {left} s more; each code works once)", highlight=False)


def register_seed_demo(app: typer.Typer) -> None:
    from backend.platform.cli import fail, out, progress_bar, services

    @app.command("seed-demo")
    def seed_demo(
        volume: Annotated[int, typer.Option(min=10, max=2_000_000, help="Applications per month")] = 20_000,
        months: Annotated[int, typer.Option(min=1, max=24, help="Months of history")] = 6,
        seed: Annotated[int, typer.Option(help="Random seed (same seed, same history)")] = 11,
        start: Annotated[str | None, typer.Option(help="First day (YYYY-MM-DD); default: the history ends "
                                                       "yesterday (rolling, by the project's clock)")] = None,
        incident: Annotated[bool, typer.Option(help="The month-2 data-quality incident and model rollback")] = True,
        retrain: Annotated[bool, typer.Option(help="Train the incident's retrained model (needs ~20 s)")] = True,
        as_of: Annotated[str | None, typer.Option(help="Outcomes observed as of (default: yesterday for a rolling "
                                                       "history, nine months after the end for --start)")] = None,
        monitoring: Annotated[bool, typer.Option(help="Run the monitors weekly through the history (drift, "
                                                      "performance, fairness, alerts)")] = True,
    ) -> None:
        """Replay months of simulated operations through the real services (idempotent, resumable).

        Rollout phases (shadow, pilot 10%, scaled 50%), applications scored and assigned to arms,
        officers' decisions and overrides with four-eyes reviews, explanations with their LLM usage,
        feedback, monthly surveys, a data-quality incident with a model rollback, and loan outcomes.
        Everything is stored with source "simulated" and labelled so in the console.
        """
        from backend.simulation.demo import DemoService

        try:
            start_at = datetime.fromisoformat(start).replace(tzinfo=UTC) if start else None
            as_of_at = datetime.fromisoformat(as_of).replace(tzinfo=UTC) if as_of else None
        except ValueError:
            fail(f"--start and --as-of take dates like 2025-08-01 (got {start!r}, {as_of!r})")
        svc = services(migrate=True)
        demo = DemoService(svc)
        demo.ensure_users()
        out.print(demo.ensure_model(train_rows=40_000, seed=7, echo=out.print, progress=progress_bar("training")))
        _simulate(svc, volume=volume, months=months, seed=seed, start_at=start_at, as_of_at=as_of_at,
                  incident=incident, retrain=retrain, monitoring=monitoring)


def _config(svc: Any, *, volume: int, months: int = 6, seed: int = 11, start_at: datetime | None = None,
            as_of_at: datetime | None = None, incident: bool = True, retrain: bool = True,
            monitoring: bool = True) -> Any:
    from backend.simulation.config import SimConfig

    # the weekly monitor runs in a second process, overlapping the days (backend/simulation/monitors.py)
    opts: dict[str, Any] = dict(volume=volume, seed=seed, incident=incident, retrain=retrain, monitoring=monitoring,
                                monitor_process=monitoring)
    if as_of_at is not None:
        opts["as_of"] = as_of_at
    return (SimConfig(start=start_at, months=months, **opts) if start_at is not None
            else SimConfig.rolling(svc.clock.now(), months=months, **opts))


def _simulator(svc: Any, **kw: Any) -> Any:
    """The simulator of the history ``kw`` describes (:func:`_config`), with no progress reports yet."""
    from backend.platform.cli import out
    from backend.simulation.operations import OperationsSimulator

    return OperationsSimulator(svc, _config(svc, **kw), echo=out.print)


def _simulate(svc: Any, **kw: Any) -> None:
    """Replay the simulated history through ``svc`` and print what it wrote (``seed-demo``, ``demo --history``),
    recording its progress for the console (:mod:`backend.decisioning.preparation`)."""
    from backend.decisioning import ProgressFile, ProgressRecorder
    from backend.platform.cli import out, progress_bar
    from backend.simulation.background import LOG_ENV
    from backend.simulation.monitors import quiet_simulated_alerts

    bar = progress_bar("simulating operations")
    sim = _simulator(svc, **kw)
    cfg = sim.cfg
    log = os.environ.get(LOG_ENV)
    recorder = ProgressRecorder(ProgressFile(svc.settings.data_dir), first_day=cfg.start.date(),
                                last_day=(cfg.end - timedelta(days=1)).date(), days=(cfg.end - cfg.start).days,
                                log=Path(log) if log else None)

    def progress(step: str, done: int, total: int) -> None:
        bar(step, done, total)
        recorder.day(step, done, total)
        if done >= total:
            recorder.finishing()

    sim.progress = progress
    quiet_simulated_alerts()
    try:
        report = sim.run()
    except Exception as exc:
        recorder.failed(f"{type(exc).__name__}: {exc}")
        raise
    summary = (f"simulated history ({cfg.start:%Y-%m-%d} to {cfg.end - timedelta(days=1):%Y-%m-%d}, seed {cfg.seed}): "
               f"{report.applications:,} applications, {report.decisions:,} decisions, "
               f"{report.explanations:,} explanations ({report.usage_rows:,} LLM usage rows), "
               f"{report.feedback:,} ratings, {report.surveys:,} survey answers, {report.outcomes:,} outcomes "
               f"in {report.seconds:.1f}s" + (f"; {report.skipped_days} days already present" if report.skipped_days
                                              else ""))
    recorder.done(summary)
    out.print(summary)
    for note in report.notes:
        out.print(f"  {note}")
