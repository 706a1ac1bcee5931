"""The book's state for :mod:`backend.monitoring.book_state`: each month's token (``book_months``, kept by
triggers: migration 0016) and the newest time recorded in the book (index-only maxima)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import BigInteger, Integer, String, column, func, select, table
from sqlalchemy.orm import Session

from backend.platform.db.book_month_triggers import SCORED_SHARD
from backend.platform.db.tables_book import Application, Decision, Outcome

# derived, kept by triggers, not in the ORM metadata (backups leave it out): see migration 0016
BOOK_MONTHS = table("book_months", column("month", String), column("shard", Integer), column("token", BigInteger))


NEVER_WRITTEN = "0:0"  # no shard: a written month's count is at least 1


@dataclass(frozen=True)
class BookState:
    months: dict[str, str]  # "YYYY-MM" (UTC, of applied_at) -> a token every write to that month's rows changes
    latest: datetime | None  # the newest time recorded in the book (applied, decided, approved, observed, imported)

    def month(self, start: datetime) -> str:
        """The token of the calendar month starting at ``start``; ``NEVER_WRITTEN`` for a month no row of
        the book was ever written in (its reads are empty until a write gives it a token)."""
        return self.months.get(f"{as_utc(start):%Y-%m}", NEVER_WRITTEN)


def month_tokens(s: Session, *, scored_only: bool = False) -> dict[str, str]:
    """Each month's token: the count and sum of its shards' random tokens (any write changes one). With
    ``scored_only``, over the shards that only writes of applications and predictions change (migration 0022)."""
    c = BOOK_MONTHS.c
    query = select(c.month, func.count(), func.sum(c.token)).group_by(c.month)
    rows = s.execute(query.where(c.shard >= SCORED_SHARD) if scored_only else query).all()
    return {str(m): f"{n}:{t}" for m, n, t in rows}


def scored_month_tokens(s: Session) -> dict[str, str]:
    """Each month's scored token: what drift reads (a month with no such shard has no entry)."""
    return month_tokens(s, scored_only=True)


def book_state(s: Session) -> BookState:
    times: list[datetime | None] = [s.execute(select(func.max(Application.applied_at))).scalar()]
    times += s.execute(select(func.max(Decision.decided_at), func.max(Decision.approved_at))).one()
    times += s.execute(select(func.max(Outcome.observed_at), func.max(Outcome.imported_at))).one()
    known = [as_utc(t) for t in times if t is not None]
    return BookState(month_tokens(s), max(known) if known else None)


def as_utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def month_end(lo: datetime) -> datetime:
    """The start of the calendar month after the one starting at ``lo``."""
    return lo.replace(year=lo.year + 1, month=1) if lo.month == 12 else lo.replace(month=lo.month + 1)


def month_window(month: str) -> tuple[datetime, datetime]:
    """``[start, end)`` of the calendar month ``YYYY-MM`` (UTC), as ``book_months`` names them."""
    start = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
    return start, month_end(start)


def overlapping_tokens(tokens: dict[str, str], start: datetime, end: datetime) -> list[str]:
    """The tokens (of :func:`month_tokens`) of the calendar months ``[start, end)`` overlaps, oldest first."""
    out, lo = [], as_utc(start).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    while lo < end:
        out.append(tokens.get(f"{lo:%Y-%m}", NEVER_WRITTEN))
        lo = month_end(lo)
    return out
