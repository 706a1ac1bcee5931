"""A PostgreSQL outage, on a THROW-AWAY server (initdb into a temporary directory, its own port; the
shared one is never stopped): every request answers 503 with Retry-After (never 500), and no
Idempotency-Key stays stuck: a retry returns the committed answer if the work committed, and scores
afresh if it did not."""

from __future__ import annotations

import shutil
import uuid

import pytest
from api_helpers import assert_problem, make_api
from sqlalchemy import func, select
from throwaway_servers import ThrowawayPostgres

from backend.api.problems import DB_RETRY_AFTER, DB_UNAVAILABLE_DETAIL
from backend.container import build_services
from backend.container.settings import load_settings
from backend.platform.db.engine import Database, make_engine
from backend.platform.db.tables_access import IdempotencyRecord
from backend.platform.db.tables_book import Application, Decision

pytestmark = pytest.mark.slow


@pytest.fixture
def box():
    pg = ThrowawayPostgres()
    try:
        pg.start()
        yield pg
    finally:
        pg.close()


@pytest.fixture
def api_pg(box, tmp_path, clock, model_registry):
    shutil.copytree(model_registry, tmp_path / "models")
    db = Database(make_engine(box.url, connect_timeout=2))
    db.migrate()
    settings = load_settings(data_dir=tmp_path, auth={"bcrypt_rounds": 4}, model={"registry_dir": tmp_path / "models"})
    svc = build_services(settings, db=db, clock=clock)
    try:
        for a in make_api(svc):
            a.box = box
            yield a
    finally:
        db.dispose()


def _count(a, table) -> int:
    with a.svc.db.read() as s:
        return int(s.execute(select(func.count()).select_from(table)).scalar_one())


def _unavailable(res) -> None:
    body = assert_problem(res, 503)
    assert body["type"] == "/problems/database-unavailable" and body["detail"] == DB_UNAVAILABLE_DETAIL
    assert res.headers["retry-after"] == DB_RETRY_AFTER


def test_an_outage_is_503_with_retry_after_and_a_keyed_retry_scores_afresh(api_pg, sample):
    a = api_pg
    h = a.auth("olivia")  # a token while the database is up
    scored = a.client.post("/v1/score", json=sample[0], headers=h).json()
    a.box.crash()
    _unavailable(a.client.post("/v1/score", json=sample[1], headers={**h, "Idempotency-Key": "order-0001"}))
    _unavailable(a.client.post("/v1/score", json=sample[1], headers=h))  # the group-commit path
    _unavailable(a.client.post("/v1/score", json={"applications": sample[2:4]}, headers=h))
    _unavailable(a.client.get(f"/v1/decisions/{scored['decision_id']}", headers=h))
    _unavailable(a.client.post("/oauth/token", data={"grant_type": "password", "username": "olivia",
                                                      "password": "x"}))
    assert a.client.get("/health/ready").status_code == 503
    a.box.start()
    res = a.client.post("/v1/score", json=sample[1], headers={**h, "Idempotency-Key": "order-0001"})
    assert res.status_code == 200 and "idempotent-replayed" not in res.headers  # scored afresh, not stuck
    assert _count(a, Application) == 2


def test_a_crash_during_the_work_leaves_no_key_stuck(api_pg, sample, monkeypatch):
    a = api_pg
    h = {**a.auth("olivia"), "Idempotency-Key": "order-0002"}
    real = a.svc.scoring.record

    def crash_first(jobs, **kw):
        if not getattr(crash_first, "done", False):
            crash_first.done = True
            a.box.crash()  # the database goes away mid-request, after the key was reserved
        return real(jobs, **kw)

    monkeypatch.setattr(a.svc.scoring, "record", crash_first)
    _unavailable(a.client.post("/v1/score", json=sample[5], headers=h))
    a.box.start()
    res = a.client.post("/v1/score", json=sample[5], headers=h)  # at once: no lease to wait for
    assert res.status_code == 200, res.text
    assert _count(a, Application) == 1 and _count(a, IdempotencyRecord) == 1


def test_a_crash_right_after_the_scores_commit_still_answers_and_the_retry_replays(api_pg, sample, monkeypatch):
    a = api_pg
    h = {**a.auth("olivia"), "Idempotency-Key": "order-0003"}
    real = a.svc.scoring.record

    def commit_then_crash(jobs, **kw):
        out = real(jobs, **kw)  # the scores and the idempotent answer commit together
        a.box.crash()
        return out

    monkeypatch.setattr(a.svc.scoring, "record", commit_then_crash)
    first = a.client.post("/v1/score", json=sample[6], headers=h)
    assert first.status_code == 200, first.text  # nothing left to write after the commit
    a.box.start()
    monkeypatch.setattr(a.svc.scoring, "record", real)
    again = a.client.post("/v1/score", json=sample[6], headers=h)
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json() and _count(a, Application) == 1


def test_a_decision_that_committed_before_the_crash_is_what_the_retry_returns(api_pg, sample, monkeypatch):
    a = api_pg
    h = a.auth("olivia")
    scored = a.client.post("/v1/score", json=sample[7], headers=h).json()
    real = a.svc.decisions.decide

    def decide_then_crash(*args, **kw):
        out = real(*args, **kw)  # committed; the database dies before the API stores its answer
        a.box.crash()
        return out

    monkeypatch.setattr(a.svc.decisions, "decide", decide_then_crash)
    url, body = f"/v1/decisions/{scored['decision_id']}/override", {"outcome": scored["recommendation"]}
    _unavailable(a.client.post(url, json=body, headers={**h, "Idempotency-Key": "decide-0001"}))
    a.box.start()
    monkeypatch.setattr(a.svc.decisions, "decide", real)
    res = a.client.post(url, json=body, headers={**h, "Idempotency-Key": "decide-0001"})
    assert res.status_code in (200, 201), res.text
    assert _count(a, Decision) == 1  # the committed decision, not a second one
    with a.svc.db.read() as s:
        (decision_id,) = s.execute(select(Decision.id)).scalars()
    assert uuid.UUID(res.json()["id"]) == decision_id


def test_a_crash_mid_load_gives_503s_and_every_retried_key_returns_one_committed_answer(api_pg, sample, monkeypatch):
    a = api_pg
    h = a.auth("maria")
    real, calls = a.svc.scoring.record, []

    def crash_at_the_eighth(jobs, **kw):
        calls.append(1)
        if len(calls) == 8:
            a.box.crash()
        return real(jobs, **kw)

    monkeypatch.setattr(a.svc.scoring, "record", crash_at_the_eighth)
    answers: dict[str, int] = {}
    for i in range(16):
        key = f"load-{i:04d}"
        answers[key] = a.client.post("/v1/score", json=sample[i], headers={**h, "Idempotency-Key": key}).status_code
    assert list(answers.values()) == [200] * 7 + [503] * 9  # never a 500
    a.box.start()
    ids = {}
    for i in range(16):
        key = f"load-{i:04d}"
        res = a.client.post("/v1/score", json=sample[i], headers={**h, "Idempotency-Key": key})
        assert res.status_code == 200, res.text
        assert (res.headers.get("idempotent-replayed") == "true") == (answers[key] == 200)
        ids[key] = res.json()["application_id"]
    assert len(set(ids.values())) == 16 == _count(a, Application)  # one application per key, none twice
