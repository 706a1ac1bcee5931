"""Security scan: pip-audit (known vulnerabilities in the dependencies) and bandit (static analysis of
``backend/``, ``app/``, ``pages/``), run as subprocesses, parsed from their JSON and judged by one policy.

Policy (the build fails, exit 1):
* a dependency with a known vulnerability **that has a fixed version** (upgrading is possible, so
  shipping it is a choice); a vulnerability with no fix yet is reported, not failed (pip-audit's data
  carries no severity to tell a critical one from a minor one, so "no fix" is listed for a person);
* any bandit finding of **high severity** (medium and low are counted and listed; ruff's ``S`` rules
  already run the same checks line by line in ``make lint``, with reviewed ``noqa`` exceptions);
* a file bandit could not parse.

A scan that could not run a tool, or whose dependency audit could not reach the vulnerability data
for every package, is *incomplete* (exit 2): pip-audit says "No known vulnerabilities found" even
when it audited nothing, so the number of packages actually audited is checked here.
``allow_unaudited`` turns an incomplete dependency audit into a warning (exit 0), for machines that
cannot reach the vulnerability service; the evidence then still records ``ok=False``.

pip-audit audits the project's virtual environment (what ``make install-dev`` installed from the
pinned requirement files: direct and transitive dependencies, tools included), or the given
requirement files (``-r``; pip-audit then resolves them in a temporary environment).
"""

from __future__ import annotations

import json
import subprocess  # noqa: S404 - runs the two scanners with fixed argument lists, never a shell
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

TARGETS = ("backend", "app", "pages")
TOOL_TIMEOUT = 900.0
MAX_LISTED = 50
NOT_INSTALLED = "{tool} is not installed: pip install -r requirements-dev.txt"
TOOL_FAILED = "{tool} exited with status {code}: {stderr}"
BAD_JSON = "{tool} did not print JSON: {snippet!r}"
TIMED_OUT = "{tool} did not finish within {seconds:.0f} s"
POLICY = ("fail on: a dependency vulnerability with a fixed version; a bandit finding of high severity; a file "
          "bandit cannot parse. Incomplete when a tool cannot run or a dependency could not be audited.")


@dataclass(frozen=True)
class ToolRun:
    tool: str
    version: str
    argv: tuple[str, ...]
    returncode: int | None
    seconds: float
    error: str | None = None


@dataclass
class ScanReport:
    tools: list[ToolRun] = field(default_factory=list)
    vulnerabilities: list[dict[str, Any]] = field(default_factory=list)
    code_findings: list[dict[str, Any]] = field(default_factory=list)
    code_errors: list[dict[str, str]] = field(default_factory=list)
    audited: int = 0
    unaudited: list[dict[str, str]] = field(default_factory=list)
    allow_unaudited: bool = False

    # -- the policy -----------------------------------------------------------------------------
    @property
    def fixable(self) -> list[dict[str, Any]]:
        return [v for v in self.vulnerabilities if v["fix_versions"]]

    def severity_counts(self) -> dict[str, int]:
        counts = {s: 0 for s in ("high", "medium", "low")}
        for f in self.code_findings:
            counts[f["severity"]] = counts.get(f["severity"], 0) + 1
        return counts

    def failures(self) -> list[str]:
        out = []
        if self.fixable:
            out.append(f"{len(self.fixable)} dependency vulnerabilities have a fixed version")
        high = self.severity_counts()["high"]
        if high:
            out.append(f"{high} high-severity bandit findings")
        if self.code_errors:
            out.append(f"bandit could not parse {len(self.code_errors)} files")
        return out

    def incomplete(self) -> list[str]:
        out = [f"{t.tool}: {t.error}" for t in self.tools if t.error]
        ran_audit = any(t.tool == "pip-audit" and not t.error for t in self.tools)
        if ran_audit and self.unaudited:
            total = self.audited + len(self.unaudited)
            why = "the vulnerability data could not be reached" if not self.audited else "see the list"
            out.append(f"pip-audit audited {self.audited} of {total} packages ({why})")
        return out

    @property
    def ok(self) -> bool:
        """The scan passed with full coverage (what the evidence records)."""
        return not self.failures() and not self.incomplete()

    @property
    def exit_code(self) -> int:
        if self.failures():
            return 1
        hard = [i for i in self.incomplete() if not (self.allow_unaudited and i.startswith("pip-audit audited"))]
        return 2 if hard else 0

    def summary(self) -> str:
        c = self.severity_counts()
        parts = [f"dependencies: {self.audited} audited, {len(self.vulnerabilities)} known vulnerabilities "
                 f"({len(self.fixable)} with a fix)",
                 f"bandit: {c['high']} high, {c['medium']} medium, {c['low']} low"]
        problems = self.failures() + self.incomplete()
        verdict = "passed" if self.ok else ("FAILED: " if self.failures() else "INCOMPLETE: ") + "; ".join(problems)
        return f"security scan {verdict} — " + "; ".join(parts)

    def payload(self) -> dict[str, Any]:
        c = self.severity_counts()
        return {
            "ok": self.ok, "exit_code": self.exit_code, "policy": POLICY,
            "findings": {"dependencies": {"fixable": len(self.fixable),
                                          "no_fix": len(self.vulnerabilities) - len(self.fixable)},
                         "code": c},
            "failures": self.failures(), "incomplete": self.incomplete(),
            "audited_packages": self.audited, "unaudited_packages": len(self.unaudited),
            "unaudited": self.unaudited[:MAX_LISTED],
            "vulnerabilities": self.vulnerabilities[:MAX_LISTED],
            "code_findings": [f for f in self.code_findings if f["severity"] != "low"][:MAX_LISTED],
            "code_errors": self.code_errors[:MAX_LISTED],
            "tools": [{**asdict(t), "argv": _display(t.argv), "seconds": round(t.seconds, 2)} for t in self.tools],
        }


def _display(argv: Sequence[str]) -> str:
    """The command as a person would type it (the interpreter path shortened to ``python``)."""
    parts = list(argv)
    if parts and parts[0] == sys.executable:
        parts[0] = "python"
    return " ".join(parts)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _run(tool: str, dist: str, argv: list[str], cwd: Path, ok_codes: tuple[int, ...]) -> tuple[ToolRun, Any]:
    version = _version(dist)
    if version is None:
        return ToolRun(tool, "", tuple(argv), None, 0.0, NOT_INSTALLED.format(tool=tool)), None
    start = time.perf_counter()
    try:
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=TOOL_TIMEOUT,  # noqa: S603
                              check=False)
    except subprocess.TimeoutExpired:
        return ToolRun(tool, version, tuple(argv), None, time.perf_counter() - start,
                       TIMED_OUT.format(tool=tool, seconds=TOOL_TIMEOUT)), None
    seconds = time.perf_counter() - start
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        err = (TOOL_FAILED.format(tool=tool, code=proc.returncode, stderr=proc.stderr.strip()[-300:])
               if proc.returncode not in ok_codes else BAD_JSON.format(tool=tool, snippet=proc.stdout[:120]))
        return ToolRun(tool, version, tuple(argv), proc.returncode, seconds, err), None
    if proc.returncode not in ok_codes:
        return ToolRun(tool, version, tuple(argv), proc.returncode, seconds,
                       TOOL_FAILED.format(tool=tool, code=proc.returncode, stderr=proc.stderr.strip()[-300:])), None
    return ToolRun(tool, version, tuple(argv), proc.returncode, seconds), data


def audit_argv(requirements: Sequence[Path] = (), service: str = "pypi") -> list[str]:
    argv = [sys.executable, "-m", "pip_audit", "--format", "json", "--progress-spinner", "off",
            "--vulnerability-service", service]
    for req in requirements:
        argv += ["-r", str(req)]
    return argv if requirements else [*argv, "--skip-editable"]


def bandit_argv(targets: Sequence[str] = TARGETS) -> list[str]:
    return [sys.executable, "-m", "bandit", "-r", *targets, "-f", "json", "-q"]


def parse_audit(data: Any, report: ScanReport) -> None:
    for dep in data.get("dependencies", []):
        name, version = str(dep.get("name", "")), str(dep.get("version", ""))
        reason = dep.get("skip_reason")
        if reason is not None:
            if "editable" not in str(reason).lower():
                report.unaudited.append({"package": name, "reason": str(reason)[:200]})
            continue
        report.audited += 1
        for v in dep.get("vulns", []):
            report.vulnerabilities.append({"package": name, "version": version, "id": str(v.get("id", "")),
                                           "aliases": list(v.get("aliases", [])),
                                           "fix_versions": list(v.get("fix_versions", []))})


def parse_bandit(data: Any, report: ScanReport, root: Path) -> None:
    def rel(path: str) -> str:
        p = Path(path)
        try:
            return str((p if p.is_absolute() else root / p).resolve().relative_to(root.resolve()))
        except ValueError:
            return path

    for r in data.get("results", []):
        report.code_findings.append({"file": rel(str(r.get("filename", ""))), "line": int(r.get("line_number", 0)),
                                     "test": str(r.get("test_id", "")), "severity": str(r.get("issue_severity",
                                                                                             "")).lower(),
                                     "confidence": str(r.get("issue_confidence", "")).lower(),
                                     "text": str(r.get("issue_text", ""))[:300]})
    for e in data.get("errors", []):
        report.code_errors.append({"file": rel(str(e.get("filename", ""))), "reason": str(e.get("reason", ""))[:300]})


def scan(root: Path, *, requirements: Sequence[Path] = (), service: str = "pypi", targets: Sequence[str] = TARGETS,
         allow_unaudited: bool = False) -> ScanReport:
    """Run both tools in ``root`` and judge the result (nothing is recorded here)."""
    report = ScanReport(allow_unaudited=allow_unaudited)
    with ThreadPoolExecutor(max_workers=2) as pool:  # pip-audit waits on the network, bandit on the CPU
        audit = pool.submit(_run, "pip-audit", "pip-audit", audit_argv(requirements, service), root, (0, 1))
        static = pool.submit(_run, "bandit", "bandit", bandit_argv(targets), root, (0, 1))
        (audit_run, audit_data), (bandit_run, bandit_data) = audit.result(), static.result()
    report.tools += [audit_run, bandit_run]
    if audit_data is not None:
        parse_audit(audit_data, report)
    if bandit_data is not None:
        parse_bandit(bandit_data, report, root)
    return report


def record_evidence(db: Any, clock: Any, report: ScanReport, *, actor: str = "cli", command: str | None = None) -> Any:
    """Store the scan as ``security_scan`` evidence (with its audit row) for the readiness checklist."""
    from backend.compliance import record

    return record(db, clock, kind="security_scan", ok=report.ok, summary=report.summary(),
                           payload=report.payload(), command=command, actor=actor)
