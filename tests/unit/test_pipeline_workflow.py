"""The CI workflow example cannot rot: every `creditrisk ...` it runs is a command of the CLI (with
options the command has) and every `make X` a Makefile target; the stages and their guards are there."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import typer.main
import yaml

from backend.cli import app

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "pipeline.yml"
STAGES = ["test", "fairness-tests", "lint", "train", "canary-deploy", "monitor", "shift-traffic"]


def _workflow() -> dict[str, Any]:
    return dict(yaml.safe_load(WORKFLOW.read_text()))


def _scripts(wf: dict[str, Any]) -> list[str]:
    return [step["run"] for job in wf["jobs"].values() for step in job.get("steps", []) if "run" in step]


def _tokens(script: str) -> list[list[str]]:
    lines = script.replace("\\\n", " ").splitlines()
    out = []
    for line in lines:
        lex = shlex.shlex(line, posix=True, punctuation_chars=True)
        lex.whitespace_split = True
        out.append(list(lex))
    return out


def invocations(scripts: list[str], program: str) -> list[list[str]]:
    """The arguments after each ``program`` (or ``path/program``) up to the end of its simple command."""
    found = []
    for script in scripts:
        for toks in _tokens(script):
            for i, tok in enumerate(toks):
                if tok == program or tok.endswith("/" + program):
                    args = []
                    for t in toks[i + 1:]:
                        if t and set(t) <= set("|&;<>()"):
                            break
                        args.append(t)
                    found.append(args)
    return found


def resolve(args: list[str]) -> tuple[str, list[str]]:
    """``(command path, problems)`` for one ``creditrisk`` invocation."""
    cmd: Any = typer.main.get_command(app)  # typer's own click: a group is what has ``commands``
    path: list[str] = []
    rest = list(args)
    while hasattr(cmd, "commands") and rest and rest[0] in cmd.commands:
        path.append(rest.pop(0))
        cmd = cmd.commands[path[-1]]
    name = " ".join(path)
    if hasattr(cmd, "commands") and not getattr(cmd, "invoke_without_command", False):
        return name, [f"`creditrisk {' '.join(args[:2])}` is not a command (group {name or 'creditrisk'!r})"]
    known = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}
    bad = [a.split("=", 1)[0] for a in rest if a.startswith("-") and a.split("=", 1)[0] not in known]
    return name, [f"`creditrisk {name}` has no option {b}" for b in bad]


def test_every_creditrisk_command_in_the_workflow_exists() -> None:
    calls = invocations(_scripts(_workflow()), "creditrisk")
    problems, used = [], set()
    for args in calls:
        name, errs = resolve(args)
        used.add(name)
        problems += errs
    assert not problems, "\n".join(problems)
    assert {"db migrate", "train", "models verify", "models show", "deploy package", "security scan",
            "deploy sagemaker", "monitor run", "deploy rollback", "readiness", "models promote"} <= used


def test_every_make_target_in_the_workflow_exists() -> None:
    targets = set(re.findall(r"^([A-Za-z][\w-]*):", (ROOT / "Makefile").read_text(), re.M))
    used = {args[0] for args in invocations(_scripts(_workflow()), "make") if args}
    assert used and used <= targets, used - targets


def test_the_checker_catches_a_missing_command_and_option() -> None:
    assert resolve(["deploy", "teleport"])[1]
    assert resolve(["train", "--json", "--turbo"])[1] == ["`creditrisk train` has no option --turbo"]
    assert resolve(["monitor", "run", "--json"]) == ("monitor run", [])


def test_stages_order_services_and_guards() -> None:
    wf = _workflow()
    jobs = wf["jobs"]
    assert list(jobs) == STAGES
    assert set(jobs["test"]["services"]) == {"postgres", "redis"}
    assert set(jobs["train"]["needs"]) == {"test", "fairness-tests", "lint"}
    assert jobs["canary-deploy"]["needs"] == "train" and "train" in jobs["monitor"]["needs"]
    assert "monitor" in jobs["shift-traffic"]["needs"]
    for name in ("canary-deploy", "monitor", "shift-traffic"):
        job = jobs[name]
        assert str(job["environment"]).startswith("production"), name  # manual approval (required reviewers)
        assert job["permissions"]["id-token"] == "write", name  # OIDC role, no stored AWS keys
        assert any(str(s.get("uses", "")).startswith("aws-actions/configure-aws-credentials") for s in job["steps"])
    assert wf["permissions"] == {"contents": "read"}
    assert "upload-artifact" in str(jobs["train"]["steps"])
