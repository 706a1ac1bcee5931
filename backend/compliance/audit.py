"""Audit trail queries, safe CSV export, retention and archives, sealing and verification.

Appends happen inside each use case's transaction; this service reads, seals (through the
:class:`~backend.compliance.audit_sequencer.Sequencer`, inline after each write on the embedded
default), and records two events itself (``audit_exported``, ``audit_archived``).

The table is append-only (database triggers refuse UPDATE and DELETE, even for the owner), so
retention is: report what is past the retention period, write those rows (whole sealed batches) to
a self-verifying JSON Lines archive, sign an *archive checkpoint* outside the database, and leave
the deletion to a DBA (see the README). :meth:`AuditService.verify` accepts missing rows only where
a signed archive checkpoint covers them: an ``audit_archived`` row alone proves nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backend.compliance import audit_chain_queries as chain_q
from backend.compliance.audit_archive import (
    ARCHIVE_FORMAT,
    ARCHIVE_VERSION,
    ArchiveCheck,
    batch_dict,
    verify_archive,
)
from backend.compliance.audit_payload import loads
from backend.compliance.audit_queries import (
    GENESIS,
    AuditFilter,
    AuditRepository,
    ChainReport,
    canonical_json,
    register_inline,
)
from backend.compliance.audit_seal import (
    ChainKeys,
    ChainSettings,
    CheckpointLog,
    Checkpoints,
    checkpoint_dir,
    load_chain_keys,
)
from backend.compliance.audit_sequencer import Sequencer
from backend.compliance.audit_verify import Progress, verify_rows
from backend.domain import safe_csv_text
from backend.platform.db.engine import Database

if TYPE_CHECKING:
    from backend.platform.db.tables_governance import AuditLog

EXPORT_COLUMNS = ("seq", "id", "at", "actor", "role", "action", "entity_type", "entity_id", "payload",
                  "payload_hash", "prev_hash", "row_hash")
#: The console builds an export in memory; beyond this many rows it asks for narrower filters.
EXPORT_MAX_ROWS = 100_000
EXPORT_TOO_LARGE = "{rows:,} rows match; an export holds at most {limit:,}. Narrow the filters (e.g. the date range)."
EXPORTED, ARCHIVED = "audit_exported", "audit_archived"

ARCHIVE_EXISTS = "{path} already exists; an archive is never overwritten"
NOTHING_TO_ARCHIVE = ("no sealed batch of audit rows is wholly past the retention period ({days} days, "
                      "cutoff {cutoff})")


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
class ArchiveResult:
    path: Path
    rows: int
    first_seq: int
    last_seq: int
    anchor: str
    sha256: str
    check: ArchiveCheck


class AuditService:
    """``settings``: where the chain's keys and checkpoints live. Without them (a restored copy in a
    backup drill) verification checks rows and links but neither MACs nor checkpoints, and nothing
    is sealed."""

    def __init__(self, db: Database, settings: ChainSettings | None = None) -> None:
        self.db = db
        self.settings = settings
        self._sequencer: Sequencer | None = None
        if settings is not None and settings.audit.inline_sequencing:
            register_inline(db.engine, self._seal_inline)

    @property
    def keys(self) -> ChainKeys | None:
        return self.sequencer.keys if self.settings is not None else None

    @property
    def sequencer(self) -> Sequencer:
        if self._sequencer is None:
            if self.settings is None:
                raise RuntimeError("sealing needs the settings that hold the audit chain keys")
            a, keys = self.settings.audit, load_chain_keys(self.settings)
            self._sequencer = Sequencer(self.db, keys, CheckpointLog(checkpoint_dir(self.settings), keys),
                                        batch_max=a.batch_max, wait_s=a.sequencer_wait_s,
                                        checkpoint_every_s=a.checkpoint_every_s)
        return self._sequencer

    def _seal_inline(self) -> None:
        # SQLite has no writer in flight once this one committed; PostgreSQL waits a moment at most
        self.sequencer.seal(wait_s=0.0 if self.db.dialect == "sqlite" else 0.05)

    def seal(self) -> int:
        """Seal every committed row above the last batch (the ``creditrisk audit sequence --once`` step)."""
        return self.sequencer.seal()

    def checkpoint(self) -> dict[str, Any]:
        return self.sequencer.checkpoint()

    def record(self, *, actor: str, role: str, action: str, entity_type: str, entity_id: str,
               payload: dict[str, Any] | None = None) -> None:
        """A standalone audited event (one transaction holding only the audit row)."""
        with self.db.transaction() as s:
            AuditRepository(s).append(actor=actor, role=role, action=action, entity_type=entity_type,
                                      entity_id=entity_id, payload=payload)

    # -- chain ------------------------------------------------------------------------------------
    def verify(self, extra_anchors: tuple[str, ...] = (), *, progress: Progress | None = None) -> ChainReport:
        """Check every row, batch and the newest signed checkpoint (see :mod:`.audit_verify`).

        Rows written before revision 0009 may start at an archive's anchor (recorded or given)."""
        keys = self.keys
        cps = self.sequencer.checkpoints.read() if keys is not None else Checkpoints(None, [], [])
        signed = {int(a["archive_seq"]) for a in cps.archives if isinstance(a.get("archive_seq"), int)}
        with self.db.read() as s:
            recorded = chain_q.archived_anchors(s, ARCHIVED)
            batches, total = chain_q.batches(s), chain_q.count_rows(s)
            anchors = {p.get("anchor") for _, p in recorded if isinstance(p, dict)}
            unsigned = [seq for seq, _ in recorded if seq not in signed]
            return verify_rows(chain_q.iter_rows(s), batches, keys.mac_key if keys else None, cps, total=total,
                               anchors={a for a in (*anchors, *extra_anchors) if isinstance(a, str)},
                               unsigned_archives=unsigned, progress=progress)

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
        """Write the sealed batches wholly past retention to ``out`` (JSON Lines), verify the file, record
        the event and sign an archive checkpoint outside the database (what lets the rows go).

        The file is written beside ``out`` and renamed into place only after it verifies. Nothing
        is deleted: the table refuses DELETE by design."""
        if out.exists():
            raise ArchiveError(ARCHIVE_EXISTS.format(path=out))
        seq_ = self.sequencer
        seq_.seal()
        report = self.retention(retention_days, now)
        done = max((int(a["through_seq"]) for a in seq_.checkpoints.read().archives
                    if isinstance(a.get("through_seq"), int)), default=0)
        with self.db.read() as s:
            kept = report.first_kept_seq if report.first_kept_seq is not None else AuditRepository(s).head_seq() + 1
            chosen = [b for b in chain_q.batches(s) if b[1] > done and b[2] < kept]
            if not chosen:
                raise ArchiveError(NOTHING_TO_ARCHIVE.format(days=retention_days, cutoff=report.cutoff.isoformat()))
            first, last = chosen[0][1], chosen[-1][2]
            rows = [t for t in chain_q.iter_rows(s, through=last) if t[0] >= first]
        legacy = next((t[10] for t in rows if t[10]), GENESIS)
        header: dict[str, Any] = {
            "format": ARCHIVE_FORMAT, "version": ARCHIVE_VERSION, "created_at": now.isoformat(),
            "retention_days": retention_days, "cutoff": report.cutoff.isoformat(), "rows": len(rows),
            "first_seq": first, "last_seq": last, "first_batch": chosen[0][0], "through_batch": chosen[-1][0],
            "start_prev_mac": chosen[0][7], "anchor": chosen[-1][8], "legacy_start_prev_hash": legacy,
            "batches": [batch_dict(b) for b in chosen]}
        tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(header, sort_keys=True) + "\n")
            for t in rows:
                fh.write(json.dumps(tuple_dict(t), sort_keys=True) + "\n")
        check = verify_archive(tmp, seq_.keys.mac_key)
        if not check.ok:
            tmp.unlink(missing_ok=True)
            raise ArchiveError(f"the archive did not verify (line {check.first_broken_line}: {check.detail}); "
                               "nothing was written")
        os.replace(tmp, out)
        digest = hashlib.sha256(out.read_bytes()).hexdigest()
        facts = {k: header[k] for k in ("first_seq", "last_seq", "through_batch", "anchor", "cutoff", "retention_days")}
        with self.db.transaction() as s:
            row = AuditRepository(s).append(actor=actor, role=role, action=ARCHIVED, entity_type="audit_archive",
                                            entity_id=digest, payload={"file_name": out.name, "sha256": digest,
                                                                       "rows": check.rows, **facts})
            archive_seq = row.seq
        seq_.checkpoint("archive", through_seq=last, archive_seq=archive_seq, sha256=digest, file_name=out.name,
                        **{k: facts[k] for k in ("through_batch", "anchor")})
        return ArchiveResult(out, check.rows, first, last, chosen[-1][8], digest, check)


def tuple_dict(t: tuple[Any, ...]) -> dict[str, Any]:
    """One row (a plain tuple in ``ROW_COLUMNS`` order) with every field needed to recompute its hashes."""
    return {"seq": t[0], "id": str(t[1]), "at": t[2].isoformat(timespec="microseconds"), "actor": t[3],
            "role": t[4], "action": t[5], "entity_type": t[6], "entity_id": t[7], "payload": loads(t[8]),
            "payload_hash": t[9], "prev_hash": t[10], "row_hash": t[11]}
