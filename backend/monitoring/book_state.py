"""Verified reuse of a refresh's row reads, month by month (issue 20: "Run checks now"; issue 21: monitors
that pay for what is new).

The fairness and performance refreshes (and the phase comparison's counts) read the book month by month.
Every write to a month's rows (an application, prediction, decision, outcome or explanation inserted,
updated or deleted) changes that month's token in ``book_months``, in the writer's own transaction, by
triggers (migration 0016): nothing in the application has to remember it. :class:`RowMemo` keeps the rows
read for each month with the token they were read under and hands them out again only while that token
is unchanged, so after one new application only its month is read again.

A read that depends on the cut-off (the performance flags compare decision and outcome times with
``until``) is reused only when nothing in the book was as recent as either cut-off when it was read
(``latest``), so the reused rows are exactly what a new read would return. The token is read before the
rows (in the same or an earlier transaction): a write in between makes the kept token stale, which only
causes one more read.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from backend.monitoring.book_state_queries import (
    NEVER_WRITTEN,
    BookState,
    as_utc,
    book_state,
    month_tokens,
    month_window,
    overlapping_tokens,
    scored_month_tokens,
)

__all__ = ["NEVER_WRITTEN", "BookState", "RowMemo", "book_state", "month_tokens", "month_window",
           "overlapping_tokens", "scored_month_tokens"]

T = TypeVar("T")


@dataclass(frozen=True)
class _Kept:
    token: str
    until: datetime | None
    latest: datetime | None
    rows: object


class RowMemo:
    """Rows per key (a month), each valid while its month's token is unchanged (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[Hashable, _Kept] = {}

    def rows(self, key: Hashable, token: str | None, read: Callable[[], T], *, until: datetime | None = None,
             latest: datetime | None = None) -> T:
        """``read()``, or the rows it returned for ``key`` under the same ``token``. With ``until`` (a
        read that depends on the cut-off): only when ``latest`` at that read was before both cut-offs."""
        with self._lock:
            kept = self._rows.get(key)
        if kept is not None and token is not None and kept.token == token and _same_cut(kept, until):
            return kept.rows  # type: ignore[return-value]
        out = read()
        if token is not None:
            with self._lock:
                self._rows[key] = _Kept(token, until, latest, out)
        return out

    def clear(self) -> None:
        with self._lock:
            self._rows = {}


def _same_cut(kept: _Kept, until: datetime | None) -> bool:
    """Whether a read cut at ``kept.until`` returns what one cut at ``until`` would (same month token)."""
    if until is None or kept.until is None:
        return until is None and kept.until is None
    if kept.latest is None:
        return False
    return kept.latest < min(as_utc(kept.until), as_utc(until))
