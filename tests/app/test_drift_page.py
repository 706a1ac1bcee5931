"""Drift page (risk manager, ML engineer; refused to a loan officer): the heatmap, band lines, top drifting
features, reference-vs-current distributions and reason-code shares from stored snapshots of a small
simulated history with the September incident; Recompute now (audited) and evidently's deep dive."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.guard import NOT_ALLOWED, USER_KEY
from backend.compliance.audit_queries import AuditRepository
from backend.simulation.operations import OperationsSimulator, SimConfig

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "drift.py")


@pytest.fixture
def history(console, trained_registry):
    """Two months of simulated operations (the incident is in the second) in the console's database."""
    console.install_model(trained_registry)
    OperationsSimulator(console.services, SimConfig(volume=400, months=2, retrain=False), echo=lambda *a: None).run()
    return console


def _drift_page(console, role: str) -> AppTest:
    at = console.logged_in(role)
    at.switch_page(PAGE).run(timeout=120)
    assert not at.exception, [e.value for e in at.exception]
    return at


def _charts(at: AppTest) -> int:
    return len(at.get("plotly_chart"))


def _button(at: AppTest, label: str):  # noqa: ANN202
    return next(b for b in at.button if b.label.startswith(label))


@pytest.mark.parametrize("role", ["risk_manager", "ml_engineer"])
def test_page_shows_the_heatmap_and_the_incident(history, role):
    history.services.drift.refresh_all()
    at = _drift_page(history, role)
    assert [t.value for t in at.title] == ["Drift"]
    assert not at.error
    assert any("Simulated data" in c.value for c in at.caption)
    assert _charts(at) == 5  # heatmap, PSI lines, top features, distribution, reason codes
    assert [r.value for r in at.radio] == ["week"]
    assert at.get("download_button")
    period = next(s for s in at.selectbox if s.label == "Period")
    period.set_value("2025-W37").run()
    assert not at.exception
    assert any("Top drifting in 2025-W37" in m.value for m in at.markdown)
    feature = next(s for s in at.selectbox if s.label == "Feature")
    assert feature.value in {"annual_income", "revolving_utilization", "max_card_utilization", "num_inquiries_6m",
                             "num_inquiries_12m"}  # the period's top feature is preselected
    at.radio[0].set_value("month").run()
    assert not at.exception and next(s for s in at.selectbox if s.label == "Period").options == ["2025-08", "2025-09"]


def test_empty_page_says_how_to_create_snapshots_and_recompute_is_audited(history):
    at = _drift_page(history, "ml_engineer")
    assert any("creditrisk monitor run" in i.value for i in at.info)
    assert _charts(at) == 0
    _button(at, "Recompute now").click().run(timeout=300)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert _charts(at) == 5
    with history.services.db.read() as s:
        row = AuditRepository(s).recent(1, action="drift_refreshed")[0]
    assert (row.actor, row.role) == (history.users["ml_engineer"], "ml_engineer")
    _button(at, "Recompute now").click().run(timeout=300)  # the button of the populated page
    assert not at.exception and any("recomputed" in s.value for s in at.success)


def test_deep_dive_renders_evidently_in_an_iframe(history):
    history.services.drift.refresh_all()
    at = _drift_page(history, "risk_manager")
    _button(at, "Build the evidently report").click().run(timeout=600)
    assert not at.exception and not at.error, [e.value for e in at.error]
    frames = at.get("iframe")
    assert frames and "<html" in frames[0].proto.srcdoc[:2000].lower()


def test_loan_officer_is_refused(history):
    history.services.drift.refresh_all()
    at = history.logged_in("loan_officer")
    with pytest.raises(ValueError):  # the navigation does not offer the page to an officer
        at.switch_page(PAGE)
    direct = AppTest.from_file(PAGE, default_timeout=30)  # and the page refuses the role itself
    direct.session_state[USER_KEY] = history.services.users.get(history.users["loan_officer"])
    direct.run()
    assert not direct.exception
    assert [e.value for e in direct.error] == [NOT_ALLOWED]
    assert not direct.title and _charts(direct) == 0 and len(history.leaves(direct)) == 1
