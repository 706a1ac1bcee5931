"""`creditrisk security scan`: pip-audit and bandit, one policy, recorded as ``security_scan`` evidence.

Exit codes: 0 passed; 1 the policy failed (a fixable dependency vulnerability, a high-severity bandit
finding, a file bandit cannot parse); 2 incomplete (a tool could not run, or some dependencies could
not be audited — unless ``--allow-unaudited``). See :mod:`backend.operations.security_scan`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

security_app = typer.Typer(help="Security scanning: dependency audit (pip-audit) and static analysis (bandit).",
                           no_args_is_help=True)
ROOT = Path(__file__).resolve().parents[2]  # the repository: backend/operations/security_cli.py


@security_app.command("scan")
def scan(
    requirement: Annotated[list[Path] | None, typer.Option(
        "--requirement", "-r", help="Audit these requirement files instead of the installed environment")] = None,
    service: Annotated[str, typer.Option(help="pip-audit vulnerability service: pypi or osv")] = "pypi",
    allow_unaudited: Annotated[bool, typer.Option(
        help="Exit 0 when only the dependency audit was incomplete (the vulnerability data could not be "
             "reached); the evidence still records the scan as not ok")] = False,
    record: Annotated[bool, typer.Option(help="Record the result as security_scan evidence")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full report as JSON on stdout")] = False,
) -> None:
    """Run pip-audit and bandit, apply the policy, print the findings and record the evidence."""

    from rich.markup import escape
    from rich.table import Table

    from backend.operations import security_scan as S
    from backend.platform.cli import err, fail, operator, out, services

    if service not in ("pypi", "osv"):
        fail("--service must be pypi or osv")
    report = S.scan(ROOT, requirements=requirement or (), service=service, allow_unaudited=allow_unaudited)
    payload = report.payload()
    if as_json:
        typer.echo(json.dumps(payload, indent=2))
    else:
        tools = Table("tool", "version", "seconds", "command")
        for t in report.tools:
            tools.add_row(t.tool, t.version or "-", f"{t.seconds:.1f}", escape(S._display(t.argv)))
        out.print(tools)
        if report.vulnerabilities:
            vulns = Table("package", "version", "vulnerability", "fixed in")
            for v in report.vulnerabilities:
                vulns.add_row(v["package"], v["version"], v["id"], ", ".join(v["fix_versions"]) or "no fix yet")
            out.print(vulns)
        shown = [f for f in report.code_findings if f["severity"] != "low"]
        if shown:
            code = Table("severity", "test", "where", "issue")
            for f in shown:
                code.add_row(f["severity"], f["test"], f"{f['file']}:{f['line']}", escape(f["text"]))
            out.print(code)
        for line in report.incomplete():
            err.print(f"[yellow]incomplete:[/] {escape(line)}", highlight=False)
        out.print(escape(report.summary()), highlight=False, soft_wrap=True)
    if record:
        svc = services()
        ev = S.record_evidence(svc.db, svc.clock, report, actor=operator(svc).username)
        (err if as_json else out).print(f"recorded security_scan evidence {ev.id} (ok={report.ok})", highlight=False)
    raise typer.Exit(report.exit_code)


def register(app: typer.Typer) -> None:
    app.add_typer(security_app, name="security")
