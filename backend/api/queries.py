"""The API's reads and writes of the database: its own table ``api_idempotency`` (the stored answers to
writes sent with an ``Idempotency-Key``; the rules are in :mod:`backend.api.idempotency`) and the check
that a token's user still exists and is active. Every statement the API runs lives here."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.domain import Actor
from backend.identity import UserRepository
from backend.platform.db.engine import Database
from backend.platform.db.tables_access import IdempotencyRecord


def active_user(db: Database, user_id: uuid.UUID) -> Actor | None:
    """The user ``user_id`` as it is now, or None when it no longer exists or is disabled."""
    with db.read() as s:
        user = UserRepository(s).get(user_id)
        return None if user is None or user.disabled else Actor.of(user)


class KeyTaken(Exception):
    """Another request reserved the same (principal, key) a moment ago (the unique index refused ours)."""


@dataclass(frozen=True)
class Reservation:
    """One stored key: the request it was first used for and, once that succeeded, its answer."""

    request_hash: str
    created_at: datetime
    expires_at: datetime
    status_code: int | None
    response: dict[str, Any] | None


class IdempotencyRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def _where(self, principal: str, key: str) -> Any:
        return (IdempotencyRecord.principal == principal) & (IdempotencyRecord.key == key)

    def get(self, principal: str, key: str, *, for_update: bool = False) -> Reservation | None:
        q = select(IdempotencyRecord).where(self._where(principal, key))
        if for_update:
            q = q.with_for_update()
        row = self.s.execute(q).scalar_one_or_none()
        if row is None:
            return None
        return Reservation(row.request_hash, row.created_at, row.expires_at, row.status_code,
                           None if row.response is None else dict(row.response))

    def reserve(self, principal: str, key: str, *, request_hash: str, now: datetime, expires_at: datetime) -> None:
        """Insert the key (flushed at once, so a concurrent reservation surfaces here as :class:`KeyTaken`)."""
        self.s.add(IdempotencyRecord(principal=principal, key=key, request_hash=request_hash, created_at=now,
                                     expires_at=expires_at))
        try:
            self.s.flush()
        except IntegrityError as exc:
            raise KeyTaken(f"{principal}/{key}") from exc

    def complete(self, principal: str, key: str, *, status_code: int, response: dict[str, Any]) -> None:
        self.s.execute(update(IdempotencyRecord).where(self._where(principal, key))
                       .values(status_code=status_code, response=response))

    def release(self, principal: str, key: str) -> None:
        """Remove the key only while it has no answer (a stored answer is what the work committed)."""
        self.s.execute(delete(IdempotencyRecord).where(self._where(principal, key))
                       .where(IdempotencyRecord.status_code.is_(None)))

    def take_over(self, principal: str, key: str, now: datetime) -> None:
        """An abandoned reservation starts again, as this request's."""
        self.s.execute(update(IdempotencyRecord).where(self._where(principal, key)).values(created_at=now))

    def remove(self, principal: str, key: str) -> None:
        self.s.execute(delete(IdempotencyRecord).where(self._where(principal, key)))

    def purge_expired(self, now: datetime, *, limit: int = 500) -> int:
        ids = list(self.s.execute(select(IdempotencyRecord.id).where(IdempotencyRecord.expires_at <= now)
                                  .limit(limit)).scalars())
        if ids:
            self.s.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id.in_(ids)))
        return len(ids)
