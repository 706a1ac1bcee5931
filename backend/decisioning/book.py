"""The decision book summary shown on the home page."""

from __future__ import annotations

from typing import Any

from backend.decisioning.book_queries import BookRepository
from backend.platform.db.engine import Database


class BookService:
    def __init__(self, db: Database) -> None:
        self.db = db

    def summary(self) -> dict[str, Any]:
        with self.db.read() as s:
            repo = BookRepository(s)
            out = repo.totals()
            out["monthly"] = repo.monthly()
        return out

    def simulated_count(self) -> int:
        """How many applications in the book are simulated (pages label themselves when any are)."""
        with self.db.read() as s:
            return BookRepository(s).simulated_count()
