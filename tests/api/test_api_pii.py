"""Personal data through the API: accepted, validated without echo, stored only encrypted, never in a
log line or a response (the decision read returns the masked id), revealed by the service to allowed
roles only."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa
from api_helpers import assert_problem

from backend.compliance.pii_keys import is_token
from backend.compliance.pii_reveal import RevealRefused
from backend.domain.decision_rules import DecisionNotFound

APPLICANT_ID = "ZQX-PII-MARKER-4417"
NAME, SSN, EMAIL, PHONE = "Ottoline Vasquez-Brennagh", "078-05-1120", "ottoline.vb@example.org", "+1 555 013 4417"
MARKERS = (APPLICANT_ID, "PII-MARKER", NAME, "Ottoline", "Brennagh", SSN, "078051120", EMAIL, "013 4417")


def _absent(text: str, where: str) -> None:
    found = [m for m in MARKERS if m in text]
    assert not found, f"{found} in {where}"


def test_pii_is_never_logged_returned_or_stored_in_clear(api_sqlite, sample, caplog):
    a = api_sqlite
    caplog.set_level(logging.DEBUG)  # every logger, every level
    body = {**sample[0], "applicant_id": APPLICANT_ID,
            "applicant": {"name": NAME, "ssn": SSN.replace("-", ""), "email": EMAIL, "phone": PHONE}}
    res = a.client.post("/v1/score", json=body, headers=a.auth("olivia"))
    assert res.status_code == 200, res.text
    _absent(res.text, "the score response")
    decision = res.json()["decision_id"]

    bad = a.client.post("/v1/score", json={**body, "applicant": {"name": NAME, "ssn": "078-05-11200"}},
                        headers=a.auth("olivia"))
    assert_problem(bad, 422, not_echoed=MARKERS)
    extra = a.client.post("/v1/score", json={**body, "applicant": {"dob": NAME}}, headers=a.auth("olivia"))
    assert_problem(extra, 422, not_echoed=MARKERS)
    ctrl = a.client.post("/v1/score", json={**body, "applicant": {"name": NAME + "\u202e"}}, headers=a.auth("olivia"))
    assert [e["loc"] for e in assert_problem(ctrl, 422, not_echoed=MARKERS)["errors"]] == [["body", "applicant.name"]]

    got = a.client.get(f"/v1/decisions/{decision}", headers=a.auth("olivia"))
    assert got.status_code == 200 and got.json()["application"]["applicant_masked"] == "ZQX…4417"
    _absent(got.text, "the decision response")
    _absent(caplog.text, "the logs")
    assert any(r.name == "creditrisk.api.access" for r in caplog.records)  # the logs were captured

    with a.svc.db.engine.connect() as c:
        rows = list(c.execute(sa.text("SELECT applicant_id, pii FROM applications")))
    assert len(rows) == 1 and is_token(rows[0][0]) and is_token(rows[0][1])
    _absent(repr(rows), "the database")

    pii = a.svc.pii
    app_id = a.svc.workspace.case(decision, actor=a.users["maria"]).application_id
    shown = pii.reveal(app_id, actor=a.users["maria"])
    assert (shown.applicant_id, shown.details) == (APPLICANT_ID, {"name": NAME, "ssn": SSN, "email": EMAIL,
                                                                   "phone": PHONE})
    assert pii.reveal(app_id, actor=a.users["olivia"]).details["name"] == NAME
    with pytest.raises(DecisionNotFound):
        pii.reveal(app_id, actor=a.users["oscar"])  # another officer's application
    with pytest.raises(RevealRefused):
        pii.reveal(app_id, actor=a.users["paul"])
    _absent(caplog.text, "the logs after the reveals")
    assert [r["action"] for r in a.svc.audit.recent(4)] == ["pii_reveal_refused", "pii_reveal_refused",
                                                            "pii_revealed", "pii_revealed"]


def test_database_errors_never_carry_the_bound_values(tmp_path):
    """A failed statement's message (which reaches the logs) names the statement, not the values bound."""
    from backend.platform.db.engine import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'e.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (x TEXT UNIQUE)"))
        conn.execute(sa.text("INSERT INTO t VALUES (:x)"), {"x": "123-45-6789"})
    try:
        with engine.begin() as conn, pytest.raises(sa.exc.IntegrityError) as err:
            conn.execute(sa.text("INSERT INTO t VALUES (:x)"), {"x": "123-45-6789"})
        assert "123-45-6789" not in str(err.value) and "hidden" in str(err.value)
    finally:
        engine.dispose()
