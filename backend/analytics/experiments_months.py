"""The phase comparison's reads of the book, month by month: each calendar month's counts and decision times
are read again only when its ``book_months`` token changed (a write to that month's rows;
``backend.monitoring.book_state``), so a recount after one new application reads one month. What a month was
read under is kept in memory and in a ``phase_comparison_month`` snapshot, so a new process (after a restart)
reads only the months that changed too. (The end-to-end latency is one read of the whole book: per month its
query costs what the whole one does.)"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from backend.analytics import experiments_queries as q
from backend.monitoring import RowMemo, SnapshotRepository, month_tokens, month_window

MONTH_KIND, MONTH_GRANULARITY = "phase_comparison_month", "month"
LAYOUT = 1  # of a kept month's payload (another layout is read again, never reused)

Times = dict[tuple[str, str], list[float]]


class MonthReads:
    """Each month's ``(weekly count rows, decision seconds per (phase, arm))``, read again only if changed."""

    def __init__(self) -> None:
        self.memo = RowMemo()
        self.fresh: dict[str, dict[str, Any]] = {}  # months read from the book since the last :meth:`keep`

    def read(self, s: Session, cutoff: datetime | None, maturity_months: int) -> tuple[list[dict[str, Any]], Times]:
        """The rows and times of every month ever written: from memory or the kept snapshot while the month's
        token (and the maturity cut-off) is the one they were read under, else from the book."""
        at = cutoff.isoformat() if cutoff else None
        raw: list[dict[str, Any]] = []
        times: Times = defaultdict(list)
        for month, token in sorted(month_tokens(s).items()):
            def load(month: str = month, token: str = token) -> tuple[list[dict[str, Any]], list[Any]]:
                p = self.kept(s, month) or {}  # read only for a month not in memory
                if (p.get("v"), p.get("token"), p.get("cutoff"), p.get("maturity")) == (LAYOUT, token, at,
                                                                                        maturity_months):
                    return ([{**r, "week": date.fromisoformat(r["week"])} for r in p["weekly"]],
                            [tuple(t) for t in p["times"]])
                window = month_window(month)
                rows = q.weekly_counts(s, matured_before=cutoff, maturity_months=maturity_months, window=window)
                secs = q.decision_times(s, window)
                self.fresh[month] = {"v": LAYOUT, "token": token, "cutoff": at, "maturity": maturity_months,
                                     "weekly": [{**r, "week": r["week"].isoformat()} for r in rows],
                                     "times": [list(t) for t in secs]}
                return rows, secs
            rows, secs = self.memo.rows((month, at, maturity_months), token, load)
            raw += rows
            for phase, arm, t in secs:
                times[(phase, arm)].append(t)
        return raw, times

    def kept(self, s: Session, month: str) -> dict[str, Any] | None:
        """The stored read of ``month``, if any."""
        snap = SnapshotRepository(s).get(MONTH_KIND, MONTH_GRANULARITY, month)
        return snap.payload if snap is not None else None

    def keep(self, s: Session, now: datetime) -> None:
        """Store the months read from the book since the last call (in the caller's transaction)."""
        fresh, self.fresh = self.fresh, {}
        repo = SnapshotRepository(s)
        for month, payload in fresh.items():
            lo, hi = month_window(month)
            repo.put(kind=MONTH_KIND, granularity=MONTH_GRANULARITY, period=month, window_start=lo, window_end=hi,
                     computed_at=now, n=sum(int(r["applications"]) for r in payload["weekly"]), value=None,
                     payload=payload)
