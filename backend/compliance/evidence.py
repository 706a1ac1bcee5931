"""Operational evidence: what a backup drill, a security scan or a load benchmark proved, and when.

Each producing command calls :func:`record` once; the row and its audit row are written in one
transaction. The readiness checklist reads the newest row of each kind (``latest``).

Kinds in use: ``backup``, ``backup_drill``, ``security_scan``, ``load_test``, ``rollback_test``.
"""

from __future__ import annotations

import shlex
import sys
from typing import Any

from backend.compliance.audit_queries import AuditRepository
from backend.compliance.evidence_queries import Evidence, OpsRepository
from backend.platform.db.engine import Database
from backend.platform.ports import Clock

KINDS = ("backup", "backup_drill", "security_scan", "load_test", "rollback_test")
SYSTEM_ROLE = "system"


def current_command() -> str:
    """The command line that is running (for the evidence's ``command``), program name shortened."""
    argv = list(sys.argv)
    if argv:
        argv[0] = argv[0].rsplit("/", 1)[-1]
    return shlex.join(argv)[:500]


def record(db: Database, clock: Clock, *, kind: str, ok: bool, summary: str, payload: dict[str, Any],
           command: str | None = None, actor: str = "cli", role: str = SYSTEM_ROLE) -> Evidence:
    """Store one piece of evidence and its audit row (``evidence_recorded``) in one transaction."""
    if kind not in KINDS:
        raise ValueError(f"unknown evidence kind {kind!r}; expected one of {', '.join(KINDS)}")
    at = clock.now()
    with db.transaction() as s:
        ev = OpsRepository(s).add_evidence(kind=kind, ok=ok, summary=summary, command=command or current_command(),
                                           actor=actor, payload=payload, at=at)
        AuditRepository(s).append(actor=actor, role=role, action="evidence_recorded", entity_type="ops_evidence",
                                  entity_id=ev.id, payload={"kind": kind, "ok": ok, "summary": summary[:500]}, at=at)
    return ev


def latest(db: Database, kind: str, *, ok: bool | None = None) -> Evidence | None:
    with db.read() as s:
        return OpsRepository(s).latest(kind, ok=ok)
