"""Phase comparison page (product lead, risk manager; refused to a loan officer) over a small simulated
history: the advance panel first, the phase x arm table, criteria, the arm comparison with its confidence
sequence chart, the power calculator, CSV and report downloads, and an audited recount."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.guard import NOT_ALLOWED, USER_KEY
from backend.analytics.experiments_model import NOT_COMPUTED
from backend.compliance.audit_queries import AuditRepository
from backend.simulation.operations import OperationsSimulator, SimConfig

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "phases.py")


@pytest.fixture
def history(console, trained_registry):
    """Six months of simulated operations (shadow, pilot, scaled) in the console's database."""
    console.install_model(trained_registry)
    OperationsSimulator(console.services, SimConfig(volume=200, months=6, retrain=False), echo=lambda *a: None).run()
    return console


def _page(console, role: str) -> AppTest:
    at = console.logged_in(role)
    at.switch_page(PAGE).run(timeout=180)
    assert not at.exception, [e.value for e in at.exception]
    return at


def _unescape(text: str) -> str:
    """The page escapes Markdown (``plain``); what a reader sees has no backslashes."""
    return text.replace("\\", "")


def _texts(at: AppTest) -> str:
    return "\n".join(_unescape(str(e.value)) for kind in ("markdown", "caption", "warning", "error", "success", "info", "subheader",
                                               "header") for e in at.get(kind))


def test_product_lead_and_risk_manager_see_the_comparison(history):
    at = _page(history, "product_lead")
    assert [t.value for t in at.title] == ["Phase comparison"]
    # the only error box allowed is the verdict itself when an adverse arm difference blocks the move (issue 20)
    errors = [_unescape(e.value) for e in at.error]
    assert all(e.startswith("Do not move from Scaled rollout to Full production") for e in errors), errors
    assert any("Simulated data" in c.value for c in at.caption)
    # the decision panel comes first: its subheader precedes every table
    assert [s.value for s in at.subheader][0] == "Should we advance?"
    assert [h.value for h in at.header][:1] == ["Per phase and arm"]
    # on this small simulated history the verdict is "not yet" or, when the AI arm is significantly worse, "do not
    # move"; never "ready"
    verdict = errors[0] if errors else _unescape(at.warning[0].value)
    assert verdict.startswith(("Not yet: stay in Scaled rollout", "Do not move from Scaled rollout")), verdict
    text = _texts(at)
    assert NOT_COMPUTED not in text  # the missing fairness snapshots were computed on demand, not a dead end
    assert "Fairness ratio (lowest disparate-impact ratio" in text and "Fairness between the arms" in text
    assert "Sequential test on the approval rate" in text
    assert len(at.dataframe) >= 5  # arms, checks, NPS, comparison, weekly sequence
    labels = [b.label for b in at.get("download_button")]
    assert labels.count("Download CSV") >= 5
    assert {"Download report (HTML)", "Download report (PDF)"} <= set(labels)
    assert len(at.get("plotly_chart")) == 1
    phase = next(s for s in at.selectbox if s.label == "Phase")
    assert phase.options == ["Pilot", "Scaled rollout"] and phase.value == "scaled"
    phase.set_value("pilot").run()
    assert not at.exception
    next(r for r in at.radio if r.label == "Weekly comparison").set_value("default_rate_to_date").run()
    assert not at.exception and len(at.get("plotly_chart")) == 1
    next(n for n in at.number_input if n.label.startswith("Minimum detectable effect")).set_value(-5.0)
    next(n for n in at.number_input if n.label == "Planned AI share").set_value(0.5)
    at.button(key="FormSubmitter:phases_power-Calculate").click().run()
    assert not at.exception
    assert all(_unescape(e.value).startswith("Do not move from") for e in at.error), [e.value for e in at.error]
    assert [m.label for m in at.metric][:3] == ["AI arm", "Control arm", "Weeks at the current volume"]
    assert int(at.metric[0].value.replace(",", "")) == int(at.metric[1].value.replace(",", "")) > 0

    next(b for b in at.button if b.label == "Recount now").click().run(timeout=180)
    assert not at.exception and any(s.value.startswith("Recounted") for s in at.success)
    with history.services.db.read() as s:
        row = AuditRepository(s).recent(1, action="phase_comparison_refreshed")[0]
    assert (row.actor, row.role) == (history.users["product_lead"], "product_lead")

    risk = _page(history, "risk_manager")
    assert [t.value for t in risk.title] == ["Phase comparison"]
    assert all(_unescape(e.value).startswith("Do not move from") for e in risk.error), [e.value for e in risk.error]
    shown = [_unescape(e.value) for e in risk.error] or [_unescape(risk.warning[0].value)]
    assert shown[0].startswith(("Not yet: stay in Scaled rollout", "Do not move from Scaled rollout")), shown
    assert len(risk.dataframe) >= 5


def test_empty_book_says_so(console):
    at = _page(console, "product_lead")
    assert any("No applications with a rollout phase yet" in i.value for i in at.info)


def test_loan_officer_is_refused(console):
    at = console.logged_in("loan_officer")
    with pytest.raises(ValueError):  # the navigation does not offer the page to an officer
        at.switch_page(PAGE)
    direct = AppTest.from_file(PAGE, default_timeout=30)  # and the page refuses the role itself
    direct.session_state[USER_KEY] = console.services.users.get(console.users["loan_officer"])
    direct.run()
    assert not direct.exception
    assert [e.value for e in direct.error] == [NOT_ALLOWED]
    assert not direct.dataframe and not direct.title
