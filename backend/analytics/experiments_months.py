"""The phase comparison's reads of the book, month by month: each calendar month's counts and decision times
are read again only when its ``book_months`` token changed (a write to that month's rows;
``backend.monitoring.book_state``), so a recount after one new application reads one month. (The end-to-end
latency is one read of the whole book: per month its query costs what the whole one does.)"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy.orm import Session

from backend.analytics import experiments_queries as q
from backend.monitoring import RowMemo, month_tokens, month_window


def read_months(s: Session, memo: RowMemo, cutoff: datetime | None, maturity_months: int
                ) -> tuple[list[dict[str, Any]], dict[tuple[str, str], list[float]]]:
    """``(weekly count rows, decision seconds per (phase, arm))`` of every month ever written, from ``memo``
    where the month's token is the one it was read under."""
    raw: list[dict[str, Any]] = []
    times: dict[tuple[str, str], list[float]] = defaultdict(list)
    for month, token in sorted(month_tokens(s).items()):
        window = month_window(month)
        raw += memo.rows(("weekly", month, cutoff, maturity_months), token, partial(
            q.weekly_counts, s, matured_before=cutoff, maturity_months=maturity_months, window=window))
        for phase, arm, t in memo.rows(("times", month), token, partial(q.decision_times, s, window)):
            times[(phase, arm)].append(t)
    return raw, times
