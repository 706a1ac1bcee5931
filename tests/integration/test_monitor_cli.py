"""`creditrisk monitor` end to end (SQLite under a tmp data dir): run with its exit codes, alerts, ack and
resolve with the actor's permission checked, --retrain-on-alert, and bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import serving_records
from typer.testing import CliRunner

from backend.alerts import rules as alert_rules
from backend.alerts.cli import BAD_AS_OF
from backend.alerts.service import MSG_BAD_STATUS, MSG_NOT_ALLOWED
from backend.cli import app
from backend.container import build_services
from backend.container.adapters import MSG_NO_WEBHOOK_URL
from backend.container.settings import load_settings

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("wide_cli_tables")

AS_OF = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse battery staple"


@pytest.fixture
def env(cli_env, monkeypatch):
    for rule in ("accuracy", "drift", "cost", "fairness"):  # this file is about the command: one rule is enough
        monkeypatch.setitem(alert_rules.READERS, rule, lambda ctx: None)
    svc = build_services(load_settings(), migrate=True)
    for name, role in (("rita", "risk_manager"), ("mel", "ml_engineer"), ("pat", "product_lead")):
        svc.users.add(name, role=role, password=PASSWORD)
    yield svc
    svc.close()


def craft(svc, end: datetime, n: int, llm_ms: float) -> None:
    """``n`` decided scoring requests in the 6 days before ``end``, each with one explanation call of ``llm_ms``."""
    serving_records.craft(svc.db, end, n, calls=lambda i: [{"ms": llm_ms}])


def run(*args: str):
    """``--by NAME`` is proven by NAME's password (prompted), as a person at a terminal would type it."""
    return runner.invoke(app, list(args), input=f"{PASSWORD}\n" if "--by" in args else None)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def test_run_alerts_ack_resolve_and_exit_codes(env):
    craft(env, AS_OF, 250, llm_ms=40_000.0)
    res = run("monitor", "run", "--as-of", "2026-01-15T09:00", "--no-refresh")
    assert res.exit_code == 1, res.output  # an alert is open
    assert "Decision latency p95" in res.output and "firing" in res.output and "40.0 s" in res.output
    assert "opened 1, still firing 0, resolved 0; unresolved now: 1" in res.output
    [alert] = env.alerts.list("open")

    res = run("monitor", "run", "--as-of", "2026-01-15T10:00", "--no-refresh", "--json")
    assert res.exit_code == 1
    report = json.loads(res.output)
    assert report["opened"] == [] and report["updated"] == [alert.id]
    assert {r["rule"]: r["status"] for r in report["readings"]}["latency"] == "firing"
    assert [a["id"] for a in report["unresolved"]] == [alert.id]

    res = run("monitor", "alerts")
    assert res.exit_code == 0 and alert.id in res.output and "open" in res.output
    assert "no resolved alerts" in run("monitor", "alerts", "--status", "resolved").output
    res = run("monitor", "alerts", "--status", "bogus")
    assert res.exit_code == 2 and MSG_BAD_STATUS.format(status="bogus") in _one_line(res.output)

    res = run("monitor", "ack", alert.id, "--by", "pat", "--note", "looking at it")
    assert res.exit_code == 1 and MSG_NOT_ALLOWED.format(role="product lead") in _one_line(res.output)
    res = run("monitor", "ack", alert.id, "--by", "nobody", "--note", "looking at it")
    assert res.exit_code == 2 and "Login failed" in _one_line(res.output)  # no such user: nothing to prove
    res = runner.invoke(app, ["monitor", "resolve", alert.id, "--by", "rita", "--note", "x"], input="guess\n")
    assert res.exit_code == 2 and "Login failed" in _one_line(res.output)  # resolving lifts halts: proof first
    res = run("monitor", "ack", alert.id, "--by", "rita", "--note", "Explainer provider slow; ticket OPS-7")
    assert res.exit_code == 0 and f"acknowledged alert {alert.id} (latency) as rita" in res.output
    res = run("monitor", "resolve", alert.id, "--by", "mel", "--note", "Provider switched")
    assert res.exit_code == 0 and "next `creditrisk monitor run` opens a new alert" in _one_line(res.output)
    done = env.alerts.get(alert.id)
    assert (done.status, done.acknowledged_by, done.resolved_by) == ("resolved", "rita", "mel")
    actions = [(r["action"], r["actor"]) for r in env.audit.recent(10) if r["entity_type"] == "alert"]
    assert actions == [("alert_resolved", "mel"), ("alert_acknowledged", "rita"), ("alert_opened", "monitor")]

    res = run("monitor", "run", "--as-of", "2026-01-15T11:00", "--no-refresh", "--json")
    assert res.exit_code == 1 and len(json.loads(res.output)["opened"]) == 1  # still firing: opened again

    craft(env, AS_OF + timedelta(days=8), 250, llm_ms=2_000.0)  # a fast week: the rule clears
    res = run("monitor", "run", "--as-of", "2026-01-23", "--no-refresh")
    assert res.exit_code == 0, res.output  # all clear
    assert "resolved 1; unresolved now: 0" in res.output
    assert env.alerts.count("unresolved") == 0 and env.alerts.count("resolved") == 2


def test_retrain_on_alert(env, monkeypatch):
    low = alert_rules.Measurement(0.84, 5000, "2025-01")
    monkeypatch.setitem(alert_rules.READERS, "accuracy", lambda ctx: low)
    res = run("monitor", "run", "--no-refresh", "--retrain-on-alert", "--json")  # an empty book: nothing to learn from
    assert res.exit_code == 1
    said = json.loads(res.output)["retrain"]
    assert said.startswith("failed: too little data to retrain") and "Nothing was registered" in said

    calls = []
    monkeypatch.setattr("backend.training.Retrainer.from_book",
                        lambda self, actor, at: calls.append((actor.username, at)) or "challenger 7")
    res = run("monitor", "run", "--as-of", "2026-02-01", "--no-refresh", "--retrain-on-alert", "--json")
    assert res.exit_code == 1 and json.loads(res.output)["retrain"] == "done: challenger 7"
    assert calls == [("monitor", datetime(2026, 2, 1, tzinfo=UTC))]


def test_bad_input_is_one_clear_line(env, monkeypatch):
    res = run("monitor", "run", "--as-of", "next tuesday")
    assert res.exit_code == 2 and BAD_AS_OF.format(value="next tuesday") in _one_line(res.output)
    res = run("monitor", "ack", "not-an-id", "--by", "rita", "--note", "looking at it")
    assert res.exit_code == 1 and "is not an alert id" in res.output
    assert run("monitor", "run", "--no-refresh").exit_code == 0  # an empty book: nothing fires
    monkeypatch.setenv("CREDITRISK_MONITORING__NOTIFIER", "webhook")
    res = run("monitor", "run", "--no-refresh")
    assert res.exit_code == 2 and MSG_NO_WEBHOOK_URL in _one_line(res.output)
