"""`creditrisk security scan`: the tools' JSON parsed, the policy applied, the evidence recorded.

Only the subprocess output is faked here (canned pip-audit and bandit JSON); the real tools run in
`make security` (.ci/run)."""

from __future__ import annotations

import json
import subprocess
from importlib import metadata
from typing import Any

import pytest
from typer.testing import CliRunner

from backend.cli import app
from backend.compliance import evidence
from backend.operations import security_scan as S

ROOT = S.Path(__file__).resolve().parents[2]


def audit_json(*, vulns: bool = False, reachable: bool = True) -> str:
    if not reachable:
        deps = [{"name": n, "skip_reason": f"Dependency not found on PyPI and could not be audited: {n} (1.0)"}
                for n in ("numpy", "fastapi", "jinja2")]
        return json.dumps({"dependencies": deps, "fixes": []})
    deps: list[dict[str, Any]] = [
        {"name": "numpy", "version": "2.4.6", "vulns": []},
        {"name": "creditrisk", "skip_reason": "distribution marked as editable"},
        {"name": "jinja2", "version": "3.1.2", "vulns": [
            {"id": "GHSA-h5c8-rqwp-cp95", "fix_versions": ["3.1.3"], "aliases": ["CVE-2024-22195"],
             "description": "xmlattr allows keys with spaces"}] if vulns else []},
        {"name": "ecdsa", "version": "0.19.1", "vulns": [
            {"id": "GHSA-wj6h-64fc-37mp", "fix_versions": [], "aliases": ["CVE-2024-23342"],
             "description": "Minerva timing attack"}] if vulns else []},
    ]
    return json.dumps({"dependencies": deps, "fixes": []})


def bandit_json(*, high: bool = False) -> str:
    results = [{"filename": "./backend/cli_api.py", "line_number": 12, "test_id": "B105",
                "issue_severity": "LOW", "issue_confidence": "MEDIUM", "issue_text": "Possible hardcoded password"}]
    if high:
        results.append({"filename": str(ROOT / "backend/services/x.py"), "line_number": 3, "test_id": "B602",
                        "issue_severity": "HIGH", "issue_confidence": "HIGH",
                        "issue_text": "subprocess call with shell=True identified"})
    return json.dumps({"errors": [], "generated_at": "2026-11-24T00:00:00Z", "metrics": {}, "results": results})


@pytest.fixture
def fake_tools(monkeypatch):
    """Replace the subprocess with canned outputs; returns the dict to change them and the argv seen."""
    outputs = {"pip_audit": (0, audit_json(), ""), "bandit": (1, bandit_json(), "")}
    seen: list[list[str]] = []

    def run(argv, **kwargs):
        seen.append(list(argv))
        tool = argv[2]
        code, out, err = outputs[tool]
        return subprocess.CompletedProcess(argv, code, out, err)

    monkeypatch.setattr(S.subprocess, "run", run)
    return outputs, seen


def test_clean_scan_is_recorded_with_versions_findings_and_command(db, clock, fake_tools):
    outputs, seen = fake_tools
    report = S.scan(ROOT)
    assert report.ok and report.exit_code == 0 and report.audited == 3 and report.unaudited == []
    assert [a[2] for a in seen] == ["pip_audit", "bandit"] or [a[2] for a in seen] == ["bandit", "pip_audit"]
    assert "--skip-editable" in seen[[a[2] for a in seen].index("pip_audit")]
    ev = S.record_evidence(db, clock, report, actor="cli:ops", command="creditrisk security scan")
    got = evidence.latest(db, "security_scan")
    assert got is not None and got.id == ev.id and got.ok and got.command == "creditrisk security scan"
    assert got.summary.startswith("security scan passed")
    p = got.payload
    assert p["findings"] == {"dependencies": {"fixable": 0, "no_fix": 0}, "code": {"high": 0, "medium": 0, "low": 1}}
    tools = {t["tool"]: t for t in p["tools"]}
    assert tools["pip-audit"]["version"] == metadata.version("pip-audit")
    assert tools["bandit"]["version"] == metadata.version("bandit")
    assert tools["bandit"]["argv"] == "python -m bandit -r backend app pages -f json -q"


def test_fixable_vulnerability_and_high_severity_fail(db, clock, fake_tools):
    outputs, _ = fake_tools
    outputs["pip_audit"] = (1, audit_json(vulns=True), "Found 2 known vulnerabilities in 2 packages")
    outputs["bandit"] = (1, bandit_json(high=True), "")
    report = S.scan(ROOT)
    assert not report.ok and report.exit_code == 1
    assert report.failures() == ["1 dependency vulnerabilities have a fixed version", "1 high-severity bandit findings"]
    S.record_evidence(db, clock, report)
    p = evidence.latest(db, "security_scan").payload
    assert p["findings"] == {"dependencies": {"fixable": 1, "no_fix": 1}, "code": {"high": 1, "medium": 0, "low": 1}}
    assert {v["id"] for v in p["vulnerabilities"]} == {"GHSA-h5c8-rqwp-cp95", "GHSA-wj6h-64fc-37mp"}
    assert p["code_findings"] == [{"file": "backend/services/x.py", "line": 3, "test": "B602", "severity": "high",
                                   "confidence": "high", "text": "subprocess call with shell=True identified"}]
    assert evidence.latest(db, "security_scan", ok=True) is None


def test_unreachable_vulnerability_data_is_incomplete_never_a_pass(fake_tools):
    outputs, _ = fake_tools
    outputs["pip_audit"] = (0, audit_json(reachable=False), "No known vulnerabilities found")  # what pip-audit says
    report = S.scan(ROOT)
    assert report.audited == 0 and len(report.unaudited) == 3
    assert not report.ok and report.exit_code == 2
    assert report.incomplete() == ["pip-audit audited 0 of 3 packages (the vulnerability data could not be reached)"]
    lenient = S.scan(ROOT, allow_unaudited=True)
    assert lenient.exit_code == 0 and not lenient.ok and "INCOMPLETE" in lenient.summary()


def test_a_tool_that_cannot_run_is_incomplete(fake_tools):
    outputs, _ = fake_tools
    outputs["bandit"] = (2, "", "bandit: error: unrecognized arguments")
    report = S.scan(ROOT)
    assert report.exit_code == 2 and not report.ok
    assert report.incomplete() == ["bandit: " + S.TOOL_FAILED.format(tool="bandit", code=2,
                                                                     stderr="bandit: error: unrecognized arguments")]


def test_cli_scan_records_evidence_and_exits_with_the_verdict(tmp_path, monkeypatch, fake_tools):
    outputs, _ = fake_tools
    for k in list(__import__("os").environ):
        if k.startswith("CREDITRISK_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("CREDITRISK_AUTH__MFA_REQUIRED", "false")  # password-only sign-in (tests/mfa_helpers.py)
    monkeypatch.setenv("CREDITRISK_DATA_DIR", str(tmp_path / "var"))
    res = CliRunner().invoke(app, ["security", "scan", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["ok"] is True
    outputs["bandit"] = (1, bandit_json(high=True), "")
    res = CliRunner().invoke(app, ["security", "scan"])
    assert res.exit_code == 1 and "FAILED" in res.output
    from backend.container import build_services
    from backend.container.settings import load_settings

    svc = build_services(load_settings())
    try:
        latest = evidence.latest(svc.db, "security_scan")
        assert latest is not None and not latest.ok and latest.actor.startswith("cli:")
        assert evidence.latest(svc.db, "security_scan", ok=True) is not None
    finally:
        svc.close()


def test_the_cli_scans_the_repository_not_a_package_folder():
    """After the move to backend/operations/ the CLI's root was backend/ and bandit found no targets."""
    from backend.operations import security_cli

    assert security_cli.ROOT == ROOT
    assert all((security_cli.ROOT / t).is_dir() for t in S.TARGETS)
