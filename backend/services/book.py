"""The decision book summary shown on the home page."""

from __future__ import annotations

from typing import Any

from backend.db.engine import Database
from backend.db.repo_book import BookRepository


class BookService:
    def __init__(self, db: Database) -> None:
        self.db = db

    def summary(self) -> dict[str, Any]:
        with self.db.read() as s:
            repo = BookRepository(s)
            out = repo.totals()
            out["monthly"] = repo.monthly()
        return out
