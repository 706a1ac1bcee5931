"""SQL over stored UTC times (:class:`backend.platform.db.base.UTCDateTime` columns) for both databases: every query
that computes with a time inside the database goes through these, not through its own ``strftime``.

PostgreSQL stores ``timestamptz``. SQLite stores microseconds since 1970-01-01 UTC as an integer since migration
0019 (8 bytes instead of the 26 characters of text SQLAlchemy wrote, ~31 MB of the default history; the migration
converts every stored value). Time values bound as parameters go through the column's type, so comparisons need
nothing from here.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import BigInteger, Float, cast, func, literal_column, type_coerce
from sqlalchemy.sql.elements import ColumnElement

US_PER_S = 1_000_000


def _sqlite(dialect: str) -> bool:
    return dialect == "sqlite"


def _us(col: Any) -> ColumnElement[int]:
    """SQLite: the stored integer (microseconds since 1970-01-01 UTC)."""
    return type_coerce(col, BigInteger)


def _unix(col: Any) -> list[Any]:
    """SQLite date-function arguments for a stored time: whole seconds since 1970 and ``'unixepoch'``."""
    return [_us(col) // US_PER_S, "unixepoch"]  # (integer division: floored for times after 1970)


def month_key(col: Any, dialect: str) -> ColumnElement[str]:
    """``YYYY-MM`` (UTC) of a stored time."""
    if _sqlite(dialect):
        return func.strftime("%Y-%m", *_unix(col))
    return func.to_char(func.timezone("UTC", col), "YYYY-MM")


def week_start(col: Any, dialect: str) -> ColumnElement[Any]:
    """The Monday (UTC) of a stored time's week: a ``date`` on PostgreSQL, ``YYYY-MM-DD`` text on SQLite."""
    if _sqlite(dialect):
        return func.date(*_unix(col), "-6 days", "weekday 1")
    return func.date(func.date_trunc("week", func.timezone("UTC", col)))


def epoch_seconds(col: Any, dialect: str) -> ColumnElement[int]:
    """Whole seconds since 1970-01-01 UTC (exact integers, floored)."""
    if _sqlite(dialect):
        return _us(col) // US_PER_S
    return cast(func.floor(func.extract("epoch", col)), BigInteger)


def seconds_between(later: Any, earlier: Any, dialect: str) -> ColumnElement[Any]:
    """``later - earlier`` in seconds (a float)."""
    if _sqlite(dialect):
        return (type_coerce(later, Float) - type_coerce(earlier, Float)) / literal_column("1000000.0")
    return func.extract("epoch", later - earlier)


def plus_months(col: Any, months: int, dialect: str) -> ColumnElement[Any]:
    """A stored time ``months`` calendar months later (SQLite's calendar arithmetic: 31 Jan + 1 month is 3 Mar),
    comparable in SQL with other stored times."""
    if _sqlite(dialect):
        shifted = cast(func.strftime("%s", *_unix(col), f"+{int(months)} months"), BigInteger)
        return shifted * US_PER_S + _us(col) % US_PER_S
    return col + func.make_interval(0, months)


def raw_time(col: Any, dialect: str) -> ColumnElement[Any]:
    """A stored time selected as the database holds it (no per-row conversion in Python; see :func:`utc_times`)."""
    return _us(col) if _sqlite(dialect) else col


def utc_times(values: pd.Series, dialect: str) -> pd.Series:
    """The values :func:`raw_time` selected (a Series), as UTC timestamps on the same index (NaT for NULL)."""
    if _sqlite(dialect):
        return pd.to_datetime(values.astype("Int64"), unit="us", utc=True).astype("datetime64[ns, UTC]")
    return pd.to_datetime(values, utc=True)
