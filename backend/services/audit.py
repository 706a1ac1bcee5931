"""Audit trail queries, safe CSV export, retention and archives, chain verification.

Appends happen inside each use case's transaction; this service only reads, except for the two
events it records itself (``audit_exported``, ``audit_archived``).

The table is append-only (database triggers refuse UPDATE and DELETE, even for the owner), so
retention is: report what is past the retention period, write those rows to a self-verifying
JSON Lines archive, and leave the deletion to a DBA (see the README). The archive's anchor (the
``row_hash`` of its last row, which is the ``prev_hash`` of the first kept row) is recorded in the
``audit_archived`` row, so :meth:`AuditService.verify` still passes once the archived rows are gone.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from backend.csvsafe import safe_csv_text
from backend.db.engine import Database
from backend.db.repo_audit import (
    GENESIS,
    AuditFilter,
    AuditRepository,
    ChainReport,
    canonical_json,
    row_hash,
    sha256,
)
from backend.db.tables import AuditLog

EXPORT_COLUMNS = ("seq", "id", "at", "actor", "role", "action", "entity_type", "entity_id", "payload",
                  "payload_hash", "prev_hash", "row_hash")
#: The console builds an export in memory; beyond this many rows it asks for narrower filters.
EXPORT_MAX_ROWS = 100_000
EXPORT_TOO_LARGE = "{rows:,} rows match; an export holds at most {limit:,}. Narrow the filters (e.g. the date range)."
EXPORTED, ARCHIVED = "audit_exported", "audit_archived"

ARCHIVE_FORMAT, ARCHIVE_VERSION = "creditrisk-audit-archive", 1
ARCHIVE_EXISTS = "{path} already exists; an archive is never overwritten"
NOTHING_TO_ARCHIVE = "no audit rows are past the retention period ({days} days, cutoff {cutoff})"


class ExportTooLarge(ValueError):
    pass


class ArchiveError(ValueError):
    pass


def row_dict(r: AuditLog) -> dict[str, Any]:
    """One row with every field needed to recompute its hashes (``at`` exactly as hashed)."""
    return {"seq": r.seq, "id": str(r.id), "at": r.at.isoformat(timespec="microseconds"), "actor": r.actor,
            "role": r.role, "action": r.action, "entity_type": r.entity_type, "entity_id": r.entity_id,
            "payload": r.payload, "payload_hash": r.payload_hash, "prev_hash": r.prev_hash, "row_hash": r.row_hash}


@dataclass(frozen=True)
class AuditPage:
    rows: list[dict[str, Any]]  # newest first
    total: int  # rows matching the filters
    offset: int


@dataclass(frozen=True)
class AuditExport:
    filters: AuditFilter  # through_seq is always set: the export is exactly these rows
    rows: int
    data: bytes
    sha256: str

    @property
    def file_name(self) -> str:
        return f"audit_through_{self.filters.through_seq}_{self.sha256[:12]}.csv"


@dataclass(frozen=True)
class RetentionReport:
    retention_days: int
    now: datetime
    cutoff: datetime  # rows written before this are past retention
    total_rows: int
    oldest_seq: int | None
    oldest_at: datetime | None
    past_retention: int  # the prefix of the chain written before the cutoff (what an archive takes)
    older_than_cutoff: int  # all rows written before the cutoff (differs only if clocks went backwards)
    first_kept_seq: int | None


@dataclass(frozen=True)
class ArchiveCheck:
    ok: bool
    rows: int
    header: dict[str, Any] = field(default_factory=dict)
    first_broken_line: int | None = None
    detail: str = ""


@dataclass(frozen=True)
class ArchiveResult:
    path: Path
    rows: int
    first_seq: int
    last_seq: int
    anchor: str
    sha256: str
    check: ArchiveCheck


class AuditService:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, *, actor: str, role: str, action: str, entity_type: str, entity_id: str,
               payload: dict[str, Any] | None = None) -> None:
        """A standalone audited event (one transaction holding only the audit row)."""
        with self.db.transaction() as s:
            AuditRepository(s).append(actor=actor, role=role, action=action, entity_type=entity_type,
                                      entity_id=entity_id, payload=payload)

    # -- chain ------------------------------------------------------------------------------------
    def verify(self, extra_anchors: tuple[str, ...] = ()) -> ChainReport:
        """Recompute the chain. It may start at the anchor of an archive (recorded or given)."""
        with self.db.read() as s:
            repo = AuditRepository(s)
            recorded = [r.payload.get("anchor") for r in repo.search(AuditFilter(action=ARCHIVED), limit=10_000)]
            return repo.verify({a for a in (*recorded, *extra_anchors) if isinstance(a, str)})

    # -- queries ----------------------------------------------------------------------------------
    def recent(self, limit: int = 50, **filters: str | None) -> list[dict[str, Any]]:
        with self.db.read() as s:
            return [{"seq": r.seq, "at": r.at, "actor": r.actor, "role": r.role, "action": r.action,
                     "entity_type": r.entity_type, "entity_id": r.entity_id, "payload": r.payload}
                    for r in AuditRepository(s).recent(limit, **filters)]

    def count(self) -> int:
        with self.db.read() as s:
            return AuditRepository(s).count()

    def search(self, f: AuditFilter, *, limit: int = 100, offset: int = 0) -> AuditPage:
        """One page of matching rows (newest first) and how many match in all."""
        with self.db.read() as s:
            repo = AuditRepository(s)
            total = repo.count_matching(f)
            rows = [row_dict(r) for r in repo.search(f, limit=limit, offset=offset)] if total else []
            return AuditPage(rows, total, offset)

    def count_matching(self, f: AuditFilter) -> int:
        with self.db.read() as s:
            return AuditRepository(s).count_matching(f)

    def choices(self) -> dict[str, list[str]]:
        """Actions, actors and entity types present (each read from its index)."""
        with self.db.read() as s:
            repo = AuditRepository(s)
            return {c: repo.distinct(c) for c in ("action", "actor", "entity_type")}

    # -- export -----------------------------------------------------------------------------------
    def export_csv(self, f: AuditFilter, *, max_rows: int = EXPORT_MAX_ROWS) -> AuditExport:
        """Every matching row (oldest first) as formula-safe CSV; pinned to the current head."""
        with self.db.read() as s:
            repo = AuditRepository(s)
            if f.through_seq is None:
                f = replace(f, through_seq=repo.head_seq())
            total = repo.count_matching(f)
            if total > max_rows:
                raise ExportTooLarge(EXPORT_TOO_LARGE.format(rows=total, limit=max_rows))
            rows = [{**row_dict(r), "payload": canonical_json(r.payload)} for r in repo.iter_matching(f)]
        data = safe_csv_text(rows, EXPORT_COLUMNS).encode("utf-8", "surrogatepass")
        return AuditExport(f, len(rows), data, hashlib.sha256(data).hexdigest())

    def record_export(self, export: AuditExport, *, actor: str, role: str) -> None:
        """The audit row for one download of ``export`` (the filters, row count and file hash)."""
        self.record(actor=actor, role=role, action=EXPORTED, entity_type="audit_export", entity_id=export.sha256,
                    payload={"filters": export.filters.describe(), "rows": export.rows,
                             "file_name": export.file_name, "sha256": export.sha256})

    # -- retention --------------------------------------------------------------------------------
    def retention(self, retention_days: int, now: datetime) -> RetentionReport:
        cutoff = now - timedelta(days=retention_days)
        with self.db.read() as s:
            repo = AuditRepository(s)
            first = repo.first()
            kept = repo.first_kept_seq(cutoff)
            return RetentionReport(
                retention_days=retention_days, now=now, cutoff=cutoff, total_rows=repo.count(),
                oldest_seq=first.seq if first else None, oldest_at=first.at if first else None,
                past_retention=repo.count_before_seq(kept) if first else 0,
                older_than_cutoff=repo.count_older_than(cutoff), first_kept_seq=kept)

    def archive(self, out: Path, *, retention_days: int, now: datetime, actor: str, role: str) -> ArchiveResult:
        """Write the rows past retention to ``out`` (JSON Lines), verify the file, record the event.

        The file is written beside ``out`` and renamed into place only after it verifies. Nothing
        is deleted: the table refuses DELETE by design.
        """
        if out.exists():
            raise ArchiveError(ARCHIVE_EXISTS.format(path=out))
        report = self.retention(retention_days, now)
        if report.past_retention == 0:
            raise ArchiveError(NOTHING_TO_ARCHIVE.format(days=retention_days, cutoff=report.cutoff.isoformat()))
        tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
        with self.db.read() as s:
            repo = AuditRepository(s)
            before = report.first_kept_seq if report.first_kept_seq is not None else repo.head_seq() + 1
            first = repo.first()
            last = repo.search(AuditFilter(through_seq=before - 1), limit=1)[0]
            assert first is not None
            header: dict[str, Any] = {"format": ARCHIVE_FORMAT, "version": ARCHIVE_VERSION, "created_at": now.isoformat(),
                      "retention_days": retention_days, "cutoff": report.cutoff.isoformat(),
                      "rows": report.past_retention, "first_seq": first.seq, "last_seq": last.seq,
                      "start_prev_hash": first.prev_hash, "anchor": last.row_hash}
            out.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(json.dumps(header, sort_keys=True) + "\n")
                for r in repo.iter_chain(before_seq=before):
                    fh.write(json.dumps(row_dict(r), sort_keys=True) + "\n")
        check = verify_archive(tmp)
        if not check.ok:
            tmp.unlink(missing_ok=True)
            raise ArchiveError(f"the archive did not verify (line {check.first_broken_line}: {check.detail}); "
                               "nothing was written")
        os.replace(tmp, out)
        digest = hashlib.sha256(out.read_bytes()).hexdigest()
        self.record(actor=actor, role=role, action=ARCHIVED, entity_type="audit_archive", entity_id=digest,
                    payload={"file_name": out.name, "sha256": digest, "rows": check.rows,
                             **{k: header[k] for k in ("first_seq", "last_seq", "start_prev_hash", "anchor",
                                                       "cutoff", "retention_days")}})
        return ArchiveResult(out, check.rows, first.seq, last.seq, last.row_hash, digest, check)


def verify_archive(path: Path) -> ArchiveCheck:
    """Recompute every row's hashes and links in an archive and compare with its header."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        return ArchiveCheck(False, 0, first_broken_line=None, detail=f"cannot read the archive: {exc}")
    try:
        header = json.loads(lines[0]) if lines else {}
    except json.JSONDecodeError:
        header = {}
    if not isinstance(header, dict) or header.get("format") != ARCHIVE_FORMAT or header.get("version") != ARCHIVE_VERSION:
        return ArchiveCheck(False, 0, first_broken_line=1, detail=f"line 1 is not a {ARCHIVE_FORMAT} v{ARCHIVE_VERSION} header")
    prev, n, last_seq, first_seq = header.get("start_prev_hash", GENESIS), 0, None, None
    for lineno, line in enumerate(lines[1:], start=2):
        problem, r = _row_problem(line, prev, last_seq)
        if problem:
            return ArchiveCheck(False, n, header, lineno, problem)
        n += 1
        prev, last_seq = r["row_hash"], r["seq"]
        first_seq = r["seq"] if first_seq is None else first_seq
    end = len(lines) + 1
    if n != header.get("rows"):
        return ArchiveCheck(False, n, header, end, f"the header says {header.get('rows')} rows, the file holds {n}")
    if prev != header.get("anchor") or (first_seq, last_seq) != (header.get("first_seq"), header.get("last_seq")):
        return ArchiveCheck(False, n, header, end, "the last row does not match the header's anchor and seq range")
    return ArchiveCheck(True, n, header)


def _row_problem(line: str, prev: str, last_seq: int | None) -> tuple[str, dict[str, Any]]:
    """What is wrong with one archived row given the previous one ("" when nothing is)."""
    try:
        r = json.loads(line)
        at = datetime.fromisoformat(r["at"])
        expect = row_hash(r["prev_hash"], uuid.UUID(r["id"]), at, r["actor"], r["role"], r["action"],
                          r["entity_type"], r["entity_id"], r["payload_hash"])
        seq_ok = last_seq is None or int(r["seq"]) > last_seq
        payload_ok = sha256(canonical_json(r["payload"])) == r["payload_hash"]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return f"not a valid audit row ({type(exc).__name__})", {}
    if not seq_ok:
        return "seq does not increase (rows reordered)", r
    if r["prev_hash"] != prev:
        return "prev_hash does not match the previous row (row removed, added or reordered)", r
    if not payload_ok:
        return "payload changed after it was written", r
    if expect != r["row_hash"] or r["at"] != at.isoformat(timespec="microseconds"):
        return "row fields changed after they were written", r
    return "", r
