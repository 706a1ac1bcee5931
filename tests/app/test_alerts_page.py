"""Alerts page: a risk manager acknowledges and resolves (note required), an ML engineer runs the checks,
the halted-deployments banner, deliveries and the CSV export; a product lead is refused."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert
from streamlit.testing.v1 import AppTest

from app.guard import NOT_ALLOWED, USER_KEY
from backend.db.tables import Application, LLMUsageRow, Prediction
from backend.services.alerts import MSG_NOTE_SHORT

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "alerts.py")


class Quiet:
    """A monitoring service's reader answering a fixed value (None: no reading)."""

    def __init__(self, value=None):  # noqa: ANN001
        self.value = value

    def latest_min_di(self, before):  # noqa: ANN001, ANN201
        return None if self.value is None else (self.value, "pilot", {"attribute": "sex"})

    def latest_accuracy(self, before):  # noqa: ANN001, ANN201
        return None

    def latest_max_psi(self, before):  # noqa: ANN001, ANN201
        return None

    def per_request(self, start, end):  # noqa: ANN001, ANN201
        return None


def _slow_week(svc, n: int = 250) -> None:
    """``n`` requests in the last 6 days, each with a 40 s explanation call: the latency rule fires."""
    end = svc.clock.now()
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
                      "provider": "openai", "model": "m", "latency_ms": 40_000.0, "fact_check_ok": True})
    with svc.db.transaction() as s:
        s.execute(insert(Application), apps)
        s.execute(insert(Prediction), preds)
        s.execute(insert(LLMUsageRow), usage)


@pytest.fixture
def firing(console):
    svc = console.services
    for name in ("performance", "drift", "fairness", "costs"):
        svc.__dict__[name] = Quiet()
    _slow_week(svc)
    [alert_id] = svc.alerts.evaluate(refresh=False).opened
    return console, alert_id


def _page(console, role: str) -> AppTest:
    at = console.logged_in(role)
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def test_risk_manager_acknowledges_then_resolves(firing):
    console, alert_id = firing
    at = _page(console, "risk_manager")
    assert [t.value for t in at.title] == ["Alerts"] and not at.error
    rules = at.dataframe[0].value
    assert len(rules) == 6 and rules.set_index("rule").loc["Decision latency p95", "status"] == "FIRING"
    assert list(at.dataframe[1].value["alert"]) == [alert_id[:8]]
    assert not at.warning  # nothing halts deployments
    pick = next(s for s in at.selectbox if s.key == "alerts_pick")
    assert pick.value == alert_id

    next(b for b in at.button if b.label == "Acknowledge").click().run()
    assert [e.value for e in at.error] == [MSG_NOTE_SHORT]  # a note is required; nothing written
    assert console.services.alerts.get(alert_id).status == "open"

    next(t for t in at.text_area if t.key == "alerts_note").input("Explainer provider slow; ticket OPS-9")
    next(b for b in at.button if b.label == "Acknowledge").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert [s.value for s in at.success] == [f"Alert {alert_id[:8]} (latency) acknowledged by riskmanager."]
    acked = console.services.alerts.get(alert_id)
    assert (acked.status, acked.acknowledged_by, acked.ack_note) == (
        "acknowledged", "riskmanager", "Explainer provider slow; ticket OPS-9")

    next(t for t in at.text_area if t.key == "alerts_note").input("Provider switched; p95 back to 4 s")
    next(b for b in at.button if b.label == "Resolve").click().run()
    assert not at.exception and not at.error
    assert console.services.alerts.get(alert_id).resolved_by == "riskmanager"
    assert at.dataframe[1].value["alert"].tolist() == [alert_id[:8]]  # now in the resolved history
    assert not [s for s in at.selectbox if s.key == "alerts_pick"]  # nothing left to act on
    deliveries = at.dataframe[2].value  # rules, resolved history, deliveries of the chosen alert
    assert deliveries[["event", "channel", "delivered"]].values.tolist() == [["opened", "log", True]]
    assert len(at.get("download_button")) == 1
    actions = [r["action"] for r in console.services.audit.recent(20) if r["entity_type"] == "alert"]
    assert actions == ["alert_resolved", "alert_acknowledged", "alert_opened"]


def test_ml_engineer_runs_the_checks_and_sees_the_halt_banner(firing):
    console, alert_id = firing
    console.services.__dict__["fairness"] = Quiet(0.7)  # the next evaluation raises a halting alert
    console.services.alerts.evaluate(refresh=False)
    at = _page(console, "ml_engineer")
    assert any("Deployments halted" in w.value and "fairness" in w.value for w in at.warning)
    assert {s.value for s in at.selectbox if s.key == "alerts_pick"} <= {a.id for a in console.services.alerts.list()}
    next(b for b in at.button if b.label == "Run checks now").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any(s.value.startswith("Checks run:") for s in at.success)
    assert console.services.alerts.get(alert_id).status == "open"  # still firing: the same alert


def test_product_lead_is_refused(console):
    page = AppTest.from_file(PAGE, default_timeout=30)
    page.session_state[USER_KEY] = console.services.users.get(console.users["product_lead"])
    page.run()
    assert [e.value for e in page.error] == [NOT_ALLOWED]
    assert not page.button and not page.dataframe
