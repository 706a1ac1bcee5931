"""Tables of the decision book: applications, their predictions, the officers' decisions, the observed
outcomes, the explanations shown and their LLM calls, decision Q&A, and the officers' feedback."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from backend.platform.db.base import Base, HexDigest, UTCDateTime, UUIDKey, new_id, utcnow
from backend.platform.db.compact import CompactJSON


class Application(Base):
    __tablename__ = "applications"
    id: Mapped[uuid.UUID] = mapped_column(UUIDKey, primary_key=True, default=new_id)
    # 0008: "<id>@<client_id>" for a machine client's ids (unique within their owner), the id itself for the organisation
    external_id: Mapped[str | None] = mapped_column(String(96), unique=True, nullable=True)
    # 0007: a ``pii1:<kid>:...`` token (AES-256-GCM, backend/compliance/pii_keys.py); plaintext on rows
    # written before 0007 until `creditrisk pii rotate` encrypts them
    applicant_id: Mapped[str] = mapped_column(String(255))
    # 0015: compact JSON (backend/platform/db/compact.py): the same dict, a sixth of the bytes
    features: Mapped[dict[str, Any]] = mapped_column(CompactJSON)
    protected: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    loan_amount: Mapped[float] = mapped_column(Float)
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime)  # indexed by ix_applications_applied_arm (0017)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    officer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"), nullable=True, index=True)
    source: Mapped[str] = mapped_column(String(16), default="console", index=True)  # console | api | simulated
    arm: Mapped[str | None] = mapped_column(String(16), nullable=True)  # ai | control
    phase: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # 0003: which rollout version assigned the arm, and whether the officer may see the AI card
    # (False in the control arm and in shadow mode: the model still scores, the officer decides blind)
    rollout_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    ai_visible: Mapped[bool] = mapped_column(Boolean, default=True)
    # 0007: blind index of the applicant id (HMAC-SHA256, for equality lookups), what screens show of
    # it, and the encrypted direct PII (JSON of name, address, ssn, email, phone) when given
    applicant_ref: Mapped[str | None] = mapped_column(HexDigest, nullable=True, index=True)  # 0017: its 32 bytes
    applicant_mask: Mapped[str | None] = mapped_column(String(16), nullable=True)
    pii: Mapped[str | None] = mapped_column(Text, nullable=True)
    # 0011: the credit bureau's key-factor codes sent with the score (backend/domain/bureau_factors.py)
    bureau_key_factors: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)


class Prediction(Base):
    __tablename__ = "predictions"
    id: Mapped[uuid.UUID] = mapped_column(UUIDKey, primary_key=True, default=new_id)
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
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(CompactJSON, default=list)  # 0015: compact
    attributions: Mapped[dict[str, float]] = mapped_column(CompactJSON, default=dict)  # 0015: compact
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
    id: Mapped[uuid.UUID] = mapped_column(UUIDKey, primary_key=True, default=new_id)
    # indexed by ix_decisions_app_status (application_id, status) since 0017
    application_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("applications.id"))
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
    # 0011: the notice's principal reasons an officer picked for a denial: REASONS keys, "other:<text>"
    notice_reasons: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)


class Outcome(Base):
    """The observed outcome of an application: funded or not, and whether the loan defaulted."""

    __tablename__ = "outcomes"
    id: Mapped[uuid.UUID] = mapped_column(UUIDKey, primary_key=True, default=new_id)
    application_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("applications.id"), unique=True)
    funded: Mapped[bool] = mapped_column(Boolean)
    defaulted: Mapped[bool | None] = mapped_column(Boolean, nullable=True)  # None: not funded or unknown
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    batch_id: Mapped[str] = mapped_column(String(64))  # (not indexed since 0017: nothing looks rows up by it)


class ExplanationRow(Base):
    """An explanation shown to an officer (LLM text that passed the fact-check, or the template)."""

    __tablename__ = "explanations"
    id: Mapped[uuid.UUID] = mapped_column(UUIDKey, primary_key=True, default=new_id)
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
    id: Mapped[uuid.UUID] = mapped_column(UUIDKey, primary_key=True, default=new_id)
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
    id: Mapped[uuid.UUID] = mapped_column(UUIDKey, primary_key=True, default=new_id)
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
    # migration 0010: which conversation, refusal kind, who answered, facts used, LLM tool calls, verdict
    conversation_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    refusal: Mapped[str | None] = mapped_column(String(32), nullable=True)
    engine: Mapped[str | None] = mapped_column(String(160), nullable=True)
    facts: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    tool_calls: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    fact_check: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class ExplanationFeedback(Base):
    """An officer's verdict on an explanation they were shown."""

    __tablename__ = "explanation_feedback"
    id: Mapped[uuid.UUID] = mapped_column(UUIDKey, primary_key=True, default=new_id)
    explanation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("explanations.id"), nullable=True, index=True)
    prediction_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("predictions.id"), index=True)
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"), nullable=True, index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    helpful: Mapped[bool] = mapped_column(Boolean)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)


class SurveyResponse(Base):
    """A periodic satisfaction survey answer: one per user and period (e.g. ``2025-10``)."""

    __tablename__ = "survey_responses"
    id: Mapped[uuid.UUID] = mapped_column(UUIDKey, primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    period: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    nps: Mapped[int] = mapped_column(Integer)  # 0-10 "how likely to recommend"
    satisfaction: Mapped[int | None] = mapped_column(Integer, nullable=True)  # 1-5
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)


Index("ix_applications_applied_arm", Application.applied_at, Application.arm)
Index("ix_decisions_app_status", Decision.application_id, Decision.status)
Index("uq_survey_user_period", SurveyResponse.user_id, SurveyResponse.period, unique=True)
