"""The API's fast paths keep every check: ``GET /v1/ping``, remembered token verifications, and the
scoring thread that records concurrent single applications in shared transactions."""

from __future__ import annotations

import base64
import json

from api_helpers import assert_problem
from sqlalchemy import func, select

from backend.domain import Actor
from backend.domain.validation import ApplicationInvalid
from backend.platform.db.tables_book import Application, Prediction
from backend.scoring import ApplicationConflict, ScoreResult


def _count(db, table):
    with db.read() as s:
        return s.execute(select(func.count()).select_from(table)).scalar_one()


def test_ping_answers_who_the_token_is_for_and_checks_it(api_sqlite):
    a = api_sqlite
    res = a.client.get("/v1/ping", headers=a.auth("olivia"))
    assert res.status_code == 200, res.text
    assert res.json() == {"subject": f"user:{a.users['olivia'].id}", "role": "loan_officer",
                          "scopes": ["decisions:read", "explain", "override", "score"]}
    assert_problem(a.client.get("/v1/ping"), 401)
    assert_problem(a.client.get("/v1/ping", headers={"Authorization": "Bearer x.y.z"}), 401)


def test_a_remembered_verification_never_skips_the_other_checks(api_sqlite, clock):
    a = api_sqlite
    token = a.token("olivia")
    h = {"Authorization": f"Bearer {token}"}
    assert a.client.get("/v1/ping", headers=h).status_code == 200  # verified, now remembered
    head, payload, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged = base64.urlsafe_b64encode(json.dumps({**claims, "role": "admin"}).encode()).rstrip(b"=").decode()
    assert_problem(a.client.get("/v1/ping", headers={"Authorization": f"Bearer {head}.{forged}.{sig}"}), 401)
    a.svc.users.set_disabled("olivia", True)  # the caller's standing is checked on every request
    assert_problem(a.client.get("/v1/ping", headers=h), 401)
    a.svc.users.set_disabled("olivia", False)
    assert a.client.get("/v1/ping", headers=h).status_code == 200
    clock.advance(seconds=a.svc.settings.api.token_ttl_seconds + a.svc.settings.api.clock_leeway_seconds)
    assert_problem(a.client.get("/v1/ping", headers=h), 401)  # expiry is checked against the clock


def test_single_applications_share_a_transaction_and_each_fails_alone(api, sample):
    a = api
    first = a.client.post("/v1/score", json={**sample[0], "application_id": "LOS-1"}, headers=a.auth("olivia"))
    assert first.status_code == 200 and first.json()["decision_id"], first.text
    olivia = Actor("olivia", "loan_officer", a.users["olivia"].id)
    tasks = [(dict(sample[1]), olivia, "compiled"),
             ({**sample[2], "loan_amount": -5.0}, olivia, "compiled"),  # invalid: refused on its own
             ({**sample[3], "application_id": "LOS-1"}, olivia, "compiled"),  # same id, other features
             (dict(sample[4]), olivia, "compiled")]
    apps, preds = _count(a.svc.db, Application), _count(a.svc.db, Prediction)
    out = a.ctx._score_batch(tasks)  # what the scoring thread runs for requests that arrived together
    assert isinstance(out[0], ScoreResult) and isinstance(out[3], ScoreResult)
    assert isinstance(out[1], ApplicationInvalid) and isinstance(out[2], ApplicationConflict)
    assert out[0].prediction_id != out[3].prediction_id
    assert _count(a.svc.db, Application) == apps + 2 and _count(a.svc.db, Prediction) == preds + 2
    assert a.svc.audit.verify().ok
