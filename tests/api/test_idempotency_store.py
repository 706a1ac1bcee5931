"""The Idempotency-Key store on its own, on SQLite and PostgreSQL: the paths an HTTP test cannot reach
on purpose (a retry while the first request is still running, an expired key, two first requests racing
for the same key, a request that raises) and the repository's own contract (backend/api/queries.py)."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from backend.api import idempotency as I
from backend.api.problems import Problem
from backend.api.queries import IdempotencyRepository, KeyTaken
from backend.platform.clock import FixedClock
from backend.platform.db.engine import Database

KEY = "order-2026-0001"


def _store(db: Database, clock: FixedClock) -> I.IdempotencyStore:
    return I.IdempotencyStore(db, clock, ttl_hours=24)


def _rows(db: Database) -> int:
    with db.read() as s:
        return int(s.execute(sa.text("SELECT count(*) FROM api_idempotency")).scalar_one())


def test_a_retry_while_the_first_runs_is_409_in_progress_and_the_first_still_completes(db: Database,
                                                                                      clock: FixedClock) -> None:
    store, seen = _store(db, clock), []

    def first(_f: Any) -> tuple[int, dict[str, Any]]:
        with pytest.raises(Problem) as exc:
            store.run("user:a", KEY, "h1", lambda _f: (200, {"never": True}))
        seen.append(exc.value)
        return 201, {"id": 1}

    stored, replayed = store.run("user:a", KEY, "h1", first)
    assert (stored.status_code, stored.body, replayed) == (201, {"id": 1}, False)
    (problem,) = seen
    assert problem.status_code == 409 and problem.headers == {"Retry-After": "1"} and problem.detail == I.IN_PROGRESS
    again, replayed = store.run("user:a", KEY, "h1", lambda _f: pytest.fail("replayed requests run nothing"))
    assert (again.status_code, again.body, replayed) == (201, {"id": 1}, True)


def test_an_expired_key_is_a_new_request_even_with_another_body(db: Database, clock: FixedClock) -> None:
    store = _store(db, clock)
    store.run("user:a", KEY, "h1", lambda _f: (200, {"n": 1}))
    clock.advance(hours=23, minutes=59)
    with pytest.raises(Problem) as exc:
        store.run("user:a", KEY, "h2", lambda _f: (200, {"n": 2}))
    assert exc.value.status_code == 409 and exc.value.detail == I.KEY_REUSED
    clock.advance(minutes=1)  # expires_at <= now: gone
    stored, replayed = store.run("user:a", KEY, "h2", lambda _f: (200, {"n": 2}))
    assert (stored.body, replayed) == ({"n": 2}, False)
    assert _rows(db) == 1


def test_a_failure_or_an_exception_releases_the_key(db: Database, clock: FixedClock) -> None:
    store = _store(db, clock)
    stored, _ = store.run("user:a", KEY, "h1", lambda _f: (422, {"bad": True}))
    assert stored.status_code == 422 and _rows(db) == 0

    def boom(_f: Any) -> tuple[int, dict[str, Any]]:
        raise RuntimeError("scoring backend down")

    with pytest.raises(RuntimeError):
        store.run("user:a", KEY, "h1", boom)
    assert _rows(db) == 0
    assert store.run("user:a", KEY, "h9", lambda _f: (200, {}))[1] is False  # free again, for any body


@pytest.mark.parametrize("key", ["short", "x" * 129, "has space", "semi;colon", "ключ-12345", "\x00" * 10, "a\nb" * 4])
def test_bad_keys_are_422_and_store_nothing(db: Database, clock: FixedClock, key: str) -> None:
    with pytest.raises(Problem) as exc:
        _store(db, clock).run("user:a", key, "h1", lambda _f: pytest.fail("a bad key runs nothing"))
    assert exc.value.status_code == 422 and exc.value.detail == I.BAD_KEY
    assert _rows(db) == 0


def test_the_repository_refuses_a_second_reservation_of_the_same_key(db: Database, clock: FixedClock) -> None:
    now = clock.now()
    with db.transaction() as s:
        IdempotencyRepository(s).reserve("user:a", KEY, request_hash="h1", now=now, expires_at=now)
    with pytest.raises(KeyTaken), db.transaction() as s:
        IdempotencyRepository(s).reserve("user:a", KEY, request_hash="h2", now=now, expires_at=now)
    with db.transaction() as s:  # another caller's same key is another key
        IdempotencyRepository(s).reserve("user:b", KEY, request_hash="h1", now=now, expires_at=now)
    with db.read() as s:
        got = IdempotencyRepository(s).get("user:a", KEY)
    assert got is not None and got.request_hash == "h1" and got.status_code is None and got.response is None


def test_two_first_requests_racing_for_one_key_run_once(pg_database: Database, clock: FixedClock,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Both find no row (nothing to lock yet) and insert; the unique index lets one through and the other
    gets 409 in progress, never a 500 and never a second run. PostgreSQL only: SQLite serialises writers."""
    store = _store(pg_database, clock)
    both_looked = threading.Barrier(2, timeout=20)
    purge = IdempotencyRepository.purge_expired

    def purge_after_both_looked(self: IdempotencyRepository, now: Any, *, limit: int = 500) -> int:
        both_looked.wait()
        return purge(self, now, limit=limit)

    monkeypatch.setattr(IdempotencyRepository, "purge_expired", purge_after_both_looked)
    runs: list[int] = []
    outcomes: list[Any] = [None, None]

    def call(i: int) -> None:
        try:
            outcomes[i] = store.run("user:a", KEY, "h1", lambda _f: (runs.append(i), (200, {"by": i}))[1])
        except Problem as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(runs) == 1
    refused = [o for o in outcomes if isinstance(o, Problem)]
    assert len(refused) == 1 and refused[0].status_code == 409 and refused[0].detail == I.IN_PROGRESS
    assert _rows(pg_database) == 1


def test_an_abandoned_reservation_is_taken_over_after_the_lease(db: Database, clock: FixedClock) -> None:
    store = I.IdempotencyStore(db, clock, ttl_hours=24, lease_seconds=60)
    now = clock.now()
    with db.transaction() as s:  # a worker reserved the key and died (or could not release it)
        IdempotencyRepository(s).reserve("user:a", KEY, request_hash="h1", now=now, expires_at=now + timedelta(hours=24))
    clock.advance(seconds=59)
    with pytest.raises(Problem) as exc:
        store.run("user:a", KEY, "h1", lambda _f: pytest.fail("still within the lease"))
    assert exc.value.status_code == 409 and exc.value.detail == I.IN_PROGRESS
    with pytest.raises(Problem) as other:  # another body is refused whatever the lease
        store.run("user:a", KEY, "h2", lambda _f: pytest.fail("another body runs nothing"))
    assert other.value.detail == I.KEY_REUSED
    clock.advance(seconds=2)
    stored, replayed = store.run("user:a", KEY, "h1", lambda _f: (201, {"again": True}))
    assert (stored.status_code, stored.body, replayed) == (201, {"again": True}, False)
    assert store.run("user:a", KEY, "h1", lambda _f: pytest.fail("answered"))[0].body == {"again": True}


def test_an_answer_stored_with_the_work_survives_a_failure_after_its_commit(db: Database, clock: FixedClock) -> None:
    store = _store(db, clock)

    def commits_then_loses_the_connection(finish: Any) -> tuple[int, dict[str, Any]]:
        with db.transaction() as s:
            finish(s, 201, {"decision_id": "d-1"})  # in the work's own transaction
        raise sa.exc.OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))

    with pytest.raises(sa.exc.OperationalError):
        store.run("user:a", KEY, "h1", commits_then_loses_the_connection)
    stored, replayed = store.run("user:a", KEY, "h1", lambda _f: pytest.fail("committed: replayed, not re-run"))
    assert (stored.status_code, stored.body, replayed) == (201, {"decision_id": "d-1"}, True)


def test_a_release_that_fails_is_done_at_the_next_request(db: Database, clock: FixedClock,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    store = _store(db, clock)
    real, calls = IdempotencyRepository.release, []

    def release_while_down(self: IdempotencyRepository, principal: str, key: str) -> None:
        calls.append(key)
        if len(calls) == 1:
            raise sa.exc.OperationalError("DELETE", {}, Exception("connection refused"))
        real(self, principal, key)

    monkeypatch.setattr(IdempotencyRepository, "release", release_while_down)

    def down(_f: Any) -> tuple[int, dict[str, Any]]:
        raise sa.exc.OperationalError("INSERT", {}, Exception("connection refused"))

    with pytest.raises(sa.exc.OperationalError):
        store.run("user:a", KEY, "h1", down)
    assert _rows(db) == 1  # still reserved: the release failed too
    stored, replayed = store.run("user:a", KEY, "h1", lambda _f: (200, {"fresh": True}))  # no lease wait
    assert (stored.body, replayed) == ({"fresh": True}, False) and calls == [KEY, KEY]
