"""`creditrisk demo`'s book loader (backend/simulation/book.py) on SQLite and PostgreSQL: simulated
applications scored through the real scoring path, labelled simulated, shared among the demo officers,
and loaded once (a second run, or a run after an interruption, adds only what is missing)."""

from __future__ import annotations

import sqlalchemy as sa

from backend.container import Services
from backend.domain import Actor
from backend.platform.db.tables_book import Application, Prediction
from backend.platform.db.tables_governance import AuditLog
from backend.simulation.book import CHUNK, load_simulated_book
from backend.simulation.queries import ID_CHUNK, existing_external_ids


def _count(svc: Services, *where: sa.ColumnElement[bool]) -> int:
    with svc.db.read() as s:
        return int(s.execute(sa.select(sa.func.count()).select_from(Application).where(*where)).scalar_one())


def test_the_book_is_loaded_once_and_labelled_simulated(scoring_services: Services) -> None:
    svc = scoring_services
    a, _ = svc.users.add("olivia", role="loan_officer", display_name="Olivia", actor=Actor.system())
    b, _ = svc.users.add("mateo", role="loan_officer", display_name="Mateo", actor=Actor.system())
    rows = CHUNK + 150  # two chunks: one per officer
    added = load_simulated_book(svc, rows=rows, seed=5, officers=[a, b])
    assert added == rows == _count(svc, Application.source == "simulated")
    with svc.db.read() as s:
        per_officer = dict(s.execute(sa.select(Application.officer_id, sa.func.count())
                                     .group_by(Application.officer_id)).all())
        predictions = s.execute(sa.select(sa.func.count()).select_from(Prediction)).scalar_one()
    assert per_officer == {a.id: CHUNK, b.id: 150} and predictions == rows
    with svc.db.read() as s:  # the simulator queued them: no officer is said to have scored anything
        audit = s.execute(sa.select(AuditLog.actor, AuditLog.payload)
                          .where(AuditLog.action == "application_scored")).all()
    assert len(audit) == rows and {actor for actor, _ in audit} == {"simulator"}
    queued = [p["queued_for"] for _, p in audit]
    assert queued.count("olivia") == CHUNK and queued.count("mateo") == 150
    assert load_simulated_book(svc, rows=rows, seed=5, officers=[a, b]) == 0  # nothing twice
    assert _count(svc) == rows


def test_an_interrupted_load_adds_only_the_missing_rows(scoring_services: Services) -> None:
    svc = scoring_services
    load_simulated_book(svc, rows=120, seed=9)
    with svc.db.transaction() as s:  # lose the newest 20 as if the run had died before their chunk
        newest = list(s.execute(sa.select(Application.id).order_by(Application.external_id.desc()).limit(20))
                      .scalars())
        s.execute(sa.delete(Prediction).where(Prediction.application_id.in_(newest)))
        s.execute(sa.delete(Application).where(Application.id.in_(newest)))
    assert _count(svc) == 100
    assert load_simulated_book(svc, rows=120, seed=9) == 20
    assert _count(svc) == 120


def test_existing_ids_are_found_across_in_list_chunks(scoring_services: Services) -> None:
    svc = scoring_services
    load_simulated_book(svc, rows=40, seed=3)
    with svc.db.read() as s:
        stored = sorted(x for x in s.execute(sa.select(Application.external_id)).scalars() if x)
    probe = [f"absent-{i}" for i in range(ID_CHUNK)] + stored  # the stored ids sit past the first IN (...) list
    assert existing_external_ids(svc.db, probe) == set(stored)
    assert existing_external_ids(svc.db, []) == set()
