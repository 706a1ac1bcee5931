"""Alerts page: a risk manager acknowledges and resolves (note required), an ML engineer runs the checks,
the halted-deployments banner, deliveries and the CSV export; a product lead is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from serving_records import craft
from streamlit.testing.v1 import AppTest

from app.guard import NOT_ALLOWED, USER_KEY
from backend.alerts.service import MSG_NOTE_SHORT
from backend.container import build_services

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

    def recent(self, at):  # noqa: ANN001, ANN201
        return None


def _quiet(console, fairness: Quiet) -> Any:
    """The console's services with quiet monitoring readers (and ``fairness``): composition-root overrides."""
    base = console.services
    return build_services(base.settings, db=base.db, clock=base.clock, performance=Quiet(), drift=Quiet(),
                          costs=Quiet(), fairness=fairness)


def _slow_week(svc, n: int = 250) -> None:
    """``n`` decided requests in the last 6 days, each with a 40 s explanation call: the latency rule fires."""
    craft(svc.db, svc.clock.now(), n, calls=lambda i: [{"ms": 40_000.0}])


@pytest.fixture
def firing(console):
    svc = _quiet(console, Quiet())
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
    st.cache_data.clear()  # the rules are judged when the page opens (not a reading cached by another test)
    at = _page(console, "risk_manager")
    assert [t.value for t in at.title] == ["Alerts"] and not at.error
    rules = at.dataframe[0].value
    assert len(rules) == 6 and rules.set_index("rule").loc["Decision latency p95", "status"] == "FIRING"
    open_ = at.dataframe[1].value
    assert alert_id[:8] in list(open_["alert"])
    # the rules table and the open alerts are the same fact: every firing rule has its open alert
    assert set(rules.loc[rules["status"] == "FIRING", "rule"]) <= set(open_["rule"])
    assert not at.warning  # nothing halts deployments
    pick = next(s for s in at.selectbox if s.key == "alerts_pick")
    pick.set_value(alert_id)

    next(b for b in at.button if b.label == "Acknowledge").click().run()
    assert [e.value for e in at.error] == [MSG_NOTE_SHORT]  # a note is required; nothing written
    assert console.services.alerts.get(alert_id).status == "open"

    next(s for s in at.selectbox if s.key == "alerts_pick").set_value(alert_id)
    next(t for t in at.text_area if t.key == "alerts_note").input("Explainer provider slow; ticket OPS-9")
    next(b for b in at.button if b.label == "Acknowledge").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert [s.value for s in at.success] == [f"Alert {alert_id[:8]} (latency) acknowledged by riskmanager."]
    acked = console.services.alerts.get(alert_id)
    assert (acked.status, acked.acknowledged_by, acked.ack_note) == (
        "acknowledged", "riskmanager", "Explainer provider slow; ticket OPS-9")
    assert next(t for t in at.text_area if t.key == "alerts_note").value == ""  # the form cleared after acting

    next(s for s in at.selectbox if s.key == "alerts_pick").set_value(alert_id)
    next(t for t in at.text_area if t.key == "alerts_note").input("Provider switched; p95 back to 4 s")
    next(b for b in at.button if b.label == "Resolve").click().run()
    assert not at.exception and not at.error
    assert console.services.alerts.get(alert_id).resolved_by == "riskmanager"
    resolved = next(d.value for d in at.dataframe if "alert" in d.value and alert_id[:8] in list(d.value["alert"])
                    and "resolved" in list(d.value["status"]))
    assert len(resolved) >= 1
    assert len(at.get("download_button")) == 1
    actions = [r["action"] for r in console.services.audit.recent(50) if r["entity_type"] == "alert"
               and r["entity_id"] == alert_id]
    assert actions == ["alert_resolved", "alert_acknowledged", "alert_opened"]


def test_ml_engineer_runs_the_checks_and_sees_the_halt_banner(firing):
    console, alert_id = firing
    _quiet(console, Quiet(0.7)).alerts.evaluate(refresh=False)  # this evaluation raises a halting alert
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
