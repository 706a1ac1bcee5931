"""`creditrisk outcomes import|template`: observed loan outcomes from the loan system."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

SHOWN_REJECTIONS = 20


def _printable(value: object, limit: int = 80) -> str:
    """A value from a file, safe for a terminal: control characters escaped, long values cut."""
    text = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}"
                   for c in str(value)[:limit])
    return text + ("…" if len(str(value)) > limit else "")


def register(app: typer.Typer) -> None:
    from backend.platform.cli import fail, operator, out, prove, services

    outcomes_app = typer.Typer(help="Loan outcomes (funded, defaulted) from the loan system.", no_args_is_help=True)
    app.add_typer(outcomes_app, name="outcomes")

    @outcomes_app.command("import")
    def import_outcomes(
        file: Annotated[Path, typer.Argument(help="A .csv or .parquet file (see `creditrisk outcomes template`)")],
        strict: Annotated[bool, typer.Option("--strict", help="Write nothing when any row is rejected")] = False,
        report: Annotated[Path | None, typer.Option("--report", help="Write every rejected row and its reason "
                                                    "to this CSV file")] = None,
        as_user: Annotated[str | None, typer.Option("--as", help="Record the import as this console user, "
                                                    "proven by their CLI token or a password prompt (default: "
                                                    "the CLI token's user, else cli:<your OS user>)")] = None,
    ) -> None:
        """Import observed outcomes: one row per application (its id or external id), funded, default flag
        and observation date.

        Rows are validated one by one (unknown ids, bad booleans or dates, future dates, observations before
        the application, a default on an unfunded loan, duplicates, observations older than the stored one);
        the valid rows are written in one transaction with one audit row. A newer observation replaces the
        stored one. Exit code 0: all rows imported; 1: some rows rejected (see the report); 2: the file was
        refused as a whole (unreadable or missing a column) and nothing was written.
        """
        from rich.markup import escape

        from backend.decisioning.outcomes_file import OutcomeFileError
        from backend.domain import safe_csv_text

        svc = services()
        # --as NAME is proven (their CLI token or password); without it, the CLI token's user, else the OS login
        who = prove(svc, as_user) if as_user is not None else operator(svc, role_without_proof="admin")
        actor, role = who.username, who.role or "unverified"
        try:
            res = svc.outcomes.import_file(file, actor=actor, role=role, strict=strict)
        except OutcomeFileError as exc:
            fail(escape(f"{exc} Nothing was written."))
            raise  # unreachable
        say = lambda text: out.print(text, markup=False, highlight=False)  # noqa: E731
        say(f"file        {_printable(file.name)} (sha256 {res.sha256})")
        say(f"rows        {res.rows:,}")
        say(f"accepted    {res.accepted:,}  (inserted {res.inserted:,}, updated {res.updated:,})")
        say(f"rejected    {len(res.rejected):,}")
        if res.written:
            say(f"batch       {res.batch_id}")
        elif strict and res.rejected:
            say(f"strict mode: nothing was written ({res.valid:,} valid rows held back)")
        if res.rejected:
            say("")
            say(f"first {min(SHOWN_REJECTIONS, len(res.rejected))} rejected rows:")
            for r in res.rejected[:SHOWN_REJECTIONS]:
                say(f"  row {r.row}: {_printable(r.application_id, 40) or '(empty)'}: {_printable(r.reason, 200)}")
        if report is not None:
            frame = res.to_frame()
            report.write_text(safe_csv_text(frame.to_dict("records"), list(frame.columns)), encoding="utf-8",
                              newline="")
            say(f"report      {report} ({len(res.rejected):,} rejected rows)")
        elif res.rejected and len(res.rejected) > SHOWN_REJECTIONS:
            say("(use --report FILE.csv for every rejected row)")
        raise typer.Exit(1 if res.rejected else 0)

    @outcomes_app.command("template")
    def template() -> None:
        """Print the expected CSV header and an example line (redirect it to start a file).

        application_id: our application id or the loan system's external id; funded and default_flag:
        true/false, 1/0 or yes/no (default_flag may be empty; the column may be called defaulted);
        observation_date: an ISO date or datetime, UTC unless it carries an offset.
        """
        from backend.decisioning.outcomes_file import TEMPLATE

        typer.echo(TEMPLATE, nl=False)
