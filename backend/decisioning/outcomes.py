"""Loan outcomes from the loan system: funded or not, defaulted or not, as observed on a date.

* **The file** and its row checks: :mod:`backend.decisioning.outcomes_file`; its SQL:
  :mod:`backend.decisioning.outcomes_queries`.
* **Rows** are validated together (vectorized); a rejected row gets every reason that applies:
  missing or unknown application id, bad boolean, empty or bad date, a date in the future (by the
  service clock), an observation dated before the application's day, a default on an unfunded loan,
  the same application twice in the file, or an observation older than the one stored (stale).
* **Writes**: one outcome per application; a newer (or equally new) observation replaces the stored
  one. Inserts, updates and ONE audit row (``outcomes_imported``) are one transaction: an error
  anywhere writes nothing. ``strict=True`` writes nothing when any row is rejected.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from backend.compliance import AuditRepository
from backend.decisioning.outcomes_file import (
    NAT,
    R_BAD_DATE,
    R_BAD_DEFAULT,
    R_BAD_FUNDED,
    R_BEFORE_APP,
    R_DATE_EMPTY,
    R_DEFAULT_UNFUNDED,
    R_DUPLICATE,
    R_FUNDED_EMPTY,
    R_FUTURE,
    R_MISSING_ID,
    R_STALE,
    R_UNKNOWN_ID,
    Reasons,
    RejectedRow,
    as_utc,
    cell_text,
    columns,
    got,
    lookup,
    new_uuid_hex,
    parse_bools,
    parse_dates,
    queryable,
    read_outcome_file,
    uuid_hex,
)
from backend.decisioning.outcomes_queries import OutcomeImportRepository, OutcomeRepository
from backend.platform.db.engine import Database
from backend.platform.ports import Clock

__all__ = ["ImportReport", "OutcomeService", "OutcomeView"]


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
            for o in OutcomeRepository(s).for_applications(ids):
                out[str(o.application_id)] = OutcomeView(str(o.application_id), bool(o.funded),
                                                         o.defaulted, o.observed_at, o.batch_id)
        return out

    # -- the import ------------------------------------------------------------------------------
    def _import(self, df: pd.DataFrame, *, first_row: int, actor: str, role: str, source_name: str,
                sha256: str | None, strict: bool) -> ImportReport:
        cols = columns(df)
        now = self.clock.now()
        report = ImportReport(batch_id=f"outcomes-{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}",
                              source_name=source_name[:200], sha256=sha256)
        rows = np.arange(first_row, first_row + len(df), dtype=np.int64)
        raw = {k: df[c].reset_index(drop=True) for k, c in cols.items()}
        txt = {k: cell_text(v) for k, v in raw.items()}
        blank = np.logical_and.reduce([(t == "").to_numpy() for t in txt.values()])
        if blank.any():  # fully empty records (blank lines) are not data; row numbers still count them
            rows = rows[~blank]
            raw = {k: v[~blank].reset_index(drop=True) for k, v in raw.items()}
            txt = {k: v[~blank].reset_index(drop=True) for k, v in txt.items()}
        report.rows = n = len(rows)
        given = txt["application_id"]
        funded, f_empty, f_bad = parse_bools(raw["funded"], txt["funded"])
        default, _, d_bad = parse_bools(raw["default"], txt["default"])
        observed, o_empty = parse_dates(raw["observation_date"], txt["observation_date"])
        r = Reasons(n)
        r.add(given == "", R_MISSING_ID)
        r.add(f_empty, R_FUNDED_EMPTY)
        r.add(f_bad, R_BAD_FUNDED, got(txt["funded"]))
        r.add(d_bad, R_BAD_DEFAULT, got(txt["default"]))
        r.add(o_empty, R_DATE_EMPTY)
        r.add(~o_empty & observed.isna().to_numpy(), R_BAD_DATE, got(txt["observation_date"]))
        r.add((observed > pd.Timestamp(now)).to_numpy(), R_FUTURE)
        r.add((funded.eq(False) & default.eq(True)).fillna(False).to_numpy(dtype=bool), R_DEFAULT_UNFUNDED)
        with self.db.transaction() as s:
            repo = OutcomeImportRepository(s)
            cache = repo.prepare()
            try:
                app, applied = self._resolve(repo, given)
                r.add((given != "").to_numpy() & app.isna().to_numpy(), R_UNKNOWN_ID)
                r.add((observed.dt.normalize() < applied.dt.normalize()).to_numpy(), R_BEFORE_APP,
                      lambda m: " (" + applied[m].dt.strftime("%Y-%m-%d") + ")")
                self._duplicates(r, app, rows)
                stored = repo.existing(list(app[r.ok]))
                stored_id, has = lookup(stored.index, stored["id"].to_numpy(), app, None)
                stored_at = as_utc(lookup(stored.index, stored["observed"].to_numpy(), app, NAT)[0])
                r.add(r.ok & (stored_at > observed).to_numpy(), R_STALE,
                      lambda m: " (stored: " + stored_at[m].dt.strftime("%Y-%m-%dT%H:%M:%SZ") + ")")
                ok = r.ok
                report.rejected = [RejectedRow(int(rows[i]), str(given.iat[i])[:200], str(r.text[i]))
                                   for i in np.flatnonzero(~ok)]
                report.valid = int(ok.sum())
                if strict and report.rejected:
                    return report
                stamp = repo.stamp(now)
                new, upd = ok & ~has, ok & has
                repo.insert(repo.values(new, new_uuid_hex(int(new.sum())), app, funded, default, observed),
                            stamp, report.batch_id)
                repo.update(repo.values(upd, list(stored_id[upd]), app, funded, default, observed),
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
    def _resolve(repo: OutcomeImportRepository, given: pd.Series) -> tuple[pd.Series, pd.Series]:
        """(application hex id or None, applied_at or NaT) per row: by our id first, else by external id."""
        hex_ids = uuid_hex(given)
        by_id = repo.by_id(list(hex_ids.dropna().unique()))
        applied, found = lookup(by_id.index, by_id["applied"].to_numpy(), hex_ids, NAT)
        app = hex_ids.to_numpy(dtype=object, copy=True)
        app[~found] = None
        todo = ~found & queryable(given)
        if todo.any():
            by_ext = repo.by_external(list(given[todo].unique()))
            ext_app, _ = lookup(by_ext.index, by_ext["app"].to_numpy(), given[todo], None)
            ext_applied, _ = lookup(by_ext.index, by_ext["applied"].to_numpy(), given[todo], NAT)
            app[todo] = ext_app
            applied[todo] = ext_applied
        return pd.Series(app, dtype=object), as_utc(applied)

    @staticmethod
    def _duplicates(r: Reasons, app: pd.Series, rows: np.ndarray) -> None:
        dup = (app.notna() & app.duplicated(keep=False)).to_numpy()
        if not dup.any():
            return
        listed = pd.Series(rows[dup]).groupby(app[dup].to_numpy()).agg(
            lambda x: ", ".join(str(v) for v in x.iloc[:5]) + (", …" if len(x) > 5 else ""))
        r.add(dup, R_DUPLICATE, lambda m: " (rows " + app[m].map(listed) + ")")
