"""Loan outcomes from the loan system: funded or not, defaulted or not, as observed on a date.

* **Format** (CSV or Parquet; column names are case-insensitive, other columns are ignored):
  ``application_id`` (our application UUID or the application's ``external_id``), ``funded``
  (true/false, 1/0, yes/no), ``default_flag`` or ``defaulted`` (the same, or empty when not funded or
  not yet known), ``observation_date`` (ISO date or datetime; a time without an offset is UTC).
  A file that cannot be read, or lacks a required column, is refused as a whole
  (:class:`OutcomeFileError`).
* **Rows** are validated together (vectorized); a rejected row gets every reason that applies:
  missing or unknown application id, bad boolean, empty or bad date, a date in the future (by the
  service clock), an observation dated before the application's day, a default on an unfunded loan,
  the same application twice in the file, or an observation older than the one stored (stale).
* **Writes**: one outcome per application; a newer (or equally new) observation replaces the stored
  one. Inserts, updates and ONE audit row (``outcomes_imported``) are one transaction: an error
  anywhere writes nothing. ``strict=True`` writes nothing when any row is rejected.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from backend.db.engine import Database
from backend.db.repo_audit import AuditRepository
from backend.db.tables import Outcome
from backend.ports import Clock

__all__ = ["COLUMNS", "ImportReport", "OutcomeFileError", "OutcomeService", "OutcomeView", "RejectedRow",
           "TEMPLATE"]

COLUMNS = ("application_id", "funded", "default_flag", "observation_date")
DEFAULT_ALIASES = ("default_flag", "defaulted")
TEMPLATE = ",".join(COLUMNS) + "\n" + "sim7-000123,true,false,2026-01-31\n"
CHUNK = 50_000  # ids per lookup statement
_PG_CHUNK = 20_000  # rows per INSERT ... SELECT FROM unnest(...)
_SQLITE_CACHE_KIB = -131_072  # 128 MiB page cache during an import (negative: KiB); restored afterwards
_UUID_RE = r"\{?[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{12}\}?"
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores DateTime on SQLite (naive UTC)
_PG_TIME = "%Y-%m-%d %H:%M:%S.%f+00:00"
_LOCK_ID = 7_734_003  # PostgreSQL advisory lock: one outcome import at a time
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")

# whole-file refusals (asserted by tests)
MISSING_COLUMNS = ("The file lacks the required column(s) {missing}. Expected columns: application_id, funded, "
                   "default_flag (or defaulted), observation_date.")
BOTH_DEFAULT_COLUMNS = "The file has both default_flag and defaulted columns; keep one."
UNREADABLE = "Cannot read {name} as {kind}: {detail}"
BAD_SUFFIX = "An outcome file must end in .csv or .parquet (got {name!r})."
NO_FILE = "No such file: {name}"

# row reasons (asserted by tests)
R_MISSING_ID = "missing application id"
R_UNKNOWN_ID = "unknown application id"
R_FUNDED_EMPTY = "funded is empty"
R_BAD_FUNDED = "funded must be true/false, 1/0 or yes/no"
R_BAD_DEFAULT = "default_flag must be true/false, 1/0, yes/no or empty"
R_DATE_EMPTY = "observation_date is empty"
R_BAD_DATE = "observation_date is not an ISO date or datetime"
R_FUTURE = "observation_date is in the future"
R_BEFORE_APP = "observation_date is before the application date"
R_DEFAULT_UNFUNDED = "default flagged on a loan that was not funded"
R_DUPLICATE = "the application appears more than once in this file"
R_STALE = "stale: a newer observation is already stored"


class OutcomeFileError(ValueError):
    """The whole file was refused (unreadable, or a required column is missing); nothing was written."""


class RejectedRow(NamedTuple):
    row: int  # as in the file: CSV counts the header as row 1; Parquet counts data rows from 1
    application_id: str  # as given
    reason: str


@dataclass
class ImportReport:
    batch_id: str
    source_name: str
    rows: int = 0
    valid: int = 0  # rows that passed validation (written unless strict mode refused the file)
    accepted: int = 0  # rows written
    inserted: int = 0
    updated: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)
    written: bool = False
    sha256: str | None = None

    def to_frame(self) -> pd.DataFrame:
        """The rejected rows (``row``, ``application_id``, ``reason``) for a CSV report."""
        return pd.DataFrame(self.rejected, columns=list(RejectedRow._fields))


@dataclass(frozen=True)
class OutcomeView:
    application_id: str
    funded: bool
    defaulted: bool | None
    observed_at: datetime
    batch_id: str


def read_outcome_file(path: Path) -> tuple[pd.DataFrame, int, str]:
    """The file as a frame, the file row number of its first data row, and the SHA-256 of its bytes."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise OutcomeFileError(BAD_SUFFIX.format(name=path.name))
    try:
        data = path.read_bytes()
    except OSError:
        raise OutcomeFileError(NO_FILE.format(name=path)) from None
    sha = hashlib.sha256(data).hexdigest()
    kind = "CSV" if suffix == ".csv" else "Parquet"
    try:
        if suffix == ".csv":
            # every cell as text (we parse it), blank lines kept so row numbers match the file
            df = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, skip_blank_lines=False,
                             encoding="utf-8-sig")
            first = 2
        else:
            df = pd.read_parquet(io.BytesIO(data))
            first = 1
    except Exception as exc:  # noqa: BLE001 - any parser failure refuses the file with its reason
        detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise OutcomeFileError(UNREADABLE.format(name=path.name, kind=kind, detail=detail)) from None
    return df, first, sha


def _columns(df: pd.DataFrame) -> dict[str, Any]:
    """Required column name -> the frame's column, or OutcomeFileError naming what is missing."""
    names = {str(c).strip().lower(): c for c in df.columns}
    if all(a in names for a in DEFAULT_ALIASES):
        raise OutcomeFileError(BOTH_DEFAULT_COLUMNS)
    missing = [c for c in ("application_id", "funded") if c not in names]
    if not any(a in names for a in DEFAULT_ALIASES):
        missing.append("default_flag (or defaulted)")
    if "observation_date" not in names:
        missing.append("observation_date")
    if missing:
        raise OutcomeFileError(MISSING_COLUMNS.format(missing=", ".join(missing)))
    default = next(a for a in DEFAULT_ALIASES if a in names)
    return {"application_id": names["application_id"], "funded": names["funded"], "default": names[default],
            "observation_date": names["observation_date"]}


def _text(col: pd.Series) -> pd.Series:
    """Cells as stripped text ("" when missing), object dtype."""
    if col.dtype != object or col.isna().any():
        col = col.astype(object).where(col.notna(), "")
    return col.astype(str).str.strip()


def _bools(col: pd.Series, txt: pd.Series) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """(values as nullable booleans, empty mask, bad mask)."""
    if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
        empty = col.isna().to_numpy()
        bad = ~empty & ~col.isin([0, 1]).to_numpy()
        return col.where(~bad & ~empty).astype("boolean"), empty, bad
    s = txt.str.lower()
    empty = (s == "").to_numpy()
    yes, no = s.isin(_TRUE).to_numpy(), s.isin(_FALSE).to_numpy()
    values = pd.Series(pd.array(yes, dtype="boolean"), index=col.index)
    values[~(yes | no)] = pd.NA
    return values, empty, ~empty & ~yes & ~no


def _dates(col: pd.Series, txt: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """(UTC timestamps, NaT when empty or bad; empty mask)."""
    if pd.api.types.is_datetime64_any_dtype(col):
        return pd.to_datetime(col, utc=True), col.isna().to_numpy()
    codes, uniques = pd.factorize(txt)  # files repeat few dates: parse each distinct value once
    parsed = pd.to_datetime(pd.Series(uniques, dtype=object), format="ISO8601", utc=True, errors="coerce")
    return pd.Series(parsed.array.take(codes), index=col.index), (txt == "").to_numpy()


_NAT = np.datetime64("NaT", "ns")


def _naive(values: Any) -> np.ndarray:
    """Times (database text in UTC, or timestamps) as naive UTC ``datetime64[ns]``."""
    t = pd.to_datetime(pd.Series(values, dtype=object), utc=True, format="ISO8601")
    return t.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")


def _aware(values: np.ndarray) -> pd.Series:
    return pd.Series(pd.DatetimeIndex(values.astype("datetime64[ns]")).tz_localize("UTC"))


def _uuid_hex(given: pd.Series) -> pd.Series:
    """32 lower-case hex digits for values written as a UUID, NaN otherwise."""
    ok = given.str.fullmatch(_UUID_RE)
    return given.where(ok).str.lower().str.replace(r"[{}-]", "", regex=True)


def _uuid4_hex(n: int) -> list[str]:
    """``n`` random (version 4) UUIDs as hex, without building ``uuid.UUID`` objects."""
    b = np.frombuffer(os.urandom(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    b[:, 6] = (b[:, 6] & 0x0F) | 0x40
    b[:, 8] = (b[:, 8] & 0x3F) | 0x80
    h = b.tobytes().hex()
    return [h[i:i + 32] for i in range(0, 32 * n, 32)]


def _fmt(ts: pd.Series, pattern: str) -> list[str]:
    """Timestamps as text (each distinct value formatted once)."""
    codes, uniques = pd.factorize(ts)
    return list(np.asarray(pd.DatetimeIndex(uniques).strftime(pattern), dtype=object)[codes])


def _chunks(items: list[Any]) -> Iterable[list[Any]]:
    for i in range(0, len(items), CHUNK):
        yield items[i:i + CHUNK]


def _take(index: pd.Index, values: np.ndarray, keys: Any, missing: Any) -> tuple[np.ndarray, np.ndarray]:
    """(values looked up by key, found mask): a vectorized dict lookup."""
    pos = index.get_indexer(keys)
    found = pos >= 0
    out = np.where(found, values.take(np.where(found, pos, 0)) if len(values) else missing, missing)
    return out, found


class _Reasons:
    """Every reason of every row; text that quotes values is built for the flagged rows only."""

    def __init__(self, n: int) -> None:
        self.text = np.full(n, "", dtype=object)

    def add(self, mask: Any, msg: str, detail: Callable[[np.ndarray], Any] | None = None) -> None:
        m = np.asarray(mask, dtype=bool)
        if not m.any():
            return
        add = np.full(int(m.sum()), msg, dtype=object)
        if detail is not None:
            add = add + np.asarray(detail(m), dtype=object)
        cur = self.text[m]
        self.text[m] = np.where(cur == "", add, cur + "; " + add)

    @property
    def ok(self) -> np.ndarray:
        return np.asarray(self.text == "", dtype=bool)


def _got(txt: pd.Series) -> Callable[[np.ndarray], Any]:
    return lambda m: " (got '" + txt[m].str.slice(0, 40) + "')"


def _queryable(given: pd.Series) -> np.ndarray:
    """Could be an external id: non-empty, fits the column, storable text (no NUL, no lone surrogate)."""
    ok = (given != "") & (given.str.len() <= 64) & ~given.str.contains("[\x00\ud800-\udfff]", regex=True)
    return ok.to_numpy(dtype=bool)


_SQL: dict[str, dict[str, str]] = {
    "sqlite": {
        "by_id": "SELECT id, applied_at FROM applications WHERE id IN (SELECT value FROM json_each(:ids))",
        "by_external": "SELECT external_id, id, applied_at FROM applications "
                       "WHERE external_id IN (SELECT value FROM json_each(:ids))",
        "existing": "SELECT application_id, id, observed_at FROM outcomes "
                    "WHERE application_id IN (SELECT value FROM json_each(:ids))",
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


class _Repo:
    """The SQL of an import (:data:`_SQL`): statements over list parameters (``json_each`` on SQLite,
    arrays on PostgreSQL) and bulk writes, so 150,000 rows do not spend their time in per-value type
    conversion. Ids travel as 32 hex digits, times as UTC text in each backend's own format."""

    def __init__(self, s: Session) -> None:
        self.s = s
        self.pg = s.get_bind().dialect.name == "postgresql"
        self.sql = _SQL["postgresql" if self.pg else "sqlite"]
        self.time_format = _PG_TIME if self.pg else _SQLITE_TIME

    def _select(self, name: str, ids: list[str], columns: list[str]) -> pd.DataFrame:
        rows: list[Any] = []
        for part in _chunks(ids):
            rows += self.s.execute(text(self.sql[name]), {"ids": part if self.pg else json.dumps(part)}).all()
        f = pd.DataFrame(rows, columns=columns)
        f[columns[-1]] = _naive(f[columns[-1]])
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

    def insert(self, rows: dict[str, list[Any]], now: str, batch: str) -> None:
        if not rows["id"]:
            return
        if self.pg:
            for i in range(0, len(rows["id"]), _PG_CHUNK):
                part = {k: v[i:i + _PG_CHUNK] for k, v in rows.items()}
                self.s.execute(text(self.sql["insert"]), {**part, "now": now, "batch": batch})
            return
        self.s.connection().exec_driver_sql(self.sql["insert"], [
            (i, a, f, d, o, now, batch) for i, a, f, d, o in
            zip(rows["id"], rows["app"], rows["funded"], rows["defaulted"], rows["observed"], strict=True)])

    def update(self, rows: dict[str, list[Any]], now: str, batch: str) -> None:
        if not rows["id"]:
            return
        if self.pg:
            for i in range(0, len(rows["id"]), _PG_CHUNK):
                part = {k: v[i:i + _PG_CHUNK] for k, v in rows.items() if k != "app"}
                self.s.execute(text(self.sql["update"]), {**part, "now": now, "batch": batch})
            return
        self.s.connection().exec_driver_sql(self.sql["update"], [
            (f, d, o, now, batch, i) for i, f, d, o in
            zip(rows["id"], rows["funded"], rows["defaulted"], rows["observed"], strict=True)])


class OutcomeService:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def import_file(self, path: Path | str, *, actor: str, role: str, strict: bool = False) -> ImportReport:
        """Import a ``.csv`` or ``.parquet`` file; raises :class:`OutcomeFileError` when it is refused."""
        df, first, sha = read_outcome_file(Path(path))
        return self._import(df, first_row=first, actor=actor, role=role, source_name=Path(path).name,
                            sha256=sha, strict=strict)

    def import_frame(self, df: pd.DataFrame, *, actor: str, role: str, source_name: str, strict: bool = False,
                     first_row: int = 2) -> ImportReport:
        """Import a frame. ``first_row`` is the row number reported for its first row (2: a CSV's
        first data row, after the header)."""
        return self._import(df, first_row=first_row, actor=actor, role=role, source_name=source_name,
                            sha256=None, strict=strict)

    def outcomes_for(self, application_ids: Iterable[str | uuid.UUID]) -> dict[str, OutcomeView]:
        """Stored outcomes by application id (ids that are not UUIDs or have no outcome are left out)."""
        ids: list[uuid.UUID] = []
        for v in application_ids:
            try:
                ids.append(v if isinstance(v, uuid.UUID) else uuid.UUID(str(v)))
            except ValueError:
                continue
        out: dict[str, OutcomeView] = {}
        with self.db.read() as s:
            for i in range(0, len(ids), 5000):
                for o in s.execute(select(Outcome).where(Outcome.application_id.in_(ids[i:i + 5000]))).scalars():
                    out[str(o.application_id)] = OutcomeView(str(o.application_id), bool(o.funded),
                                                             o.defaulted, o.observed_at, o.batch_id)
        return out

    # -- the import ------------------------------------------------------------------------------
    def _import(self, df: pd.DataFrame, *, first_row: int, actor: str, role: str, source_name: str,
                sha256: str | None, strict: bool) -> ImportReport:
        cols = _columns(df)
        now = self.clock.now()
        report = ImportReport(batch_id=f"outcomes-{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}",
                              source_name=source_name[:200], sha256=sha256)
        rows = np.arange(first_row, first_row + len(df), dtype=np.int64)
        raw = {k: df[c].reset_index(drop=True) for k, c in cols.items()}
        txt = {k: _text(v) for k, v in raw.items()}
        blank = np.logical_and.reduce([(t == "").to_numpy() for t in txt.values()])
        if blank.any():  # fully empty records (blank lines) are not data; row numbers still count them
            rows = rows[~blank]
            raw = {k: v[~blank].reset_index(drop=True) for k, v in raw.items()}
            txt = {k: v[~blank].reset_index(drop=True) for k, v in txt.items()}
        report.rows = n = len(rows)
        given = txt["application_id"]
        funded, f_empty, f_bad = _bools(raw["funded"], txt["funded"])
        default, _, d_bad = _bools(raw["default"], txt["default"])
        observed, o_empty = _dates(raw["observation_date"], txt["observation_date"])
        r = _Reasons(n)
        r.add(given == "", R_MISSING_ID)
        r.add(f_empty, R_FUNDED_EMPTY)
        r.add(f_bad, R_BAD_FUNDED, _got(txt["funded"]))
        r.add(d_bad, R_BAD_DEFAULT, _got(txt["default"]))
        r.add(o_empty, R_DATE_EMPTY)
        r.add(~o_empty & observed.isna().to_numpy(), R_BAD_DATE, _got(txt["observation_date"]))
        r.add((observed > pd.Timestamp(now)).to_numpy(), R_FUTURE)
        r.add((funded.eq(False) & default.eq(True)).fillna(False).to_numpy(dtype=bool), R_DEFAULT_UNFUNDED)
        with self.db.transaction() as s:
            repo = _Repo(s)
            cache = repo.prepare()
            try:
                app, applied = self._resolve(repo, given)
                r.add((given != "").to_numpy() & app.isna().to_numpy(), R_UNKNOWN_ID)
                r.add((observed.dt.normalize() < applied.dt.normalize()).to_numpy(), R_BEFORE_APP,
                      lambda m: " (" + applied[m].dt.strftime("%Y-%m-%d") + ")")
                self._duplicates(r, app, rows)
                stored = repo.existing(list(app[r.ok]))
                stored_id, has = _take(stored.index, stored["id"].to_numpy(), app, None)
                stored_at = _aware(_take(stored.index, stored["observed"].to_numpy(), app, _NAT)[0])
                r.add(r.ok & (stored_at > observed).to_numpy(), R_STALE,
                      lambda m: " (stored: " + stored_at[m].dt.strftime("%Y-%m-%dT%H:%M:%SZ") + ")")
                ok = r.ok
                report.rejected = [RejectedRow(int(rows[i]), str(given.iat[i])[:200], str(r.text[i]))
                                   for i in np.flatnonzero(~ok)]
                report.valid = int(ok.sum())
                if strict and report.rejected:
                    return report
                stamp = now.astimezone(UTC).strftime(repo.time_format)
                new, upd = ok & ~has, ok & has
                repo.insert(self._values(repo, new, _uuid4_hex(int(new.sum())), app, funded, default, observed),
                            stamp, report.batch_id)
                repo.update(self._values(repo, upd, list(stored_id[upd]), app, funded, default, observed),
                            stamp, report.batch_id)
                report.inserted, report.updated = int(new.sum()), int(upd.sum())
            finally:
                repo.restore(cache)
            report.accepted = report.inserted + report.updated
            AuditRepository(s).append(
                actor=actor, role=role, action="outcomes_imported", entity_type="outcome_import",
                entity_id=report.batch_id, at=now,
                payload={"file": report.source_name, "sha256": sha256, "batch_id": report.batch_id,
                         "rows": report.rows, "accepted": report.accepted, "inserted": report.inserted,
                         "updated": report.updated, "rejected": len(report.rejected), "strict": strict})
            report.written = True
        return report

    @staticmethod
    def _resolve(repo: _Repo, given: pd.Series) -> tuple[pd.Series, pd.Series]:
        """(application hex id or None, applied_at or NaT) per row: by our id first, else by external id."""
        hex_ids = _uuid_hex(given)
        by_id = repo.by_id(list(hex_ids.dropna().unique()))
        applied, found = _take(by_id.index, by_id["applied"].to_numpy(), hex_ids, _NAT)
        app = hex_ids.to_numpy(dtype=object, copy=True)
        app[~found] = None
        todo = ~found & _queryable(given)
        if todo.any():
            by_ext = repo.by_external(list(given[todo].unique()))
            ext_app, _ = _take(by_ext.index, by_ext["app"].to_numpy(), given[todo], None)
            ext_applied, _ = _take(by_ext.index, by_ext["applied"].to_numpy(), given[todo], _NAT)
            app[todo] = ext_app
            applied[todo] = ext_applied
        return pd.Series(app, dtype=object), _aware(applied)

    @staticmethod
    def _duplicates(r: _Reasons, app: pd.Series, rows: np.ndarray) -> None:
        dup = (app.notna() & app.duplicated(keep=False)).to_numpy()
        if not dup.any():
            return
        listed = pd.Series(rows[dup]).groupby(app[dup].to_numpy()).agg(
            lambda x: ", ".join(str(v) for v in x.iloc[:5]) + (", …" if len(x) > 5 else ""))
        r.add(dup, R_DUPLICATE, lambda m: " (rows " + app[m].map(listed) + ")")

    @staticmethod
    def _values(repo: _Repo, mask: np.ndarray, ids: list[Any], app: pd.Series, funded: pd.Series,
                default: pd.Series, observed: pd.Series) -> dict[str, list[Any]]:
        """Column lists of the rows in ``mask`` for :meth:`_Repo.insert` / :meth:`_Repo.update`."""
        d = default[mask]
        return {"id": ids, "app": list(app[mask]), "funded": funded[mask].to_numpy(dtype=bool).tolist(),
                "defaulted": d.astype(object).where(d.notna(), None).tolist(),
                "observed": _fmt(observed[mask].dt.floor("us"), repo.time_format)}
