"""`creditrisk monitor` end to end (SQLite under a tmp data dir): run with its exit codes, alerts, ack and
resolve with the actor's permission checked, --retrain-on-alert, and bad input."""

from __future__ import annotations

import json
import sys
import types
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert
from typer.testing import CliRunner

from backend.adapters.notify_factory import MSG_NO_WEBHOOK_URL
from backend.cli import app
from backend.cli_monitor import BAD_AS_OF, RETRAIN_MISSING
from backend.config import load_settings
from backend.container import build_services
from backend.db.tables import Application, LLMUsageRow, Prediction
from backend.services import alert_rules
from backend.services.alerts import MSG_BAD_STATUS, MSG_NOT_ALLOWED, MSG_NOT_USER

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
    """``n`` scoring requests in the 6 days before ``end``, each with one explanation call of ``llm_ms``."""
    apps, preds, usage = [], [], []
    for i in range(n):
        t = end - timedelta(days=6) + timedelta(minutes=20 * i)
        aid, pid = uuid.uuid4(), uuid.uuid4()
        apps.append({"id": aid, "applicant_id": f"c-{i}", "features": {}, "protected": {}, "loan_amount": 5000.0,
                     "applied_at": t, "created_at": t, "source": "api"})
        preds.append({"id": pid, "application_id": aid, "model_name": "creditrisk", "model_version": "crafted",
                      "model_role": "primary", "engine": "compiled", "pd": 0.1, "raw_score": -2.0, "risk_class": "low",
                      "confidence": 0.9, "recommendation": "approve", "latency_ms": 5.0, "created_at": t})
        usage.append({"id": uuid.uuid4(), "at": t, "purpose": "explanation", "prediction_id": pid,
                      "provider": "openai", "model": "m", "latency_ms": llm_ms, "fact_check_ok": True})
    with svc.db.transaction() as s:
        s.execute(insert(Application), apps)
        s.execute(insert(Prediction), preds)
        s.execute(insert(LLMUsageRow), usage)


def run(*args: str):
    return runner.invoke(app, list(args))


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
    assert res.exit_code == 1 and MSG_NOT_USER.format(username="nobody") in _one_line(res.output)
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
    monkeypatch.setitem(sys.modules, "backend.training.retrain", None)  # not written yet (or removed)
    res = run("monitor", "run", "--no-refresh", "--retrain-on-alert")
    assert res.exit_code == 1 and RETRAIN_MISSING in _one_line(res.output)

    calls = []
    fake = types.ModuleType("backend.training.retrain")
    fake.retrain_from_book = lambda services, actor, at: calls.append((actor.username, at)) or "challenger 7"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "backend.training.retrain", fake)
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
