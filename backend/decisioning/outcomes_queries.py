"""The SQL of an outcome import, and the stored outcomes by application. Every SQL statement for
``outcomes`` lives here.

The import's statements (:data:`_SQL`) run over list parameters (``json_each`` on SQLite, arrays on
PostgreSQL) with bulk writes, so 150,000 rows do not spend their time in per-value type conversion.
Ids travel as 32 hex digits (SQLite stores their 16 bytes: converted in SQL and at the driver), times as UTC
text in each backend's own format.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from backend.platform.db.base import sqlite_function, sqlite_time
from backend.platform.db.tables_book import Outcome
from backend.platform.db.timesql import utc_times

CHUNK = 50_000  # ids per lookup statement
_PG_CHUNK = 20_000  # rows per INSERT ... SELECT FROM unnest(...)
_SQLITE_CACHE_KIB = -131_072  # 128 MiB page cache during an import (negative: KiB); restored afterwards
_PG_TIME = "%Y-%m-%d %H:%M:%S.%f+00:00"
_LOCK_ID = 7_734_003  # PostgreSQL advisory lock: one outcome import at a time
ORM_CHUNK = 5000  # application ids per IN (...) when reading outcomes back


def _naive(values: Any, pg: bool) -> np.ndarray:
    """Times as the database returned them (PostgreSQL: UTC text; SQLite: microseconds since 1970, see
    backend/platform/db/base.py UTCDateTime) as naive UTC ``datetime64[ns]``."""
    if not pg:
        return utc_times(pd.Series(values, dtype=object), "sqlite").dt.tz_localize(None).to_numpy(
            dtype="datetime64[ns]")
    t = pd.to_datetime(pd.Series(values, dtype=object), utc=True, format="ISO8601")
    return t.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")


def _fmt(ts: pd.Series, pattern: str) -> list[str]:
    """Timestamps as text (each distinct value formatted once)."""
    codes, uniques = pd.factorize(ts)
    return list(np.asarray(pd.DatetimeIndex(uniques).strftime(pattern), dtype=object)[codes])


def _unhex(value: str) -> bytes | None:
    """SQLite's ``unhex`` (3.41+; this driver may link an older one) for the lookups' id lists."""
    try:
        return bytes.fromhex(value)
    except (TypeError, ValueError):
        return None


def _chunks(items: list[Any]) -> Iterable[list[Any]]:
    for i in range(0, len(items), CHUNK):
        yield items[i:i + CHUNK]


_SQL: dict[str, dict[str, str]] = {
    "sqlite": {  # ids are 16-byte BLOBs since 0018 (backend/platform/db/base.py UUIDKey): hex in and out here
        "by_id": "SELECT lower(hex(id)), applied_at FROM applications "
                 "WHERE id IN (SELECT creditrisk_unhex(value) FROM json_each(:ids))",
        "by_external": "SELECT external_id, lower(hex(id)), applied_at FROM applications "
                       "WHERE external_id IN (SELECT value FROM json_each(:ids))",
        "existing": "SELECT lower(hex(application_id)), lower(hex(id)), observed_at FROM outcomes "
                    "WHERE application_id IN (SELECT creditrisk_unhex(value) FROM json_each(:ids))",
        # qmark executemany through the driver (no per-row statement processing)
        "insert": "INSERT INTO outcomes (id, application_id, funded, defaulted, observed_at, imported_at, batch_id) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?)",
        "update": "UPDATE outcomes SET funded = ?, defaulted = ?, observed_at = ?, imported_at = ?, batch_id = ? "
                  "WHERE id = ?",
    },
    "postgresql": {
        "by_id": "SELECT replace(CAST(id AS text), '-', ''), CAST(applied_at AT TIME ZONE 'UTC' AS text) "
                 "FROM applications WHERE id = ANY(CAST(:ids AS uuid[]))",
        "by_external": "SELECT external_id, replace(CAST(id AS text), '-', ''), "
                       "CAST(applied_at AT TIME ZONE 'UTC' AS text) "
                       "FROM applications WHERE external_id = ANY(CAST(:ids AS text[]))",
        "existing": "SELECT replace(CAST(application_id AS text), '-', ''), replace(CAST(id AS text), '-', ''), "
                    "CAST(observed_at AT TIME ZONE 'UTC' AS text) "
                    "FROM outcomes WHERE application_id = ANY(CAST(:ids AS uuid[]))",
        # one statement per chunk, over arrays
        "insert": "INSERT INTO outcomes (id, application_id, funded, defaulted, observed_at, imported_at, batch_id) "
                  "SELECT u.id, u.app, u.f, u.d, u.o, CAST(:now AS timestamptz), :batch "
                  "FROM unnest(CAST(:id AS uuid[]), CAST(:app AS uuid[]), CAST(:funded AS boolean[]), "
                  "CAST(:defaulted AS boolean[]), CAST(:observed AS timestamptz[])) AS u(id, app, f, d, o)",
        "update": "UPDATE outcomes SET funded = u.f, defaulted = u.d, observed_at = u.o, "
                  "imported_at = CAST(:now AS timestamptz), batch_id = :batch "
                  "FROM unnest(CAST(:id AS uuid[]), CAST(:funded AS boolean[]), CAST(:defaulted AS boolean[]), "
                  "CAST(:observed AS timestamptz[])) AS u(id, f, d, o) WHERE outcomes.id = u.id",
    },
}


class OutcomeImportRepository:
    """The statements of one import (:data:`_SQL`), inside its transaction."""

    def __init__(self, s: Session) -> None:
        self.s = s
        self.pg = s.get_bind().dialect.name == "postgresql"
        self.sql = _SQL["postgresql" if self.pg else "sqlite"]
        if not self.pg:
            sqlite_function(s.connection(), "creditrisk_unhex", _unhex)

    def _select(self, name: str, ids: list[str], columns: list[str]) -> pd.DataFrame:
        rows: list[Any] = []
        for part in _chunks(ids):
            rows += self.s.execute(text(self.sql[name]), {"ids": part if self.pg else json.dumps(part)}).all()
        f = pd.DataFrame(rows, columns=columns)
        f[columns[-1]] = _naive(f[columns[-1]], self.pg)
        return f.set_index(columns[0])

    def prepare(self) -> int | None:
        """Serialise imports (PostgreSQL); on SQLite a larger page cache for this transaction."""
        if self.pg:
            self.s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_ID})
            return None
        before = int(self.s.execute(text("PRAGMA cache_size")).scalar_one())
        self.s.execute(text(f"PRAGMA cache_size = {_SQLITE_CACHE_KIB:d}"))
        return before

    def restore(self, cache_size: int | None) -> None:
        if cache_size is not None:
            self.s.execute(text(f"PRAGMA cache_size = {int(cache_size):d}"))

    def by_id(self, hex_ids: list[str]) -> pd.DataFrame:
        """index: application hex id; ``applied`` (UTC)."""
        return self._select("by_id", hex_ids, ["app", "applied"])

    def by_external(self, external: list[str]) -> pd.DataFrame:
        """index: external id; ``app`` (hex id), ``applied`` (UTC)."""
        return self._select("by_external", external, ["key", "app", "applied"])

    def existing(self, hex_ids: list[str]) -> pd.DataFrame:
        """Stored outcomes. index: application hex id; ``id`` (hex), ``observed`` (UTC)."""
        return self._select("existing", hex_ids, ["app", "id", "observed"])

    def insert(self, rows: dict[str, list[Any]], now: Any, batch: str) -> None:
        if not rows["id"]:
            return
        if self.pg:
            for i in range(0, len(rows["id"]), _PG_CHUNK):
                part = {k: v[i:i + _PG_CHUNK] for k, v in rows.items()}
                self.s.execute(text(self.sql["insert"]), {**part, "now": now, "batch": batch})
            return
        self.s.connection().exec_driver_sql(self.sql["insert"], [
            (bytes.fromhex(i), bytes.fromhex(a), f, d, o, now, batch) for i, a, f, d, o in
            zip(rows["id"], rows["app"], rows["funded"], rows["defaulted"], rows["observed"], strict=True)])

    def update(self, rows: dict[str, list[Any]], now: Any, batch: str) -> None:
        if not rows["id"]:
            return
        if self.pg:
            for i in range(0, len(rows["id"]), _PG_CHUNK):
                part = {k: v[i:i + _PG_CHUNK] for k, v in rows.items() if k != "app"}
                self.s.execute(text(self.sql["update"]), {**part, "now": now, "batch": batch})
            return
        self.s.connection().exec_driver_sql(self.sql["update"], [
            (f, d, o, now, batch, bytes.fromhex(i)) for i, f, d, o in
            zip(rows["id"], rows["funded"], rows["defaulted"], rows["observed"], strict=True)])

    def values(self, mask: np.ndarray, ids: list[Any], app: pd.Series, funded: pd.Series,
               default: pd.Series, observed: pd.Series) -> dict[str, list[Any]]:
        """Column lists of the rows in ``mask`` for :meth:`insert` / :meth:`update`."""
        d = default[mask]
        return {"id": ids, "app": list(app[mask]), "funded": funded[mask].to_numpy(dtype=bool).tolist(),
                "defaulted": d.astype(object).where(d.notna(), None).tolist(),
                "observed": self._times(observed[mask])}

    def _times(self, ts: pd.Series) -> list[Any]:
        """UTC timestamps as each database's statement takes them: text on PostgreSQL, the integer
        microseconds :class:`UTCDateTime` stores on SQLite."""
        ts = ts.dt.floor("us")
        if self.pg:
            return _fmt(ts, _PG_TIME)
        aware = ts.dt.tz_convert(UTC) if ts.dt.tz is not None else ts.dt.tz_localize(UTC)
        return aware.dt.as_unit("us").astype("int64").tolist()

    def stamp(self, now: datetime) -> Any:
        """The import's time (``imported_at``) as the statements take it."""
        return now.astimezone(UTC).strftime(_PG_TIME) if self.pg else sqlite_time(now)


class OutcomeRepository:
    def __init__(self, s: Session) -> None:
        self.s = s

    def for_applications(self, application_ids: list[uuid.UUID]) -> list[Outcome]:
        """The stored outcomes of these applications (those without one are left out)."""
        out: list[Outcome] = []
        for i in range(0, len(application_ids), ORM_CHUNK):
            out += self.s.execute(select(Outcome).where(
                Outcome.application_id.in_(application_ids[i:i + ORM_CHUNK]))).scalars()
        return out
