"""``Idempotency-Key`` on API writes, stored in the database (shared by every worker).

Per caller (token subject) and key: the first request reserves the key, runs, and stores its
answer when it succeeds (2xx). A retry with the same key and the same request (method, path and
canonical JSON body) gets the stored answer with ``Idempotent-Replayed: true`` and writes nothing;
the same key with a different request gets 409; a retry while the first is still running gets
409 too (with ``Retry-After``). A failed request (4xx/5xx) stores nothing and releases the key, so
it may be retried. Keys live ``idempotency_ttl_hours``.

Outages leave nothing stuck:

* a write that takes a ``finish`` hook (scoring) stores its answer in the same transaction as what
  it records, so the key is completed exactly when the work commits: a retry returns the committed
  answer, whatever the first request's client was told;
* a key whose request failed is released (only while still in progress: a completed answer is never
  removed); when the database is down and the release itself fails, this process remembers the key
  and releases it at its next chance (before it answers any keyed request);
* a reservation older than ``lease_seconds`` without an answer was abandoned (a worker died, or
  another process could not release it): the next retry takes it over and runs the work again. The
  work is then idempotent by itself where it must be (a decision carries the key to the decision
  service, which returns the committed decision), or it did not commit (scoring: see the first point).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from backend.api.problems import Problem
from backend.api.queries import IdempotencyRepository, KeyTaken
from backend.domain import KEY_RE
from backend.platform.db.engine import Database
from backend.platform.ports import Clock

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
BAD_KEY = "Idempotency-Key must be 8-128 characters of letters, digits, '.', '_', ':' or '-'."
KEY_REUSED = "This Idempotency-Key was already used for a different request; nothing was done."
IN_PROGRESS = "A request with this Idempotency-Key is still being processed; retry in a moment."


@dataclass(frozen=True)
class Stored:
    status_code: int
    body: dict[str, Any]


def request_hash(method: str, path: str, body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


#: ``finish(session, status, body)``: stores the answer in the work's own transaction (see :meth:`IdempotencyStore.run`)
Finish = Callable[[Session, int, dict[str, Any]], None]
Work = Callable[[Finish | None], tuple[int, dict[str, Any]]]


class IdempotencyStore:
    def __init__(self, db: Database, clock: Clock, *, ttl_hours: float, lease_seconds: float = 60.0) -> None:
        self.db = db
        self.clock = clock
        self.ttl = timedelta(hours=ttl_hours)
        self.lease = timedelta(seconds=lease_seconds)
        self._unreleased: set[tuple[str, str]] = set()  # keys whose release failed (database down)
        self._lock = threading.Lock()

    def run(self, principal: str, key: str | None, fingerprint: str, work: Work) -> tuple[Stored, bool]:
        """``work(finish)`` once per (principal, key); returns the answer and whether it was replayed.
        ``finish`` is None without a key; with one, a work that records in a transaction of its own calls
        ``finish(session, status, body)`` inside it, so the answer commits with the work (or neither does)."""
        if key is None:
            status, body = work(None)
            return Stored(status, body), False
        key = key.strip(" \t\r\n")  # optional whitespace around a field value is not part of it (RFC 9110)
        if not KEY_RE.match(key):
            raise Problem(422, "bad-idempotency-key", "Bad Idempotency-Key", BAD_KEY)
        self._release_pending()
        stored = self._reserve(principal, key, fingerprint)
        if stored is not None:
            return stored, True
        completed = False

        def finish(s: Session, status: int, body: dict[str, Any]) -> None:
            nonlocal completed
            if 200 <= status < 300:
                IdempotencyRepository(s).complete(principal, key, status_code=status, response=body)
                completed = True

        try:
            status, body = work(finish)
        except BaseException:
            self._release(principal, key)
            raise
        if not 200 <= status < 300:
            self._release(principal, key)
        elif not completed:
            try:
                with self.db.transaction() as s:
                    IdempotencyRepository(s).complete(principal, key, status_code=status, response=body)
            except BaseException:  # the answer could not be stored: free the key (a retry reconciles)
                self._release(principal, key)
                raise
        return Stored(status, body), False

    def _reserve(self, principal: str, key: str, fingerprint: str) -> Stored | None:
        now = self.clock.now()
        try:
            with self.db.transaction() as s:
                repo = IdempotencyRepository(s)
                row = repo.get(principal, key, for_update=True)
                if row is not None and row.expires_at <= now:
                    repo.remove(principal, key)
                    s.flush()
                    row = None
                if row is None:
                    repo.purge_expired(now, limit=100)
                    repo.reserve(principal, key, request_hash=fingerprint, now=now, expires_at=now + self.ttl)
                    return None
                if row.request_hash != fingerprint:
                    raise Problem(409, "idempotency-key-reused", "Idempotency-Key reused", KEY_REUSED)
                if (row.status_code is None or row.response is None) and row.created_at <= now - self.lease:
                    repo.take_over(principal, key, now)  # abandoned: this retry runs the work again
                    return None
                if row.status_code is None or row.response is None:
                    raise Problem(409, "idempotency-in-progress", "Request in progress", IN_PROGRESS,
                                  headers={"Retry-After": "1"})
                return Stored(int(row.status_code), dict(row.response))
        except KeyTaken:  # a concurrent first request reserved the key a moment ago
            raise Problem(409, "idempotency-in-progress", "Request in progress", IN_PROGRESS,
                          headers={"Retry-After": "1"}) from None

    def _release(self, principal: str, key: str) -> None:
        """Free a key whose request failed, unless its answer was stored (the work committed after all)."""
        try:
            with self.db.transaction() as s:
                IdempotencyRepository(s).release(principal, key)
        except Exception:  # noqa: BLE001 - the database is down: release it when it is back
            with self._lock:
                self._unreleased.add((principal, key))
            raise

    def _release_pending(self) -> None:
        with self._lock:
            pending, self._unreleased = self._unreleased, set()
        for i, (principal, key) in enumerate(pending):
            try:
                with self.db.transaction() as s:
                    IdempotencyRepository(s).release(principal, key)
            except Exception:
                with self._lock:
                    self._unreleased.update(list(pending)[i:])
                raise
