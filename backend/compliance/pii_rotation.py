"""Key rotation and encryption of existing rows: ``creditrisk pii status|rotate|encrypt-existing``.

* :meth:`PiiRotation.status`: rows per key id, plaintext rows (written before migration 0007),
  rows under keys missing from the ring, and how many are not yet under the active key.
* :meth:`PiiRotation.rotate`: re-encrypts every row not under the active key (plaintext rows
  included; ``plaintext_only`` for ``encrypt-existing``) in batches. Each batch is one transaction
  with one audit row (``pii_reencrypted``: how many rows, from which keys, to which key; never a
  value), so a run stopped halfway loses nothing and the next run carries on from where it stopped.
  Rows under a key the ring does not hold are refused up front (nothing changes).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from backend.compliance.audit_queries import AuditRepository
from backend.compliance.pii import APPLICANT_FIELD, DETAILS_FIELD, mask_identifier
from backend.compliance.pii_keys import PiiKeyRing, token_kid
from backend.compliance.pii_queries import PiiRepository
from backend.compliance.pii_reveal import UNREADABLE, PiiUnreadable
from backend.platform.db.engine import Database
from backend.platform.ports import Clock

FOREIGN_KEYS = ("{n} value(s) are encrypted under key(s) {kids} that are not in the ring: add the key(s) to "
                "CREDITRISK_PII__KEYS (or the key file) and run again; nothing was changed.")
PLAINTEXT = "plaintext"


@dataclass(frozen=True)
class PiiStatus:
    active: str
    ring: tuple[str, ...]
    total: int
    plaintext: int  # applicant ids still in clear (pre-0007 rows)
    with_details: int  # rows holding encrypted direct PII
    by_key: dict[str, dict[str, int]]  # kid -> {"applicant_id": n, "pii": n}
    foreign: dict[str, int]  # kid not in the ring -> values under it
    pending: int  # rows `rotate` would re-encrypt

    @property
    def ok(self) -> bool:
        return self.pending == 0 and not self.foreign


@dataclass
class RotationReport:
    active: str
    batches: int = 0
    rows: int = 0
    sources: dict[str, int] = field(default_factory=dict)  # "plaintext" or the old kid -> rows
    remaining: int = 0


class PiiRotation:
    def __init__(self, db: Database, clock: Clock, ring: PiiKeyRing) -> None:
        self.db = db
        self.clock = clock
        self.ring = ring

    def status(self) -> PiiStatus:
        with self.db.read() as s:
            repo = PiiRepository(s)
            c = repo.counts(self.ring.kids)
            foreign = repo.foreign_kids(self.ring.kids)
            pending = repo.count_pending(self.ring.active)
        by_key = {kid: {"applicant_id": c[f"id:{kid}"], "pii": c[f"pii:{kid}"]} for kid in self.ring.kids}
        return PiiStatus(self.ring.active, self.ring.kids, c["total"], c["plaintext"], c["with_pii"], by_key,
                         foreign, pending)

    def rotate(self, *, batch_size: int = 500, plaintext_only: bool = False, max_batches: int | None = None,
               actor: str = "cli", role: str = "admin",
               progress: Callable[[RotationReport], None] | None = None) -> RotationReport:
        """Re-encrypt (or, ``plaintext_only``, encrypt) rows under the active key, batch by batch."""
        active = self.ring.active
        if not plaintext_only:
            with self.db.read() as s:
                foreign = PiiRepository(s).foreign_kids(self.ring.kids)
            if foreign:
                raise PiiUnreadable(FOREIGN_KEYS.format(n=sum(foreign.values()), kids=", ".join(sorted(foreign))))
        report = RotationReport(active)
        after: uuid.UUID | None = None
        while max_batches is None or report.batches < max_batches:
            with self.db.transaction() as s:
                repo = PiiRepository(s)
                rows = repo.pending(active, limit=batch_size, plaintext_only=plaintext_only, after=after)
                if not rows:
                    break
                updates: list[dict[str, object]] = []
                sources: dict[str, int] = {}
                for r in rows:
                    src = token_kid(r.applicant_id) or PLAINTEXT
                    sources[src] = sources.get(src, 0) + 1
                    updates.append(self._reencrypt(r.id, r.applicant_id, r.pii))
                repo.update_protected(updates)
                AuditRepository(s).append(
                    actor=actor[:64], role=role, action="pii_reencrypted", entity_type="pii_key", entity_id=active,
                    at=self.clock.now(),
                    payload={"rows": len(rows), "from": sources, "to": active, "first_id": str(rows[0].id),
                             "last_id": str(rows[-1].id), "mode": "encrypt-existing" if plaintext_only else "rotate"})
            after = rows[-1].id
            report.batches += 1
            report.rows += len(rows)
            for k, v in sources.items():
                report.sources[k] = report.sources.get(k, 0) + v
            if progress is not None:
                progress(report)
        with self.db.read() as s:
            report.remaining = PiiRepository(s).count_pending(active, plaintext_only=plaintext_only)
        return report

    def _reencrypt(self, app_id: uuid.UUID, stored_id: str, stored_pii: str | None) -> dict[str, object]:
        row = str(app_id)
        try:
            applicant = self.ring.reveal(stored_id, field=APPLICANT_FIELD, row=row)
            details = self.ring.reveal(stored_pii, field=DETAILS_FIELD, row=row) if stored_pii else None
        except ValueError:
            kid = token_kid(stored_id) or token_kid(stored_pii) or "?"
            raise PiiUnreadable(UNREADABLE.format(kid=kid) + f" (application {row})") from None
        return {"id": app_id, "applicant_id": self.ring.encrypt(applicant, field=APPLICANT_FIELD, row=row),
                "applicant_ref": self.ring.blind_index(applicant), "applicant_mask": mask_identifier(applicant),
                "pii": self.ring.encrypt(details, field=DETAILS_FIELD, row=row) if details is not None else None}
