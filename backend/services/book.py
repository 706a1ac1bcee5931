"""The decision book summary shown on the home page."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from backend.db.engine import Database
from backend.db.repo_book import BookRepository
from backend.db.tables import Application


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
            return int(s.execute(select(func.count()).select_from(Application)
                                 .where(Application.source == "simulated")).scalar_one())
