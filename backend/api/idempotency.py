"""``Idempotency-Key`` on API writes, stored in the database (shared by every worker).

Per caller (token subject) and key: the first request reserves the key, runs, and stores its
answer when it succeeds (2xx). A retry with the same key and the same request (method, path and
canonical JSON body) gets the stored answer with ``Idempotent-Replayed: true`` and writes nothing;
the same key with a different request gets 409; a retry while the first is still running gets
409 too. A failed request (4xx/5xx) stores nothing and releases the key, so it may be retried.
Keys live ``idempotency_ttl_hours``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from backend.api.problems import Problem
from backend.db.engine import Database
from backend.db.repo_api import IdempotencyRepository
from backend.db.tables import IdempotencyRecord
from backend.ports import Clock
from backend.services.override_rules import KEY_RE

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


class IdempotencyStore:
    def __init__(self, db: Database, clock: Clock, *, ttl_hours: float) -> None:
        self.db = db
        self.clock = clock
        self.ttl = timedelta(hours=ttl_hours)

    def run(self, principal: str, key: str | None, fingerprint: str,
            work: Callable[[], tuple[int, dict[str, Any]]]) -> tuple[Stored, bool]:
        """``work()`` once per (principal, key); returns the answer and whether it was replayed."""
        if key is None:
            status, body = work()
            return Stored(status, body), False
        key = key.strip(" \t\r\n")  # optional whitespace around a field value is not part of it (RFC 9110)
        if not KEY_RE.match(key):
            raise Problem(422, "bad-idempotency-key", "Bad Idempotency-Key", BAD_KEY)
        stored = self._reserve(principal, key, fingerprint)
        if stored is not None:
            return stored, True
        try:
            status, body = work()
        except BaseException:
            self._release(principal, key)
            raise
        if 200 <= status < 300:
            with self.db.transaction() as s:
                IdempotencyRepository(s).complete(principal, key, status_code=status, response=body)
        else:
            self._release(principal, key)
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
                    repo.add(IdempotencyRecord(principal=principal, key=key, request_hash=fingerprint,
                                               created_at=now, expires_at=now + self.ttl))
                    return None
                if row.request_hash != fingerprint:
                    raise Problem(409, "idempotency-key-reused", "Idempotency-Key reused", KEY_REUSED)
                if row.status_code is None or row.response is None:
                    raise Problem(409, "idempotency-in-progress", "Request in progress", IN_PROGRESS,
                                  headers={"Retry-After": "1"})
                return Stored(int(row.status_code), dict(row.response))
        except IntegrityError:  # a concurrent first request reserved the key a moment ago
            raise Problem(409, "idempotency-in-progress", "Request in progress", IN_PROGRESS,
                          headers={"Retry-After": "1"}) from None

    def _release(self, principal: str, key: str) -> None:
        with self.db.transaction() as s:
            IdempotencyRepository(s).remove(principal, key)
