"""The decision book summary shown on the home page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from backend.decisioning.book_queries import BookRepository
from backend.decisioning.preparation import HistoryProgress, ProgressFile
from backend.platform.db.engine import Database


class BookService:
    def __init__(self, db: Database, data_dir: Path | None = None) -> None:
        self.db = db
        self.progress_file = ProgressFile(data_dir) if data_dir is not None else None

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

    def history_progress(self) -> HistoryProgress | None:
        """How far the simulated history has been written (:mod:`backend.decisioning.preparation`); None when
        no history run has recorded anything here."""
        return self.progress_file.read() if self.progress_file is not None else None
