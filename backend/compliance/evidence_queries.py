"""Operational evidence and release sign-offs (tables ``ops_evidence`` and ``signoffs``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from backend.platform.db.tables_governance import OpsEvidence, SignOff


@dataclass(frozen=True)
class Evidence:
    id: str
    kind: str
    recorded_at: datetime
    ok: bool
    summary: str
    command: str
    actor: str
    payload: dict[str, Any]


def _view(r: OpsEvidence) -> Evidence:
    return Evidence(str(r.id), r.kind, r.recorded_at, bool(r.ok), r.summary, r.command, r.actor, dict(r.payload or {}))


@dataclass(frozen=True)
class SignOffRecord:
    """One sign-off row. ``username``: the console user who recorded it (for pm, engineering and compliance
    the signer themselves); ``display_name``: the person who signed (for legal, the named counsel)."""

    id: str
    area: str
    model_version: str
    username: str
    display_name: str
    signed_at: datetime
    note: str
    revoked_at: datetime | None
    revoked_by: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _signoff_view(r: SignOff) -> SignOffRecord:
    return SignOffRecord(str(r.id), r.area, r.model_version, r.username, r.display_name, r.signed_at, r.note or "",
                         r.revoked_at, r.revoked_by)


class OpsRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add_evidence(self, *, kind: str, ok: bool, summary: str, command: str, actor: str,
                     payload: dict[str, Any], at: datetime) -> Evidence:
        row = OpsEvidence(kind=kind, ok=ok, summary=summary[:500], command=command[:500], actor=actor[:64],
                          payload=payload, recorded_at=at)
        self.s.add(row)
        self.s.flush()
        return _view(row)

    def latest(self, kind: str, *, ok: bool | None = None) -> Evidence | None:
        q = select(OpsEvidence).where(OpsEvidence.kind == kind)
        if ok is not None:
            q = q.where(OpsEvidence.ok.is_(ok))
        r = self.s.execute(q.order_by(OpsEvidence.recorded_at.desc()).limit(1)).scalar()
        return _view(r) if r is not None else None

    def history(self, kind: str | None = None, *, limit: int = 50) -> Sequence[Evidence]:
        q = select(OpsEvidence)
        if kind is not None:
            q = q.where(OpsEvidence.kind == kind)
        return [_view(r) for r in self.s.execute(q.order_by(OpsEvidence.recorded_at.desc()).limit(limit)).scalars()]

    def signoffs(self, *, active_only: bool = True) -> Sequence[SignOff]:
        q = select(SignOff)
        if active_only:
            q = q.where(SignOff.revoked_at.is_(None))
        return list(self.s.execute(q.order_by(SignOff.signed_at.desc())).scalars())

    # -- sign-off writes and reads (backend/operations/signoffs.py) ----------------------------------
    def add_signoff(self, *, area: str, model_version: str, username: str, display_name: str, note: str,
                    at: datetime) -> SignOffRecord:
        row = SignOff(area=area, model_version=model_version, username=username[:64], display_name=display_name[:128],
                      note=note, signed_at=at)
        self.s.add(row)
        self.s.flush()
        return _signoff_view(row)

    def revoke_signoffs(self, ids: Sequence[str], *, by: str, at: datetime) -> None:
        """Mark still-active sign-offs revoked (``by``: who, or why, up to 64 characters)."""
        if ids:
            self.s.execute(update(SignOff).where(SignOff.id.in_([uuid.UUID(i) for i in ids]),
                                                 SignOff.revoked_at.is_(None))
                           .values(revoked_at=at, revoked_by=by[:64]))
            self.s.flush()

    def signoff_records(self, *, model_version: str | None = None, area: str | None = None,
                        active_only: bool = False, limit: int = 500) -> list[SignOffRecord]:
        """Sign-offs, newest first."""
        q = select(SignOff)
        if model_version is not None:
            q = q.where(SignOff.model_version == model_version)
        if area is not None:
            q = q.where(SignOff.area == area)
        if active_only:
            q = q.where(SignOff.revoked_at.is_(None))
        rows = self.s.execute(q.order_by(SignOff.signed_at.desc(), SignOff.id).limit(limit)).scalars()
        return [_signoff_view(r) for r in rows]
