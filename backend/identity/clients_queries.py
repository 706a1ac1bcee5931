"""Scoring API clients. Every SQL statement on them lives here (idempotency records: backend/api/queries.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.platform.db.tables_access import ApiClient


class ApiClientRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def create(self, *, client_id: str, name: str, role: str, scopes: list[str], secret_hash: str,
               at: datetime, created_by: str) -> ApiClient:
        """A new client (flushed, so its id is set)."""
        row = ApiClient(client_id=client_id, name=name, role=role, scopes=scopes, secret_hash=secret_hash,
                        created_at=at, created_by=created_by)
        self.s.add(row)
        self.s.flush()
        return row

    def by_client_id(self, client_id: str) -> ApiClient | None:
        return self.s.execute(select(ApiClient).where(ApiClient.client_id == client_id)).scalar_one_or_none()

    def by_name(self, name: str) -> ApiClient | None:
        return self.s.execute(select(ApiClient).where(ApiClient.name == name)).scalar_one_or_none()

    def list(self) -> list[ApiClient]:
        return list(self.s.execute(select(ApiClient).order_by(ApiClient.created_at, ApiClient.name)).scalars())
