"""Tables of oversight: the hash-chained audit log, rollout configuration versions, monitoring snapshots,
alerts, operational evidence and release sign-offs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from backend.platform.db.base import Base, EntityRef, HexDigest, UTCDateTime, UUIDKey, new_id, utcnow
from backend.platform.db.compact import AUDIT, CompactJSON


class AuditLog(Base):
    """Append-only, hash-chained. UPDATE/DELETE are blocked by triggers (see the migration)."""

    __tablename__ = "audit_log"
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    id: Mapped[uuid.UUID] = mapped_column(UUIDKey, unique=True, default=new_id)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(64), index=True)
    entity_type: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(EntityRef)  # 0018: a UUID's canonical text as its 16 bytes on SQLite
    # 0017: compact JSON with the audit dictionary (backend/platform/db/compact.py); hashes are over the value
    payload: Mapped[dict[str, Any]] = mapped_column(CompactJSON(AUDIT, since="0017"), default=dict)
    # 0017: the three hashes stored as their 32 bytes (hex text to every reader)
    payload_hash: Mapped[str] = mapped_column(HexDigest)
    prev_hash: Mapped[str] = mapped_column(HexDigest)  # empty since 0009 (the sequencer's batches place the row)
    row_hash: Mapped[str] = mapped_column(HexDigest)  # not unique-indexed since 0020 (the unique id is)


class AuditBatch(Base):
    """One sealed batch of the audit log (append-only like it): the Merkle root of rows
    ``first_seq..last_seq`` (minus ``gaps``), chained to the previous batch and keyed (``mac``)."""

    __tablename__ = "audit_batch"
    batch_no: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                          autoincrement=False)
    first_seq: Mapped[int] = mapped_column(BigInteger)
    last_seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    size: Mapped[int] = mapped_column(Integer)
    gaps: Mapped[str] = mapped_column(Text, default="[]")  # JSON [[from, to], ...] of seqs absent when sealed
    tags: Mapped[bytes] = mapped_column(LargeBinary)  # 8 bytes of each leaf hash, in order
    root: Mapped[str] = mapped_column(String(64))
    prev_mac: Mapped[str] = mapped_column(String(64))
    mac: Mapped[str] = mapped_column(String(64), unique=True)
    sealed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RolloutConfig(Base):
    """One version of the rollout configuration. Exactly one row is ``active`` at a time.

    A product lead proposes a version; a risk manager (another person) approves it, which makes it
    active and supersedes the previous one. ``salt`` is kept across versions so an applicant's
    position in the hash order (and so their arm when the split grows) is sticky.
    """

    __tablename__ = "rollout_configs"
    id: Mapped[uuid.UUID] = mapped_column(UUIDKey, primary_key=True, default=new_id)
    version: Mapped[int] = mapped_column(Integer, unique=True)
    phase: Mapped[str] = mapped_column(String(32))  # shadow | pilot | scaled | full
    ai_share: Mapped[float] = mapped_column(Float)  # share of applications in the AI arm (0 in shadow)
    eligible_roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    senior_only: Mapped[bool] = mapped_column(Boolean, default=False)
    eligible_officers: Mapped[list[str]] = mapped_column(JSON, default=list)  # usernames; empty = any eligible
    loan_amount_cap: Mapped[float] = mapped_column(Float)
    confidence_threshold: Mapped[float] = mapped_column(Float)
    features: Mapped[dict[str, bool]] = mapped_column(JSON, default=dict)  # explanations, letters, qa
    salt: Mapped[str] = mapped_column(String(32))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    status: Mapped[str] = mapped_column(String(16), index=True)  # proposed|active|superseded|rejected|withdrawn
    rationale: Mapped[str] = mapped_column(Text, default="")
    proposed_by: Mapped[str] = mapped_column(String(64))
    proposed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reviewed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    review_note: Mapped[str | None] = mapped_column(Text, nullable=True)


class MonitorSnapshot(Base):
    """A stored monitoring summary (drift, performance, fairness, ...) for one period.

    Monitoring pages read these rows only; ``creditrisk monitor run`` (and the services'
    ``refresh``) compute them from the book in chunks. ``value`` is the headline figure the alert
    rules read (drift: max PSI; performance: accuracy; fairness: lowest disparate-impact ratio).
    """

    __tablename__ = "monitor_snapshots"
    id: Mapped[uuid.UUID] = mapped_column(UUIDKey, primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(32))  # drift | performance | fairness | ...
    granularity: Mapped[str] = mapped_column(String(16))  # week | month | phase | window
    period: Mapped[str] = mapped_column(String(32))  # 2025-W36 | 2025-09 | pilot | 2025-09-01..2025-09-30
    window_start: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    window_end: Mapped[datetime] = mapped_column(UTCDateTime)
    model_version: Mapped[str] = mapped_column(String(64), default="")
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    n: Mapped[int] = mapped_column(Integer, default=0)  # rows the summary was computed from
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class AlertRow(Base):
    """An alert raised by a monitoring rule; open -> acknowledged -> resolved (never deleted)."""

    __tablename__ = "alerts"
    id: Mapped[uuid.UUID] = mapped_column(UUIDKey, primary_key=True, default=new_id)
    rule: Mapped[str] = mapped_column(String(64), index=True)
    metric: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))  # info | warning | critical
    action: Mapped[str] = mapped_column(String(32))  # notify | retrain | halt_deployments
    status: Mapped[str] = mapped_column(String(16), index=True)  # open | acknowledged | resolved
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    threshold: Mapped[float] = mapped_column(Float)
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ack_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(64), nullable=True)  # a user, or "monitor" when cleared
    notifications: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class OpsEvidence(Base):
    """0006: one piece of operational evidence (a backup drill, a security scan, a load benchmark...).

    Written by the command that produced it, in one transaction with its audit row; read by the
    readiness checklist. Never updated: a newer run adds a newer row.
    """

    __tablename__ = "ops_evidence"
    id: Mapped[uuid.UUID] = mapped_column(UUIDKey, primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(32), index=True)  # backup | backup_drill | security_scan | load_test | ...
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    ok: Mapped[bool] = mapped_column(Boolean)
    summary: Mapped[str] = mapped_column(String(500))
    command: Mapped[str] = mapped_column(String(500), default="")
    actor: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class SignOff(Base):
    """0006: a named release sign-off by role (pm | engineering | compliance | legal), for a model version."""

    __tablename__ = "signoffs"
    id: Mapped[uuid.UUID] = mapped_column(UUIDKey, primary_key=True, default=new_id)
    area: Mapped[str] = mapped_column(String(16), index=True)  # pm | engineering | compliance | legal
    model_version: Mapped[str] = mapped_column(String(64), default="")
    username: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(128), default="")
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    note: Mapped[str] = mapped_column(Text, default="")
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(64), nullable=True)


Index("ix_audit_log_entity", AuditLog.entity_type, AuditLog.entity_id)
Index("uq_monitor_snapshot", MonitorSnapshot.kind, MonitorSnapshot.granularity, MonitorSnapshot.period,
      MonitorSnapshot.model_version, unique=True)


class VerdictAcceptance(Base):
    """A named person's written acceptance of a significant adverse difference between the arms of a rollout
    phase (approval, default or fairness), so the phase verdict may pass over it. Append-only in use: a
    newer acceptance of the same phase and metric is the one that counts; each is audited."""

    __tablename__ = "verdict_acceptances"
    id: Mapped[uuid.UUID] = mapped_column(UUIDKey, primary_key=True, default=new_id)
    phase: Mapped[str] = mapped_column(String(32), index=True)
    metric: Mapped[str] = mapped_column(String(32))  # approval | default | fairness
    finding: Mapped[str] = mapped_column(Text)  # the verdict's sentence that was accepted, as shown
    reason: Mapped[str] = mapped_column(Text)
    accepted_by: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(32))
    accepted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Incident(Base):
    """0014: an incident opened by a model rollback (issue 19): the seed's rollback procedure as a workflow.

    Steps and their clocks: rollback (``opened_at`` -> ``rollback_done_at``, target 5 min), verification from the
    records (``rollback_done_at`` -> ``verified_at``, 10 min; ``verification`` holds each check), the last decisions
    of the rolled-back version queued for manual review (:class:`IncidentReview`), the post-mortem (owner, due time,
    the test that now catches the cause; due 24 h after ``opened_at``). Closed when every step is done.
    """

    __tablename__ = "incidents"
    id: Mapped[uuid.UUID] = mapped_column(UUIDKey, primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(32), default="model_rollback")
    status: Mapped[str] = mapped_column(String(16), index=True)  # open | closed
    model_version: Mapped[str] = mapped_column(String(64), index=True)  # the version rolled back
    restored_version: Mapped[str] = mapped_column(String(64))
    cause: Mapped[str] = mapped_column(Text, default="")
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    opened_by: Mapped[str] = mapped_column(String(64))
    rollback_done_at: Mapped[datetime] = mapped_column(UTCDateTime)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    verification: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    review_queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    postmortem_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    postmortem_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    postmortem_test: Mapped[str | None] = mapped_column(String(300), nullable=True)
    postmortem_summary: Mapped[str | None] = mapped_column(Text, nullable=True)
    postmortem_done_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class IncidentReview(Base):
    """0014: one decision of a rolled-back version queued for manual review by its incident."""

    __tablename__ = "incident_reviews"
    id: Mapped[uuid.UUID] = mapped_column(UUIDKey, primary_key=True, default=new_id)
    incident_id: Mapped[uuid.UUID] = mapped_column(UUIDKey, index=True)
    application_id: Mapped[uuid.UUID] = mapped_column(UUIDKey)
    prediction_id: Mapped[uuid.UUID] = mapped_column(UUIDKey)
    scored_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recommendation: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued | reviewed
    reviewed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
