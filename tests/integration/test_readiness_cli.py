"""`creditrisk readiness` and `creditrisk signoff` end to end (SQLite under a tmp data dir): the checklist as
a table, JSON and Markdown, --strict's exit code, a rollback drill, and sign-offs added, listed and revoked
with the role rules' refusals."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from backend.cli import app
from backend.container import build_services
from backend.container.settings import load_settings
from backend.operations.readiness_rollback import MSG_NO_TARGET
from backend.operations.signoffs import MSG_COUNSEL_REQUIRED, MSG_NO_CHAMPION

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("wide_cli_tables")

PASSWORD = "correct horse battery staple"


@pytest.fixture
def env(cli_env):
    svc = build_services(load_settings(), migrate=True)
    for name, role in (("rita", "risk_manager"), ("mel", "ml_engineer"), ("pat", "product_lead")):
        svc.users.add(name, role=role, password=PASSWORD, display_name=f"{name.title()} Tester")
    yield cli_env
    svc.close()


def run(*args: str):  # noqa: ANN201
    """``--user NAME`` is proven by NAME's password (prompted)."""
    return runner.invoke(app, list(args), input=f"{PASSWORD}\n" if "--user" in args else None)


def test_checklist_on_a_fresh_install(env):
    table = run("readiness")
    assert table.exit_code == 0, table.output
    assert "Not ready for production: 10 of 10 items are red" in table.output
    assert "RED" in table.output and "creditrisk monitor run" in table.output
    assert run("readiness", "--strict").exit_code == 1
    doc = json.loads(run("readiness", "--json").output)
    assert doc["ready"] is False and len(doc["items"]) == 10 and doc["champion"] is None
    assert {i["reason"] for i in doc["items"]} == {"missing"}
    md = run("readiness", "--markdown").output
    assert md.startswith("# Production readiness") and "| RED (missing) | Load test |" in md
    refused = run("signoff", "add", "--area", "pm", "--user", "pat")
    assert refused.exit_code == 2 and MSG_NO_CHAMPION in " ".join(refused.output.split())


def test_signoffs_and_rollback_drill_with_a_champion(env, model_registry):
    shutil.copytree(model_registry, env / "models")
    added = run("signoff", "add", "--area", "pm", "--user", "pat", "--note", "phase report read")
    assert added.exit_code == 0, added.output
    wrong = run("signoff", "add", "--area", "engineering", "--user", "pat")
    assert wrong.exit_code == 2 and "a product lead may not sign off for engineering" in wrong.output
    no_counsel = run("signoff", "add", "--area", "legal", "--user", "rita")
    assert no_counsel.exit_code == 2 and MSG_COUNSEL_REQUIRED in " ".join(no_counsel.output.split())
    legal = run("signoff", "add", "--area", "legal", "--user", "rita", "--counsel", "Jane Roe")
    assert legal.exit_code == 0 and "Jane Roe (legal counsel, recorded by rita)" in legal.output

    listed = json.loads(run("signoff", "list", "--json").output)
    assert {s["area"] for s in listed["signoffs"]} == {"pm", "legal"}
    pm = next(s for s in listed["signoffs"] if s["area"] == "pm")
    assert pm["signed_by"] == "Pat Tester (pat)" and pm["note"] == "phase report read"
    assert pm["id"][:8] in run("signoff", "list").output
    assert run("signoff", "revoke", pm["id"][:8], "--user", "mel").exit_code == 2  # not a product lead
    claimed = runner.invoke(app, ["signoff", "revoke", pm["id"][:8], "--user", "pat"], input="guess\n")
    assert claimed.exit_code == 2 and "Login failed" in claimed.output  # naming pat is not being pat
    revoked = run("signoff", "revoke", pm["id"][:8], "--user", "pat", "--note", "re-review")
    assert revoked.exit_code == 0, revoked.output
    items = {i["key"]: i for i in json.loads(run("readiness", "--json").output)["items"]}
    assert items["signoff_pm"]["status"] == "red" and items["signoff_legal"]["status"] == "green"
    assert "held-out AUC" in items["holdout"]["evidence"]

    drill = run("readiness", "rollback-drill")  # one champion only: nothing to roll back to
    assert drill.exit_code == 1 and "FAILED" in drill.output
    items = {i["key"]: i for i in json.loads(run("readiness", "--json").output)["items"]}
    assert items["rollback"]["reason"] == "failed" and "rollback-drill" in items["rollback"]["command"]
    assert MSG_NO_TARGET.split(" (")[0] in items["rollback"]["evidence"]
