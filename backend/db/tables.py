"""SQLAlchemy 2.0 tables. UUID keys, timestamps stored and returned in UTC.

The schema is created by Alembic (``backend/db/migrations``), never by ``create_all`` in
production code; tests use the same migrations.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    Uuid,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _uuid() -> uuid.UUID:
    return uuid.uuid4()


class User(Base):
    __tablename__ = "users"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    username: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    display_name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str] = mapped_column(String(128))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    senior: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class AuthSession(Base):
    """A server-side console/API session; the cookie only carries its random id."""

    __tablename__ = "sessions"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    client: Mapped[str] = mapped_column(String(128), default="")


class LoginThrottle(Base):
    """Failed-login score per (username, client); decays with time, never locks forever."""

    __tablename__ = "login_throttle"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    score: Mapped[float] = mapped_column(Float, default=0.0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Application(Base):
    __tablename__ = "applications"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    external_id: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    # 0007: a ``pii1:<kid>:...`` token (AES-256-GCM, backend/security/keys.py); plaintext on rows
    # written before 0007 until `creditrisk pii rotate` encrypts them
    applicant_id: Mapped[str] = mapped_column(String(255))
    features: Mapped[dict[str, Any]] = mapped_column(JSON)
    protected: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    loan_amount: Mapped[float] = mapped_column(Float)
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    officer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"), nullable=True, index=True)
    source: Mapped[str] = mapped_column(String(16), default="console")  # console | api | simulated
    arm: Mapped[str | None] = mapped_column(String(16), nullable=True)  # ai | control
    phase: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # 0003: which rollout version assigned the arm, and whether the officer may see the AI card
    # (False in the control arm and in shadow mode: the model still scores, the officer decides blind)
    rollout_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    ai_visible: Mapped[bool] = mapped_column(Boolean, default=True)
    # 0007: blind index of the applicant id (HMAC-SHA256, for equality lookups), what screens show of
    # it, and the encrypted direct PII (JSON of name, address, ssn, email, phone) when given
    applicant_ref: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    applicant_mask: Mapped[str | None] = mapped_column(String(16), nullable=True)
    pii: Mapped[str | None] = mapped_column(Text, nullable=True)


class Prediction(Base):
    __tablename__ = "predictions"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    application_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("applications.id"), index=True)
    model_name: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[str] = mapped_column(String(64), index=True)
    model_role: Mapped[str] = mapped_column(String(16))  # primary | fallback
    engine: Mapped[str] = mapped_column(String(16))  # compiled | reference | sagemaker
    pd: Mapped[float] = mapped_column(Float)
    raw_score: Mapped[float] = mapped_column(Float)
    risk_class: Mapped[str] = mapped_column(String(16))
    confidence: Mapped[float] = mapped_column(Float)
    recommendation: Mapped[str] = mapped_column(String(16))
    policy_reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    attributions: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)
    cache_hit: Mapped[bool] = mapped_column(Boolean, default=False)
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # since 0002 (NULL on older rows): what the waterfall and the result card need to rebuild the result
    base_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    margin: Mapped[float | None] = mapped_column(Float, nullable=True)
    member_spread: Mapped[float | None] = mapped_column(Float, nullable=True)
    fallback_error: Mapped[str | None] = mapped_column(String(300), nullable=True)
    # 0003: milliseconds per component of the scoring request (validate, cache, score, db)
    timings: Mapped[dict[str, float] | None] = mapped_column(JSON, nullable=True)


class Decision(Base):
    __tablename__ = "decisions"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    application_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("applications.id"), index=True)
    prediction_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("predictions.id"), nullable=True)
    outcome: Mapped[str] = mapped_column(String(16))  # approve | deny | manual_review
    status: Mapped[str] = mapped_column(String(24), default="final")  # final | pending_approval | rejected
    decided_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    is_override: Mapped[bool] = mapped_column(Boolean, default=False)
    override_reason_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    override_reason_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    approved_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    decision_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True, nullable=True)


class AuditLog(Base):
    """Append-only, hash-chained. UPDATE/DELETE are blocked by triggers (see the migration)."""

    __tablename__ = "audit_log"
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=_uuid)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(64), index=True)
    entity_type: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    payload_hash: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    row_hash: Mapped[str] = mapped_column(String(64), unique=True)


class ExplanationRow(Base):
    """An explanation shown to an officer (LLM text that passed the fact-check, or the template)."""

    __tablename__ = "explanations"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    prediction_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("predictions.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    provider: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(128), default="")
    text: Mapped[str] = mapped_column(Text)
    fact_check_ok: Mapped[bool] = mapped_column(Boolean)
    failures: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    fallback_used: Mapped[bool] = mapped_column(Boolean, default=False)


class LLMUsageRow(Base):
    """One LLM call (for the cost pages): provider, model, tokens, cost, latency, verdict."""

    __tablename__ = "llm_usage"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    purpose: Mapped[str] = mapped_column(String(16))  # explanation | qa
    prediction_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("predictions.id"), nullable=True, index=True)
    provider: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(128), default="")
    input_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    output_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cost_usd: Mapped[float | None] = mapped_column(Float, nullable=True)
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    fallback_used: Mapped[bool] = mapped_column(Boolean, default=False)
    fact_check_ok: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class QAExchange(Base):
    """One question about a decision and its answer, stored verbatim."""

    __tablename__ = "qa_exchanges"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    prediction_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("predictions.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    turn: Mapped[int] = mapped_column(Integer, default=1)  # order within the decision's conversation
    actor: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(32))
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    intent: Mapped[str] = mapped_column(String(32))
    refused: Mapped[bool] = mapped_column(Boolean, default=False)
    counterfactuals: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class RolloutConfig(Base):
    """One version of the rollout configuration. Exactly one row is ``active`` at a time.

    A product lead proposes a version; a risk manager (another person) approves it, which makes it
    active and supersedes the previous one. ``salt`` is kept across versions so an applicant's
    position in the hash order (and so their arm when the split grows) is sticky.
    """

    __tablename__ = "rollout_configs"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
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


class Outcome(Base):
    """The observed outcome of an application: funded or not, and whether the loan defaulted."""

    __tablename__ = "outcomes"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    application_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("applications.id"), unique=True)
    funded: Mapped[bool] = mapped_column(Boolean)
    defaulted: Mapped[bool | None] = mapped_column(Boolean, nullable=True)  # None: not funded or unknown
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    batch_id: Mapped[str] = mapped_column(String(64), index=True)


class ExplanationFeedback(Base):
    """An officer's verdict on an explanation they were shown."""

    __tablename__ = "explanation_feedback"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    explanation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("explanations.id"), nullable=True, index=True)
    prediction_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("predictions.id"), index=True)
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"), nullable=True, index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    helpful: Mapped[bool] = mapped_column(Boolean)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)


class SurveyResponse(Base):
    """A periodic satisfaction survey answer: one per user and period (e.g. ``2025-10``)."""

    __tablename__ = "survey_responses"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    period: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    nps: Mapped[int] = mapped_column(Integer)  # 0-10 "how likely to recommend"
    satisfaction: Mapped[int | None] = mapped_column(Integer, nullable=True)  # 1-5
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)


class MonitorSnapshot(Base):
    """A stored monitoring summary (drift, performance, fairness, ...) for one period.

    Monitoring pages read these rows only; ``creditrisk monitor run`` (and the services'
    ``refresh``) compute them from the book in chunks. ``value`` is the headline figure the alert
    rules read (drift: max PSI; performance: accuracy; fairness: lowest disparate-impact ratio).
    """

    __tablename__ = "monitor_snapshots"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
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
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
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


Index("ix_audit_log_entity", AuditLog.entity_type, AuditLog.entity_id)
Index("ix_decisions_app_status", Decision.application_id, Decision.status)
Index("ix_applications_applied_arm", Application.applied_at, Application.arm)
Index("uq_survey_user_period", SurveyResponse.user_id, SurveyResponse.period, unique=True)
Index("uq_monitor_snapshot", MonitorSnapshot.kind, MonitorSnapshot.granularity, MonitorSnapshot.period,
      MonitorSnapshot.model_version, unique=True)


class ApiClient(Base):
    """A machine client of the scoring API (OAuth 2.0 client credentials). Only the secret's hash is
    stored; revoking keeps the row (and its audit trail) and refuses its tokens at once."""

    __tablename__ = "api_clients"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    client_id: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(32))
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    secret_hash: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64), default="system")
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(64), nullable=True)


class IdempotencyRecord(Base):
    """The stored answer to an API write sent with an ``Idempotency-Key`` (per caller and key).

    ``response`` is NULL while the first request is being handled; a retry with the same key and
    the same request gets the stored answer, a different request with the key gets 409."""

    __tablename__ = "api_idempotency"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    principal: Mapped[str] = mapped_column(String(80))
    key: Mapped[str] = mapped_column(String(128))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


Index("uq_api_idempotency_key", IdempotencyRecord.principal, IdempotencyRecord.key, unique=True)


class OpsEvidence(Base):
    """0006: one piece of operational evidence (a backup drill, a security scan, a load benchmark...).

    Written by the command that produced it, in one transaction with its audit row; read by the
    readiness checklist. Never updated: a newer run adds a newer row.
    """

    __tablename__ = "ops_evidence"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
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
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=_uuid)
    area: Mapped[str] = mapped_column(String(16), index=True)  # pm | engineering | compliance | legal
    model_version: Mapped[str] = mapped_column(String(64), default="")
    username: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(128), default="")
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    note: Mapped[str] = mapped_column(Text, default="")
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
