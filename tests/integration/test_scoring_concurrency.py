"""Concurrent ``ScoringService.score`` calls (group commit) on SQLite and PostgreSQL: every application,
prediction and audit row is written once, the audit chain holds, and a conflicting application id
fails only its own call, as if the calls had come one after another."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from backend.domain import Actor
from backend.platform.db.tables_book import Application, Prediction
from backend.scoring import ApplicationConflict
from backend.training.synthetic import generate

OFFICER = Actor("olivia", "loan_officer")
THREADS = 6


def _apps(n: int) -> list[dict]:
    df = generate(n, seed=5).drop(columns=["default", "pd_true", "application_id"]).astype(object)
    return df.where(df.notna(), None).to_dict("records")


def _count(db, table):
    with db.read() as s:
        return s.execute(select(func.count()).select_from(table)).scalar_one()


def _concurrently(calls):
    out: list[object] = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def run(i: int) -> None:
        start.wait()
        try:
            out[i] = calls[i]()
        except Exception as exc:  # noqa: BLE001 - collected for the assertions
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


def test_concurrent_scores_are_each_written_once_with_an_intact_chain(scoring_services):
    svc = scoring_services
    apps = _apps(THREADS * 3)
    before = svc.audit.count()

    def calls_of(k: int):
        return lambda: [svc.scoring.score(apps[i], submitter=OFFICER) for i in range(k, len(apps), THREADS)]

    results = [r for batch in _concurrently([calls_of(k) for k in range(THREADS)]) for r in batch]
    assert len({r.prediction_id for r in results}) == len(apps)
    assert _count(svc.db, Application) == len(apps) and _count(svc.db, Prediction) == len(apps)
    assert svc.audit.count() == before + len(apps) and svc.audit.verify().ok


def test_a_conflicting_application_id_fails_only_its_own_call(scoring_services):
    svc = scoring_services
    apps = _apps(THREADS)
    calls = [lambda a=a, i=i: svc.scoring.score({**a, "application_id": "LOS-7" if i < 2 else f"LOS-{i}"},
                                                submitter=OFFICER) for i, a in enumerate(apps)]
    out = _concurrently(calls)
    conflicts = [o for o in out if isinstance(o, ApplicationConflict)]
    assert len(conflicts) == 1  # two different applications under one id: the second one is refused
    assert _count(svc.db, Application) == THREADS - 1 and _count(svc.db, Prediction) == THREADS - 1
    assert svc.audit.verify().ok


def test_one_batch_with_two_applications_under_one_id_writes_nothing(scoring_services):
    svc = scoring_services
    a, b = _apps(2)
    with pytest.raises(ApplicationConflict):
        svc.scoring.score_many([{**a, "application_id": "LOS-9"}, {**b, "application_id": "LOS-9"}], submitter=OFFICER)
    assert _count(svc.db, Application) == 0 and _count(svc.db, Prediction) == 0
    svc.scoring.score_many([{**a, "application_id": "LOS-9"}] * 2, submitter=OFFICER)  # the same one twice: a re-score
    assert _count(svc.db, Application) == 1 and _count(svc.db, Prediction) == 2
