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
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from backend.platform.db.tables_book import Application, Decision, Outcome, Prediction

T = TypeVar("T")


@dataclass(frozen=True)
class BookState:
    parts: tuple[str, ...]
    latest: datetime | None  # the newest time recorded in the book (applied, decided, approved, observed, imported)


def book_state(s: Session) -> BookState:
    parts: list[object] = []
    times: list[datetime | None] = []
    n, applied = s.execute(select(func.count(), func.max(Application.applied_at)).select_from(Application)).one()
    parts += [n, applied]
    times.append(applied)
    parts.append(s.execute(select(func.count()).select_from(Prediction)).scalar_one())
    parts.extend(sorted(s.execute(select(Decision.status, func.count()).group_by(Decision.status)).all()))
    decided, approved = s.execute(select(func.max(Decision.decided_at), func.max(Decision.approved_at))).one()
    parts += [decided, approved]
    times += [decided, approved]
    row = s.execute(select(func.count(), func.max(Outcome.observed_at), func.max(Outcome.imported_at),
                           func.count(func.distinct(Outcome.batch_id)), func.count(case((Outcome.funded.is_(True), 1))),
                           func.count(case((Outcome.defaulted.is_(True), 1))))).one()
    parts.extend(row)
    times += [row[1], row[2]]
    known = [_utc(t) for t in times if t is not None]
    return BookState(tuple(str(p) for p in parts), max(known) if known else None)


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
                and state.latest < min(_utc(self._until), _utc(until)))


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
