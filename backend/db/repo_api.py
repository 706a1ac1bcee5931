"""Scoring API clients and idempotency records. Every SQL statement for them lives here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from backend.db.tables import ApiClient, IdempotencyRecord


class ApiClientRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add(self, row: ApiClient) -> ApiClient:
        self.s.add(row)
        self.s.flush()
        return row

    def by_client_id(self, client_id: str) -> ApiClient | None:
        return self.s.execute(select(ApiClient).where(ApiClient.client_id == client_id)).scalar_one_or_none()

    def by_name(self, name: str) -> ApiClient | None:
        return self.s.execute(select(ApiClient).where(ApiClient.name == name)).scalar_one_or_none()

    def list(self) -> list[ApiClient]:
        return list(self.s.execute(select(ApiClient).order_by(ApiClient.created_at, ApiClient.name)).scalars())


class IdempotencyRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def get(self, principal: str, key: str, *, for_update: bool = False) -> IdempotencyRecord | None:
        q = select(IdempotencyRecord).where(IdempotencyRecord.principal == principal, IdempotencyRecord.key == key)
        if for_update:
            q = q.with_for_update()
        return self.s.execute(q).scalar_one_or_none()

    def add(self, row: IdempotencyRecord) -> IdempotencyRecord:
        self.s.add(row)
        self.s.flush()
        return row

    def complete(self, principal: str, key: str, *, status_code: int, response: dict[str, Any]) -> None:
        self.s.execute(update(IdempotencyRecord)
                       .where(IdempotencyRecord.principal == principal, IdempotencyRecord.key == key)
                       .values(status_code=status_code, response=response))

    def remove(self, principal: str, key: str) -> None:
        self.s.execute(delete(IdempotencyRecord)
                       .where(IdempotencyRecord.principal == principal, IdempotencyRecord.key == key))

    def purge_expired(self, now: datetime, *, limit: int = 500) -> int:
        ids = list(self.s.execute(select(IdempotencyRecord.id).where(IdempotencyRecord.expires_at <= now)
                                  .limit(limit)).scalars())
        if ids:
            self.s.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id.in_(ids)))
        return len(ids)
