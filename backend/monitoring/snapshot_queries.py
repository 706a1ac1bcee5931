"""Monitoring snapshots: the stored summaries the monitoring pages and alert rules read.

One row per (kind, granularity, period, model_version); writing the same key again replaces the
summary (a period is recomputed when late rows or new outcomes arrive).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from backend.platform.db.tables_governance import MonitorSnapshot


@dataclass(frozen=True)
class Snapshot:
    kind: str
    granularity: str
    period: str
    window_start: datetime
    window_end: datetime
    model_version: str
    computed_at: datetime
    n: int
    value: float | None
    payload: dict[str, Any]


def _view(r: MonitorSnapshot) -> Snapshot:
    return Snapshot(r.kind, r.granularity, r.period, r.window_start, r.window_end, r.model_version, r.computed_at,
                    r.n, r.value, dict(r.payload or {}))


class SnapshotRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def put(self, *, kind: str, granularity: str, period: str, window_start: datetime, window_end: datetime,
            computed_at: datetime, n: int, value: float | None, payload: dict[str, Any],
            model_version: str = "") -> None:
        """Insert or replace the snapshot of this key (in the caller's transaction)."""
        self.s.execute(delete(MonitorSnapshot).where(
            MonitorSnapshot.kind == kind, MonitorSnapshot.granularity == granularity,
            MonitorSnapshot.period == period, MonitorSnapshot.model_version == model_version))
        self.s.add(MonitorSnapshot(kind=kind, granularity=granularity, period=period, window_start=window_start,
                                   window_end=window_end, model_version=model_version, computed_at=computed_at,
                                   n=n, value=value, payload=payload))
        self.s.flush()

    def list(self, kind: str, *, granularity: str | None = None, since: datetime | None = None,
             until: datetime | None = None, model_version: str | None = None) -> Sequence[Snapshot]:
        """Snapshots of ``kind`` in window order (oldest first)."""
        q = select(MonitorSnapshot).where(MonitorSnapshot.kind == kind)
        if granularity is not None:
            q = q.where(MonitorSnapshot.granularity == granularity)
        if since is not None:
            q = q.where(MonitorSnapshot.window_start >= since)
        if until is not None:
            q = q.where(MonitorSnapshot.window_start < until)
        if model_version is not None:
            q = q.where(MonitorSnapshot.model_version == model_version)
        return [_view(r) for r in self.s.execute(q.order_by(MonitorSnapshot.window_start,
                                                            MonitorSnapshot.period)).scalars()]

    def latest(self, kind: str, *, granularity: str | None = None, before: datetime | None = None) -> Snapshot | None:
        """The snapshot of ``kind`` with the latest window that starts before ``before`` (if given)."""
        q = select(MonitorSnapshot).where(MonitorSnapshot.kind == kind)
        if granularity is not None:
            q = q.where(MonitorSnapshot.granularity == granularity)
        if before is not None:
            q = q.where(MonitorSnapshot.window_start < before)
        row = self.s.execute(q.order_by(MonitorSnapshot.window_start.desc(), MonitorSnapshot.computed_at.desc())
                             .limit(1)).scalars().first()
        return _view(row) if row is not None else None

    def get(self, kind: str, granularity: str, period: str) -> Snapshot | None:
        """The newest snapshot of one period (``None`` when it was never computed)."""
        row = self.s.execute(select(MonitorSnapshot).where(
            MonitorSnapshot.kind == kind, MonitorSnapshot.granularity == granularity, MonitorSnapshot.period == period)
            .order_by(MonitorSnapshot.computed_at.desc()).limit(1)).scalars().first()
        return _view(row) if row is not None else None
