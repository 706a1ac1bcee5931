"""Verified reuse of a refresh's row reads while the book is unchanged (issue 20: "Run checks now").

The fairness and performance refreshes read every month of the book again on each run (decisions and
outcomes arrive late), which is most of a "Run checks now". :func:`book_state` is a cheap sign of every
change those reads can see (index-only counts and maxima, plus two narrow scans): new applications,
predictions, decisions, a decision's status or approval, outcome rows inserted or updated by an import.
Applications and predictions are written once (only a PII key rotation updates an application, and only
its applicant columns, which no summary reads), so their counts and newest times say when they change.
:class:`RowMemo` keeps the rows read for each window and hands them out again only while the state is
the one they were read under **and** nothing in the book is as recent as either cut-off (the last month
is cut at ``until``, and the performance flags compare decision and outcome times with ``until``), so
the reused rows are exactly what a new read would return. Any change empties the memo: that refresh
reads everything, as before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from datetime import datetime
from typing import TypeVar

from backend.monitoring.book_state_queries import BookState, as_utc, book_state

__all__ = ["BookState", "RowMemo", "book_state"]

T = TypeVar("T")


class RowMemo:
    """Rows per window, valid for one :class:`BookState` (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: tuple[str, ...] | None = None
        self._until: datetime | None = None
        self._rows: dict[Hashable, object] = {}

    def rows(self, state: BookState, until: datetime, key: Hashable, read: Callable[[], T]) -> T:
        """``read()`` or the rows it returned for ``key`` under the same state and an equivalent cut."""
        with self._lock:
            if not self.holds(state, until):
                self._state, self._until, self._rows = state.parts, until, {}
            elif key in self._rows:
                return self._rows[key]  # type: ignore[return-value]
        out = read()
        with self._lock:
            if self._state == state.parts:
                self._rows[key] = out
        return out

    def holds(self, state: BookState, until: datetime) -> bool:
        """Whether rows read under the memo's state and cut are the rows of ``state`` cut at ``until``."""
        return (self._state == state.parts and self._until is not None and state.latest is not None
                and state.latest < min(as_utc(self._until), as_utc(until)))
