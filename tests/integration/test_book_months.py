"""book_months (migration 0016): every write to a month's rows changes that month's token and no other's,
in the writer's transaction, on SQLite and PostgreSQL; a rolled-back write changes nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, text, update

from backend.monitoring.book_state import book_state, month_tokens, scored_month_tokens
from backend.monitoring.book_state_queries import NEVER_WRITTEN
from backend.platform.db.tables_book import (
    Application,
    Decision,
    ExplanationRow,
    LLMUsageRow,
    Outcome,
    Prediction,
)

JUNE = datetime(2026, 6, 30, 23, 59, 59, 999999, tzinfo=UTC)  # the last microsecond of June (UTC)
JULY = datetime(2026, 7, 1, tzinfo=UTC)
AUGUST = datetime(2026, 8, 14, 12, tzinfo=UTC)


def _app(at: datetime) -> Application:
    return Application(id=uuid.uuid4(), applicant_id="a", features={"x": 1}, protected={"sex": "female"},
                       loan_amount=1000.0, applied_at=at, source="api", arm="ai", phase="pilot")


def _prediction(app: Application) -> Prediction:
    return Prediction(id=uuid.uuid4(), application_id=app.id, model_name="m", model_version="v1", model_role="primary",
                      engine="compiled", pd=0.1, raw_score=0.1, risk_class="low_risk", confidence=0.9,
                      recommendation="approve", created_at=app.applied_at)


def _tokens(db) -> dict[str, str]:  # noqa: ANN001
    with db.read() as s:
        return month_tokens(s)


def _scored(db) -> dict[str, str]:  # noqa: ANN001
    with db.read() as s:
        return scored_month_tokens(s)


@pytest.fixture
def book(db):  # noqa: ANN001, ANN201 - one application in each of June, July and August, with a prediction
    apps = [_app(JUNE), _app(JULY), _app(AUGUST)]
    with db.transaction() as s:
        s.add_all(apps)
        s.flush()
        s.add_all([_prediction(a) for a in apps])
    return db, apps


def _changed(before: dict[str, str], after: dict[str, str]) -> set[str]:
    return {m for m in set(before) | set(after) if before.get(m) != after.get(m)}


def test_months_are_the_utc_calendar_months_of_applied_at(book):
    db, _ = book
    assert set(_tokens(db)) == {"2026-06", "2026-07", "2026-08"}  # 23:59:59.999999 on 30 June is June


@pytest.mark.parametrize("write", ["new application", "prediction", "decision", "decision approved",
                                   "outcome", "outcome updated", "outcome deleted", "explanation", "llm usage",
                                   "application updated", "application deleted"])
def test_each_write_changes_only_its_month(book, write):
    db, (june, july, _) = book
    with db.transaction() as s:
        d = Decision(id=uuid.uuid4(), application_id=july.id, outcome="approve", status="pending_approval",
                     decided_at=JULY)
        o = Outcome(id=uuid.uuid4(), application_id=july.id, funded=True, defaulted=False, observed_at=AUGUST,
                    batch_id="b1")
        s.add_all([d, o])
    before, scored_before = _tokens(db), _scored(db)
    with db.transaction() as s:
        if write == "new application":
            s.add(_app(datetime(2026, 7, 20, tzinfo=UTC)))
        elif write == "prediction":
            s.add(_prediction(july))
        elif write == "decision":
            s.add(Decision(id=uuid.uuid4(), application_id=july.id, outcome="deny", decided_at=AUGUST))
        elif write == "decision approved":
            s.execute(update(Decision).where(Decision.id == d.id).values(status="final", approved_at=AUGUST))
        elif write == "outcome":
            s.add(Outcome(id=uuid.uuid4(), application_id=june.id, funded=False, observed_at=AUGUST, batch_id="b2"))
        elif write == "outcome updated":
            s.execute(update(Outcome).where(Outcome.id == o.id).values(defaulted=True))
        elif write == "outcome deleted":
            s.execute(delete(Outcome).where(Outcome.id == o.id))
        elif write == "explanation":
            pid = s.query(Prediction.id).filter(Prediction.application_id == july.id).scalar()
            s.add(ExplanationRow(id=uuid.uuid4(), prediction_id=pid, actor="officer", provider="template", text="t",
                                 fact_check_ok=True))
        elif write == "llm usage":
            pid = s.query(Prediction.id).filter(Prediction.application_id == july.id).scalar()
            s.add(LLMUsageRow(id=uuid.uuid4(), prediction_id=pid, purpose="explanation", provider="openai",
                              model="m", latency_ms=900.0))
        elif write == "application updated":
            s.execute(update(Application).where(Application.id == july.id).values(arm="control"))
        elif write == "application deleted":
            s.execute(delete(Outcome).where(Outcome.application_id == july.id))
            s.execute(delete(Decision).where(Decision.application_id == july.id))
            s.execute(delete(Prediction).where(Prediction.application_id == july.id))
            s.execute(delete(Application).where(Application.id == july.id))
    assert _changed(before, _tokens(db)) == ({"2026-06"} if write == "outcome" else {"2026-07"})
    # the scored token (migration 0022: what drift reads) changes only with applications and predictions
    scored = write in ("new application", "prediction", "application updated", "application deleted")
    assert _changed(scored_before, _scored(db)) == ({"2026-07"} if scored else set()), write


def test_moving_an_application_to_another_month_changes_both(book):
    db, (june, _, _) = book
    before = _tokens(db)
    with db.transaction() as s:
        s.execute(update(Application).where(Application.id == june.id).values(applied_at=AUGUST))
    assert _changed(before, _tokens(db)) == {"2026-06", "2026-08"}


def test_a_rolled_back_write_changes_nothing(book):
    db, (june, _, _) = book
    before = _tokens(db)
    with pytest.raises(RuntimeError), db.transaction() as s:
        s.add(_prediction(june))
        s.flush()
        raise RuntimeError("the request failed after its insert")
    assert _tokens(db) == before


def test_many_writes_to_one_month_keep_changing_its_token(book):
    db, (june, _, _) = book
    seen = {_tokens(db)["2026-06"]}
    for _ in range(20):
        with db.transaction() as s:
            s.add(_prediction(june))
        seen.add(_tokens(db)["2026-06"])
    assert len(seen) == 21


def test_book_state_names_each_month_and_the_newest_time(book):
    db, _ = book
    with db.read() as s:
        state = book_state(s)
    assert state.month(datetime(2026, 7, 1, tzinfo=UTC)) == _tokens(db)["2026-07"]
    assert state.month(datetime(2026, 9, 1, tzinfo=UTC)) == NEVER_WRITTEN
    assert state.latest == AUGUST


def test_concurrent_writers_of_one_month_do_not_wait_on_each_other(pg_database):
    """PostgreSQL: a transaction still open after writing July does not hold up another connection writing July
    (each connection has its own shard), and both writes change July's token."""
    from sqlalchemy.orm import Session

    db = pg_database
    july = _app(JULY)
    with db.transaction() as s:
        s.add(july)
    before = _tokens(db)
    with db.engine.connect() as a, db.engine.connect() as b:
        sa_, sb = Session(bind=a), Session(bind=b)
        sa_.add(_prediction(july))
        sa_.flush()  # the trigger has touched July in connection a's shard; a's transaction stays open
        sb.execute(text("SET LOCAL lock_timeout = '2s'"))
        sb.add(_prediction(july))
        sb.commit()  # would time out if it waited on a's token row
        middle = _tokens(db)
        sa_.commit()
    assert middle["2026-07"] != before["2026-07"] and _tokens(db)["2026-07"] != middle["2026-07"]


def test_one_transaction_sets_a_months_token_once_however_many_rows_it_writes(pg_database):
    """PostgreSQL (migration 0021): the first write of a transaction to a month sets its token; the others leave
    the row alone (before, each one updated it again, and each update walked all the versions before it: a
    16,384-row chunk of a batch file spent seconds there). The month still changes with every transaction,
    a write inside a savepoint after the first touch is still counted, and a rolled-back savepoint's touch
    does not leave the month unchanged."""
    from sqlalchemy.orm import Session

    db = pg_database
    june = _app(JUNE)
    with db.transaction() as s:
        s.add(june)

    def updates(s: Session) -> int:  # updates of book_months counted by this connection, this transaction's included
        return int(s.execute(text("SELECT coalesce(sum(n_tup_upd), 0) FROM pg_stat_xact_user_tables "
                                  "WHERE relname = 'book_months'")).scalar_one())

    for _ in range(2):  # and again: the second transaction changes the month once more
        before = _tokens(db)["2026-06"]
        with db.transaction() as s:
            start = updates(s)  # (the view also holds earlier transactions' counts not yet reported)
            for _ in range(300):
                s.add(_prediction(june))
                s.flush()
            assert updates(s) - start <= 1
        assert _tokens(db)["2026-06"] != before

    before = _tokens(db)["2026-06"]
    with db.transaction() as s:
        savepoint = s.begin_nested()  # the first touch of this transaction happens in a savepoint ...
        s.add(_prediction(june))
        s.flush()
        savepoint.rollback()  # ... that is rolled back: the next write must still set the month's token
        s.add(_prediction(june))
    assert _tokens(db)["2026-06"] != before
