"""`creditrisk score`: score a file of applications (see :mod:`backend.scoring.batch`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    from backend.platform.cli import err, fail, out, services

    @app.command()
    def score(
        input_path: Annotated[Path, typer.Option("--input", help="CSV, Parquet, JSON or JSON-lines file")],
        model: Annotated[str, typer.Option(help="version id, champion or challenger")] = "champion",
        engine: Annotated[str, typer.Option(help="compiled or reference (scikit-learn)")] = "compiled",
        out_path: Annotated[Path | None, typer.Option("--out", help="Write .csv or .json; default: CSV on stdout")] = None,
        dry_run: Annotated[bool, typer.Option(help="Score without recording applications and predictions")] = False,
    ) -> None:
        """Score applications: one row each with id, PD, risk class, confidence, recommendation, reasons."""
        from backend.scoring.batch import run_score

        run_score(services(), input_path, model=model, engine=engine, out_path=out_path, persist=not dry_run,
                  fail=fail, out=out, err=err)
