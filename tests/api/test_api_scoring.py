"""/v1 end to end on SQLite and PostgreSQL: score, read, explain, decide; roles, scopes, IDOR,
idempotency, health, request ids and the access log."""

from __future__ import annotations

import json
import logging
import shutil
import uuid

import pytest
from api_helpers import assert_problem, with_api
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from backend.api import create_app
from backend.api import idempotency as I
from backend.domain import decision_rules as R
from backend.platform.db.tables_book import Application, Decision, ExplanationRow, Prediction

TEXT = "Verified two years of tax returns; income is 40% higher than stated."
MISSING = "00000000-0000-0000-0000-000000000000"


def _count(db, table):
    with db.read() as s:
        return s.execute(select(func.count()).select_from(table)).scalar_one()


def _score(a, user, app, **headers):
    res = a.client.post("/v1/score", json=app, headers={**a.auth(user), **headers})
    assert res.status_code == 200, res.text
    return res.json()


def _force(a, pid, rec="approve", risk="low_risk", amount=10_000.0):
    with a.svc.db.transaction() as s:
        p = s.get(Prediction, uuid.UUID(pid))
        p.recommendation, p.risk_class = rec, risk
        s.get(Application, p.application_id).loan_amount = amount


# -- score ---------------------------------------------------------------------------------------------
def test_officer_scores_one_and_the_record_is_theirs(api, sample):
    a = api
    before = a.svc.audit.count()
    out = _score(a, "olivia", sample[0])
    assert out["ai_visible"] and out["recommendation"] in ("approve", "deny", "manual_review")
    assert 0 <= out["pd"] <= 1 and out["reasons"] and out["model_role"] == "primary"
    with a.svc.db.read() as s:
        app = s.get(Application, uuid.UUID(out["application_id"]))
        assert app.officer_id == a.users["olivia"].id and app.source == "api"
    assert a.svc.audit.count() == before + 2  # login + application_scored
    assert a.svc.audit.recent(1)[0]["action"] == "application_scored"


def test_batch_is_one_transaction_and_returns_results_in_order(api, sample):
    a = api
    batch = [dict(x, application_id=f"APP-{i}") for i, x in enumerate(sample[:5])]
    out = _score(a, "maria", {"applications": batch})
    assert len(out["results"]) == 5 and len({r["decision_id"] for r in out["results"]}) == 5
    assert _count(a.svc.db, Application) == 5
    bad = [*batch[:2], dict(sample[6], annual_income=-5)]
    res = a.client.post("/v1/score", json={"applications": bad}, headers=a.auth("maria"))
    body = assert_problem(res, 422)
    assert body["errors"][0]["loc"] == ["body", "batch", "applications", 2, "annual_income"]
    assert _count(a.svc.db, Application) == 5


def test_machine_client_scores_and_reads_back_at_its_roles_level(api, sample):
    a = api
    info, secret = a.ctx.clients.add("los", role="risk_manager", scopes=["score", "decisions:read", "explain"])
    tok = a.client.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": info.client_id,
                                              "client_secret": secret}).json()["access_token"]
    h = {"Authorization": f"Bearer {tok}"}
    res = a.client.post("/v1/score", json=sample[1], headers=h)
    assert res.status_code == 200
    pid = res.json()["decision_id"]
    with a.svc.db.read() as s:
        app = s.get(Application, uuid.UUID(res.json()["application_id"]))
        assert app.officer_id is None and app.source == "api"
    got = a.client.get(f"/v1/decisions/{pid}", headers=h)
    assert got.status_code == 200 and got.json()["decision"] is None
    assert a.client.post(f"/v1/decisions/{pid}/explanation", headers=h).status_code == 201
    assert_problem(a.client.post(f"/v1/decisions/{pid}/override", json={"outcome": "approve"}, headers=h), 403)


def test_application_id_reuse_with_other_features_is_409_without_echo(api, sample):
    a = api
    first = dict(sample[2], application_id="EXT-42")
    _score(a, "olivia", first)
    again = _score(a, "olivia", first)  # same id, same features: re-scored
    assert again["application_id"]
    res = a.client.post("/v1/score", json=dict(first, loan_amount=first["loan_amount"] + 1000),
                        headers=a.auth("olivia"))
    assert_problem(res, 409, not_echoed=("EXT-42",))


# -- read, explain, decide --------------------------------------------------------------------------------
def test_owner_reads_explains_and_decides(api, sample):
    a = api
    pid = _score(a, "olivia", sample[3])["decision_id"]
    _force(a, pid, "approve")
    h = a.auth("olivia")
    got = a.client.get(f"/v1/decisions/{pid}", headers=h).json()
    assert got["decision_id"] == pid and got["score"]["recommendation"] == "approve"
    assert got["attributions"] and got["application"]["loan_amount"] == 10_000.0 and got["decision"] is None
    exp = a.client.post(f"/v1/decisions/{pid}/explanation", headers=h)
    assert exp.status_code == 201 and exp.json()["provider"] == "template" and exp.json()["text"]
    assert _count(a.svc.db, ExplanationRow) == 1
    res = a.client.post(f"/v1/decisions/{pid}/override", json={"outcome": "approve"}, headers=h)
    assert res.status_code == 201 and res.json()["status"] == "final" and not res.json()["is_override"]
    got = a.client.get(f"/v1/decisions/{pid}", headers=h).json()
    assert got["decision"]["outcome"] == "approve" and got["decision"]["decided_by"] == "olivia"
    res = a.client.post(f"/v1/decisions/{pid}/override", json={"outcome": "deny", "reason_code": "other",
                                                                "reason_text": TEXT}, headers=h)
    assert_problem(res, 409)


def test_override_rules_come_from_the_service(api, sample):
    a = api
    pid = _score(a, "olivia", sample[4])["decision_id"]
    _force(a, pid, "deny", "high_risk", 30_000.0)
    h = a.auth("olivia")
    res = a.client.post(f"/v1/decisions/{pid}/override", json={"outcome": "approve"}, headers=h)
    assert assert_problem(res, 422)["detail"] == R.REASON_REQUIRED.format(min=R.MIN_TEXT)
    hostile = "=HYPERLINK(\"http://x\") <script>alert(1)</script>'; DROP TABLE decisions; --"
    res = a.client.post(f"/v1/decisions/{pid}/override", headers=h,
                        json={"outcome": "approve", "reason_code": "verified_income_higher",
                              "reason_text": hostile})
    assert res.status_code == 201, res.text
    v = res.json()
    assert v["status"] == "pending_approval" and v["is_override"] and v["reason_text"] == hostile
    assert len(v["materiality"]) == 3
    with a.svc.db.read() as s:
        assert s.execute(select(Decision.override_reason_text)).scalar_one() == hostile


def test_a_denial_states_its_notice_reasons_through_the_api(api, sample):
    """The C-1 picks the console offers a manual denial, through the API: listed by GET /v1/reasons, checked
    by the same rules, returned with the decision; approvals and unknown keys are refused by name."""
    a = api
    h = a.auth("olivia")
    listed = a.client.get("/v1/reasons", headers=h)
    assert listed.status_code == 200
    keys = {r["key"]: r["text"] for r in listed.json()}
    assert "insufficient_income" in keys and "other" in keys and all(keys.values())
    assert_problem(a.client.get("/v1/reasons"), 401)
    pid = _score(a, "olivia", sample[6])["decision_id"]
    _force(a, pid, "approve")
    bad = {"outcome": "deny", "reason_code": "fraud_suspected", "reason_text": TEXT}
    res = a.client.post(f"/v1/decisions/{pid}/override", headers=h, json={**bad, "notice_reasons": ["made_up"]})
    assert assert_problem(res, 422)["detail"] == R.NOTICE_REASON_UNKNOWN.format(i=1)
    res = a.client.post(f"/v1/decisions/{pid}/override", headers=h, json={**bad, "notice_reasons": ["other"]})
    assert assert_problem(res, 422)["detail"] == R.NOTICE_REASON_UNKNOWN.format(i=1)  # "other" needs its words
    res = a.client.post(f"/v1/decisions/{pid}/override", headers=h,
                        json={"outcome": "approve", "notice_reasons": ["insufficient_income"]})
    assert assert_problem(res, 422)["detail"] == R.NOTICE_REASONS_ONLY_FOR_DENIAL
    assert_problem(a.client.post(f"/v1/decisions/{pid}/override", headers=h,
                                 json={**bad, "notice_reasons": list(keys)[:5]}), 422)  # at most four
    picked = ["insufficient_income", "other:  Collateral   documents were not provided "]
    res = a.client.post(f"/v1/decisions/{pid}/override", headers=h, json={**bad, "notice_reasons": picked})
    assert res.status_code == 201, res.text
    assert res.json()["notice_reasons"] == ["insufficient_income", "other:Collateral documents were not provided"]
    with a.svc.db.read() as s:
        assert s.execute(select(Decision.notice_reasons)).scalar_one() == res.json()["notice_reasons"]
    assert a.client.get(f"/v1/decisions/{pid}", headers=h).json()["decision"]["notice_reasons"] == \
        res.json()["notice_reasons"]


def test_idor_another_officers_decision_is_404_like_a_missing_one(api, sample):
    a = api
    pid = _score(a, "olivia", sample[5])["decision_id"]
    h = a.auth("oscar")
    missing = assert_problem(a.client.get(f"/v1/decisions/{MISSING}", headers=h), 404)
    for res in (a.client.get(f"/v1/decisions/{pid}", headers=h),
                a.client.post(f"/v1/decisions/{pid}/explanation", headers=h),
                a.client.post(f"/v1/decisions/{pid}/override", json={"outcome": "approve"}, headers=h)):
        body = assert_problem(res, 404, not_echoed=(pid,))
        assert (body["title"], body["detail"]) == (missing["title"], missing["detail"]) == ("Not found", R.NOT_FOUND)
    assert_problem(a.client.get("/v1/decisions/not-a-uuid", headers=h), 404)
    assert a.client.get(f"/v1/decisions/{pid}", headers=a.auth("maria")).status_code == 200  # sees all
    assert _count(a.svc.db, ExplanationRow) == 0 and _count(a.svc.db, Decision) == 0


@pytest.mark.parametrize(("user", "scope", "method", "path", "status"), [
    ("ada", None, "post", "/v1/score", 403),  # admin: no SCORE permission
    ("ada", None, "post", "/v1/decisions/{pid}/override", 403),  # admin: no DECIDE
    ("ada", None, "get", "/v1/decisions/{pid}", 200),  # admin sees every decision
    ("olivia", "score", "get", "/v1/decisions/{pid}", 403),  # token narrowed to score
    ("olivia", "decisions:read", "post", "/v1/decisions/{pid}/explanation", 403),
    ("olivia", "decisions:read", "post", "/v1/decisions/{pid}/override", 403),
])
def test_scope_and_role_refusals(api, sample, user, scope, method, path, status):
    a = api
    pid = _score(a, "olivia", sample[6])["decision_id"]
    body = {"outcome": "approve"} if path.endswith("override") else sample[7] if path == "/v1/score" else None
    res = getattr(a.client, method)(path.format(pid=pid), headers=a.auth(user, scope),
                                    **({"json": body} if body is not None else {}))
    if status == 403:
        assert_problem(res, 403)
        assert "insufficient_scope" in res.headers["www-authenticate"]
    else:
        assert res.status_code == status


# -- idempotency --------------------------------------------------------------------------------------------
def test_idempotent_score_replays_and_refuses_a_different_body(api, sample):
    a = api
    h = {**a.auth("olivia"), I.HEADER: "order-2026-0001"}
    first = a.client.post("/v1/score", json=sample[8], headers=h)
    again = a.client.post("/v1/score", json=sample[8], headers=h)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and again.headers[I.REPLAYED_HEADER] == "true"
    assert _count(a.svc.db, Prediction) == 1
    other = a.client.post("/v1/score", json=sample[9], headers=h)
    assert assert_problem(other, 409)["detail"] == I.KEY_REUSED
    assert _count(a.svc.db, Prediction) == 1
    assert_problem(a.client.post("/v1/score", json=sample[8], headers={**h, I.HEADER: "short"}), 422)
    for blank in ("", "   "):  # sent but empty: refused, never silently treated as "no key" (no replay protection)
        assert_problem(a.client.post("/v1/score", json=sample[8], headers={**h, I.HEADER: blank}), 422)
    mine = a.client.post("/v1/score", json=sample[8], headers={**a.auth("oscar"), I.HEADER: "order-2026-0001"})
    assert mine.status_code == 200 and I.REPLAYED_HEADER not in mine.headers  # keys are per caller


def test_idempotent_override_and_explanation(api, sample):
    a = api
    pid = _score(a, "olivia", sample[10])["decision_id"]
    _force(a, pid, "approve")
    h = {**a.auth("olivia"), I.HEADER: "decide-0001"}
    body = {"outcome": "deny", "reason_code": "fraud_suspected", "reason_text": TEXT}
    first = a.client.post(f"/v1/decisions/{pid}/override", json=body, headers=h)
    again = a.client.post(f"/v1/decisions/{pid}/override", json=body, headers=h)
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    assert _count(a.svc.db, Decision) == 1
    assert_problem(a.client.post(f"/v1/decisions/{pid}/override", json={**body, "outcome": "maybe"},
                                 headers=h), 422)  # not an outcome: refused by the schema
    assert_problem(a.client.post(f"/v1/decisions/{pid}/override", json={**body, "reason_code": "other"},
                                 headers=h), 409)
    hx = {**a.auth("olivia"), I.HEADER: "explain-0001"}
    e1 = a.client.post(f"/v1/decisions/{pid}/explanation", headers=hx)
    e2 = a.client.post(f"/v1/decisions/{pid}/explanation", headers=hx)
    assert e1.json()["id"] == e2.json()["id"] and _count(a.svc.db, ExplanationRow) == 1


def test_a_failed_request_releases_its_key(api, sample):
    a = api
    h = {**a.auth("olivia"), I.HEADER: "retry-after-fix"}
    assert_problem(a.client.post("/v1/score", json=dict(sample[11], application_id="X-1", loan_amount=1.0),
                                 headers=h), 422)
    assert a.client.post("/v1/score", json=dict(sample[11], application_id="X-1"), headers=h).status_code == 200


# -- health, request ids, logs -------------------------------------------------------------------------------
def test_health_live_and_ready(api):
    a = api
    assert a.client.get("/health/live").json() == {"status": "alive", "checks": {}}
    res = a.client.get("/health/ready")
    assert res.status_code == 200 and res.json()["status"] == "ready"
    assert {"model", "database", "cache"} <= set(res.json()["checks"])
    assert "detail" not in json.dumps(res.json())


def test_not_ready_without_a_model_and_scoring_is_503(sqlite_services, sample, tmp_path):
    from api_helpers import PASSWORD

    svc = with_api(sqlite_services, principal_cache_seconds=0)
    shutil.rmtree(svc.settings.model.registry_dir)
    svc.users.add("olivia", role="loan_officer", password=PASSWORD)
    with TestClient(create_app(services=svc)) as client:
        res = client.get("/health/ready")
        assert res.status_code == 503 and res.json()["status"] == "not_ready"
        assert res.json()["checks"]["model"]["ok"] is False and res.json()["checks"]["database"]["ok"] is True
        tok = client.post("/oauth/token", data={"grant_type": "password", "username": "olivia",
                                                "password": PASSWORD}).json()["access_token"]
        res = client.post("/v1/score", json=sample[0], headers={"Authorization": f"Bearer {tok}"})
        assert_problem(res, 503, not_echoed=(str(tmp_path),))
        assert res.headers["retry-after"] == "30"


def test_cache_down_is_degraded_not_unready(sqlite_services):
    from backend.platform.adapters.cache_redis import RedisCache

    svc = sqlite_services
    cache = RedisCache("redis://127.0.0.1:1/0", socket_timeout=0.05, connect_timeout=0.05)
    svc.health.checks["cache"] = cache.health
    with TestClient(create_app(services=svc)) as client:
        res = client.get("/health/ready")
        assert res.status_code == 200 and res.json()["status"] == "degraded"


def test_request_id_is_echoed_or_made_and_one_json_log_line_per_request(api_sqlite, sample, caplog):
    a = api_sqlite
    tok = a.token("olivia")
    caplog.set_level(logging.INFO, logger="creditrisk.api.access")
    res = a.client.post("/v1/score", json=dict(sample[0], applicant_id="JOHN-DOE-555"),
                        headers={"Authorization": f"Bearer {tok}", "X-Request-ID": "client-req-0001"})
    assert res.headers["x-request-id"] == "client-req-0001"
    bad = a.client.get("/health/live", headers={"X-Request-ID": "bad id with spaces"})
    assert bad.headers["x-request-id"] != "bad id with spaces" and len(bad.headers["x-request-id"]) == 32
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "creditrisk.api.access"]
    assert len(lines) == 2
    line = lines[0]
    assert line["request_id"] == "client-req-0001" and line["route"] == "/v1/score" and line["status"] == 200
    assert line["subject"] == f"user:{a.users['olivia'].id}" and line["duration_ms"] > 0
    text = caplog.text
    assert tok not in text and tok[:20] not in text and "JOHN-DOE-555" not in text and "annual_income" not in text


def test_bureau_key_factors_ride_on_the_application_and_bad_codes_are_422(api, sample):
    a = api
    app = {k: v for k, v in sample[1].items() if k != "bureau_key_factors"}
    out = _score(a, "olivia", {**app, "bureau_key_factors": ["10", "8", "84"]})
    with a.svc.db.read() as s:
        assert s.get(Application, uuid.UUID(out["application_id"])).bureau_key_factors == ["10", "08", "84"]
    before = _count(a.svc.db, Application)
    for bad in (["99"], ["10", "<b>"], ["01", "02", "03", "05", "07", "09"], "10;08"):
        res = a.client.post("/v1/score", json={**app, "bureau_key_factors": bad}, headers=a.auth("olivia"))
        assert res.status_code == 422, (bad, res.text)
    assert _count(a.svc.db, Application) == before  # nothing stored
