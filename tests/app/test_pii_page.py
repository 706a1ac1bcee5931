"""The Decision page shows the applicant masked; the Reveal button shows the details as plain text and
records an audit row; the Applications list shows the mask only."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from app.guard import OPEN_DECISION_KEY
from backend.domain import Actor
from backend.training.synthetic import generate

PAGES = Path(__file__).resolve().parents[2] / "pages"
NAME = "Wilhelmina <b>Fairweather</b>"


def _texts(at: AppTest) -> str:
    return " ".join([*(m.value for m in at.markdown), *(c.value for c in at.caption), *(t.value for t in at.text)])


def test_masked_by_default_revealed_on_click_with_an_audit_row(console, trained_registry):
    console.install_model(trained_registry)
    svc = console.services
    officer = svc.users.get(console.users["loan_officer"])
    df = generate(3, seed=21).drop(columns=["default", "pd_true", "application_id"]).astype(object)
    app = {**df.where(df.notna(), None).to_dict("records")[0], "applicant_id": "CUS21-00000777",
           "applicant": {"name": NAME, "ssn": "123-45-6789"}}
    res = svc.scoring.score(app, submitter=Actor(officer.username, officer.role, officer.id))

    at = console.logged_in("loan_officer")
    at.session_state[OPEN_DECISION_KEY] = res.prediction_id
    at.switch_page(str(PAGES / "decision.py")).run()
    assert not at.exception, at.exception
    shown = _texts(at)
    assert "CUS…0777" in shown and "personal details on file" in shown
    assert "Wilhelmina" not in shown and "6789" not in shown and "CUS21-00000777" not in shown
    console.by_label(at.button, "Reveal applicant details").click().run()
    assert not at.exception and not at.error
    revealed = [t.value for t in at.text]
    assert f"Name: {NAME}" in revealed and "SSN: 123-45-6789" in revealed and "Applicant id: CUS21-00000777" in revealed
    assert svc.audit.recent(1)[0]["action"] == "pii_revealed"

    at.switch_page(str(PAGES / "decisions.py")).run()
    assert not at.exception
    assert list(at.dataframe[0].value["applicant"]) == ["CUS…0777"]


def test_score_form_takes_the_applicant_encrypts_it_and_refuses_a_bad_ssn(console, trained_registry):
    console.install_model(trained_registry)
    at = console.logged_in("loan_officer")
    at.switch_page(str(PAGES / "score.py")).run()
    assert not at.exception
    console.by_label(at.text_input, "Applicant id").set_value("CUS5-00004242")
    console.by_label(at.text_input, "Name").set_value("Barnaby Quill")
    console.by_label(at.text_input, "SSN").set_value("12-345")
    console.by_label(at.button, "Score").click().run()
    assert [e.value for e in at.error] == ["applicant.ssn: must be 9 digits, as 123-45-6789 or 123456789"]
    assert console.services.decisions.decisions_for(console.services.users.get(console.users["risk_manager"])) == []
    console.by_label(at.text_input, "SSN").set_value("123-45-6789")
    console.by_label(at.button, "Score").click().run()
    assert not at.exception and not at.error
    svc = console.services
    with svc.db.engine.connect() as c:
        (stored,) = list(c.execute(sa.text("SELECT applicant_id, applicant_mask, pii FROM applications")))
    assert stored[1] == "CUS…4242" and "CUS5" not in stored[0] and "Barnaby" not in stored[2]
    (row,) = svc.decisions.decisions_for(svc.users.get(console.users["risk_manager"]))
    shown = svc.pii.reveal(row.application_id, actor=svc.users.get(console.users["risk_manager"]))
    assert (shown.applicant_id, shown.details) == ("CUS5-00004242", {"name": "Barnaby Quill", "ssn": "123-45-6789"})
