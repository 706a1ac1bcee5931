"""External application ids belong to who submitted them: the organisation (people) or one machine client.
Another principal's reuse of an id neither touches nor reveals the first application (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from api_helpers import applications, assert_problem
from sqlalchemy import func, select

from backend.domain import Actor
from backend.platform.db.tables_book import Application, Prediction
from backend.scoring import ApplicationConflict, stored_external_id

EXT = "LOS-2026-0007"


def _client(a, name: str, role: str = "loan_officer") -> dict[str, str]:
    info, secret = a.ctx.clients.add(name, role=role, scopes=["score"])
    res = a.client.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": info.client_id,
                                              "client_secret": secret})
    assert res.status_code == 200, res.text
    return {"Authorization": f"Bearer {res.json()['access_token']}"}


def _predictions(a, app_id: str) -> int:
    with a.svc.db.read() as s:
        return s.execute(select(func.count()).select_from(Prediction)
                         .where(Prediction.application_id == uuid.UUID(app_id))).scalar_one()


def _apps_with(a, ext: str) -> int:
    with a.svc.db.read() as s:
        return s.execute(select(func.count()).select_from(Application)
                         .where(Application.external_id.like(f"{ext}%"))).scalar_one()


def test_a_second_client_reusing_an_id_neither_touches_nor_reveals_the_first(api, sample):
    a = api
    first, other = dict(sample[0], application_id=EXT), dict(sample[1], application_id=EXT)
    officer = a.client.post("/v1/score", json=first, headers=a.auth("olivia"))
    assert officer.status_code == 200
    mine = officer.json()
    one, two = _client(a, "los-one"), _client(a, "los-two")

    same = a.client.post("/v1/score", json=first, headers=one)  # same id, same features
    assert same.status_code == 200, same.text
    different = a.client.post("/v1/score", json=other, headers=two)  # same id, other features: no 409
    assert different.status_code == 200, different.text
    batch = a.client.post("/v1/score", json={"applications": [other, dict(sample[2], application_id="B-1")]},
                          headers=two)  # client two re-scores its own id (same features) in a batch
    assert batch.status_code == 200, batch.text
    answers = [same.text, different.text, batch.text]
    for leaked in (mine["application_id"], mine["decision_id"]):
        assert all(leaked not in text for text in answers)  # nobody else's internal ids
    assert same.json()["application_id"] != mine["application_id"]
    assert different.json()["application_id"] not in (mine["application_id"], same.json()["application_id"])
    assert batch.json()["results"][0]["application_id"] == different.json()["application_id"]  # its own, re-scored
    assert _predictions(a, mine["application_id"]) == 1  # the officer's application untouched
    assert _apps_with(a, EXT) == 3  # the organisation's, client one's, client two's

    # within one owner the id still means one application: other features are refused, without echo
    again = a.client.post("/v1/score", json=dict(first, loan_amount=first["loan_amount"] + 500), headers=one)
    assert_problem(again, 409, not_echoed=(EXT, mine["application_id"]))
    # the officer decides her own application: nobody else's scoring blocks it
    res = a.client.post(f"/v1/decisions/{mine['decision_id']}/override", headers=a.auth("olivia"),
                        json={"outcome": mine["recommendation"]})
    assert res.status_code == 201, res.text


def test_an_officer_reusing_a_clients_id_gets_the_organisations_own_application(api, sample):
    a = api
    one = _client(a, "los-one")
    theirs = a.client.post("/v1/score", json=dict(sample[3], application_id=EXT), headers=one).json()
    res = a.client.post("/v1/score", json=dict(sample[4], application_id=EXT), headers=a.auth("oscar"))
    assert res.status_code == 200, res.text  # another application, no 409
    assert theirs["application_id"] not in res.text and theirs["decision_id"] not in res.text
    assert _predictions(a, theirs["application_id"]) == 1


@pytest.mark.parametrize("ext", [f"{EXT}@crc_0123456789abcdef", "x@", "@", "a@b@c"])
def test_ids_cannot_forge_another_owners_namespace(api, sample, ext):
    a = api
    res = a.client.post("/v1/score", json=dict(sample[5], application_id=ext), headers=a.auth("olivia"))
    assert_problem(res, 422, not_echoed=(ext,))  # the API's id pattern has no '@'
    with pytest.raises(ApplicationConflict, match="may not contain '@'"):  # console, CLI: the scoring service
        a.svc.scoring.score(dict(sample[5], application_id=ext), submitter=Actor("olivia", "loan_officer"))
    assert _apps_with(a, ext.split("@")[0] or "@") == 0


def test_stored_ids_are_namespaced_by_owner():
    assert stored_external_id("A-1", "") == "A-1"
    assert stored_external_id("A-1", "crc_0123456789abcdef") == "A-1@crc_0123456789abcdef"
    assert stored_external_id("A-1", "crc_1") != stored_external_id("A-1", "crc_2")
    assert len(stored_external_id("x" * 64, "crc_0123456789abcdef")) <= 96  # fits the column


def test_questions_endpoint_conversation_and_bad_input(api: Any) -> None:
    """``POST /v1/decisions/{id}/questions``: answer, follow-up in the same conversation, and a clear error
    for a 10,000-character question, an unknown id, another officer's decision and another decision's
    conversation (nothing stored for any of them)."""
    import uuid as _uuid

    olivia, oscar = api.auth("olivia"), api.auth("oscar")
    mine = [api.client.post("/v1/score", json=a, headers=olivia).json()["decision_id"] for a in applications(2, seed=3)]
    theirs = api.client.post("/v1/score", json=applications(1, seed=4)[0], headers=oscar).json()["decision_id"]
    res = api.client.post(f"/v1/decisions/{mine[0]}/questions", json={"question": "What if the loan amount were $9,000?"},
                          headers=olivia)
    assert res.status_code == 201, res.text
    first = res.json()
    assert first["intent"] == "what_if" and first["engine"] == "offline" and first["refusal"] is None
    res = api.client.post(f"/v1/decisions/{mine[0]}/questions", headers=olivia,
                          json={"question": "and over 36 months too?", "conversation_id": first["conversation_id"]})
    assert res.status_code == 201 and res.json()["facts"]["changes"] == {"loan_amount": 9000, "loan_term_months": 36}
    refused = api.client.post(f"/v1/decisions/{mine[0]}/questions", json={"question": "Is the applicant married?"},
                              headers=olivia).json()
    assert (refused["intent"], refused["refusal"]) == ("refused", "protected")
    audits = api.svc.audit.count()
    for pid, body, status in [(mine[0], {"question": "q" * 10_000}, 422),
                              (str(_uuid.uuid4()), {"question": "Why?"}, 404),
                              (theirs, {"question": "Why?"}, 404),
                              (mine[1], {"question": "Why?", "conversation_id": first["conversation_id"]}, 422),
                              (mine[0], {"question": "Why?", "conversation_id": "nope"}, 422)]:
        res = api.client.post(f"/v1/decisions/{pid}/questions", json=body, headers=olivia)
        assert res.status_code == status, (pid, body, res.text)
        assert res.json()["detail"]
    assert api.svc.audit.count() == audits
