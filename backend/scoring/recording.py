"""Recording scored applications: the application (with its rollout arm), the prediction and one
audit row each, in the caller's transaction.

Rows go in as multi-row INSERTs with ids made here (a batch of thousands costs a few statements,
not thousands of flushes). A re-submitted application id with the same features is re-scored (new
prediction, same application and arm); with different features the whole batch is refused
(:class:`ApplicationConflict`) and nothing is written. Ids live within their owner's namespace
(:func:`~backend.scoring.result.stored_external_id`): a machine client never reaches the organisation's
or another client's application by reusing its id.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from backend.compliance import AuditEntry, PiiKeyRing, append_many, protect_intake
from backend.domain import parse_key_factors
from backend.rollout import OfficerInfo, Phase, assign
from backend.scoring.queries import ScoringRepository
from backend.scoring.result import (
    CONFLICT,
    OWNER_SEPARATOR,
    PROTECTED_PASSTHROUGH,
    ApplicationConflict,
    Intake,
    ScoreResult,
    feature_hash,
    stored_external_id,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def record_scored(s: Session, items: Sequence[Intake], results: list[ScoreResult], phases: list[Phase], *,
                  pii: PiiKeyRing | None, now: datetime, source: str, timings: list[dict[str, float]],
                  started: float) -> list[ScoreResult]:
    """Write ``items`` as scored (``results``, under ``phases``); the results with their ids and arm.
    ``started``: ``time.perf_counter()`` when the database work began (for each prediction's
    ``db_read_ms`` timing)."""
    repo = ScoringRepository(s)
    exts = [_stored_id(it) for it in items]  # each id within its owner's namespace
    existing = repo.known_applications([e for e in exts if e])
    # the database component of each request's timings: the lookup of known applications (the
    # INSERTs come after the row is built; their time is in ScoreResult.extra["db_ms"])
    db_read_ms = (time.perf_counter() - started) * 1000 / max(len(items), 1)
    _check_conflicts(exts, results, existing)
    apps: list[dict[str, Any]] = []
    preds: list[dict[str, Any]] = []
    audits: list[AuditEntry] = []
    saved: list[ScoreResult] = []
    for it, ext, res, phase, timing in zip(items, exts, results, phases, timings, strict=True):
        known = existing.get(ext) if ext else None
        if known is None:
            app_id = uuid.uuid4()
            applicant = str(it.raw.get("applicant_id") or uuid.uuid4().hex[:12])
            loan = float(res.features.get("loan_amount") or 0.0)
            sub = it.for_officer or it.submitter
            a = assign(phase, applicant_id=applicant, loan_amount=loan,
                       officer=OfficerInfo(sub.username, sub.role, sub.senior))
            arm, phase_name, visible = a.arm, a.phase, a.ai_visible
            apps.append({"id": app_id, "external_id": ext,  # PII columns: encrypted, see compliance/pii.py
                         **protect_intake(pii, app_id, applicant[:64], it.raw.get("applicant")),
                         "features": res.features,
                         "protected": {k: it.raw[k] for k in PROTECTED_PASSTHROUGH if it.raw.get(k) is not None},
                         "loan_amount": loan, "applied_at": it.applied_at or _as_datetime(it.raw.get("applied_at"))
                         or now, "created_at": now, "officer_id": sub.id, "source": source, "arm": arm,
                         "phase": phase_name, "rollout_version": a.version, "ai_visible": visible,
                         "bureau_key_factors": list(parse_key_factors(it.raw.get("bureau_key_factors"))) or None})
            if ext:
                existing[ext] = {"id": app_id, "features": res.features, "arm": arm, "phase": phase_name,
                                 "ai_visible": visible}
            rescored = False
        else:
            app_id, arm, phase_name, visible = known["id"], known["arm"], known["phase"], known["ai_visible"]
            rescored = True
        pred_id = uuid.uuid4()
        preds.append({"id": pred_id, "application_id": app_id, "model_name": res.model_name,
                      "model_version": res.model_version, "model_role": res.model_role, "engine": res.engine,
                      "pd": res.pd, "raw_score": res.raw_score, "risk_class": res.risk_class,
                      "confidence": res.confidence, "recommendation": res.recommendation,
                      "policy_reasons": res.policy_reasons, "reasons": res.reasons,
                      "attributions": res.attributions, "cache_hit": res.cache_hit,
                      "latency_ms": res.latency_ms, "created_at": now, "base_value": res.base_value,
                      "margin": res.margin, "member_spread": res.member_spread,
                      "fallback_error": res.fallback_error[:300] if res.fallback_error else None,
                      "timings": {k: round(v, 4) for k, v in {"db_read_ms": db_read_ms, **timing}.items()}})
        audits.append(AuditEntry(
            actor=it.submitter.username, role=it.submitter.role,
            action="application_rescored" if rescored else "application_scored", entity_type="prediction",
            entity_id=str(pred_id), at=now,
            payload={"application_id": str(app_id), "model_version": res.model_version,
                     "model_role": res.model_role, "engine": res.engine, "pd": round(res.pd, 6),
                     "recommendation": res.recommendation, "reasons": [r["code"] for r in res.reasons],
                     "feature_hash": res.extra.get("feature_hash") or feature_hash(res.features),
                     "arm": arm, "phase": phase_name, "ai_visible": visible,
                     **({"queued_for": it.for_officer.username} if it.for_officer else {})}))
        saved.append(replace(res, application_id=str(app_id), prediction_id=str(pred_id), arm=arm,
                             phase=phase_name, ai_visible=bool(visible)))
    repo.insert_applications(apps)
    repo.insert_predictions(preds)
    append_many(s, audits)
    return saved


def _stored_id(it: Intake) -> str | None:
    """The stored external id of ``it``: its ``application_id`` within the submitter's namespace (None without one)."""
    raw = it.raw.get("application_id")
    return stored_external_id(str(raw), it.submitter.owner) if raw else None


def _check_conflicts(exts: Sequence[str | None], results: list[ScoreResult],
                     existing: dict[str, dict[str, Any]]) -> None:
    """Refuse the batch (before any write) when an id is stored, or repeated in it, with other features (only
    the submitter's own ids are looked at: ``exts`` are already within their owners' namespaces)."""
    first: dict[str, str] = {}  # id -> features hash: the stored application's, else the batch's first
    for ext, res in zip(exts, results, strict=True):
        if ext is None:
            continue
        # computed once (when scored, or here for the audit row to reuse: 50 us each on 94 features)
        mine = res.extra["feature_hash"] = res.extra.get("feature_hash") or feature_hash(res.features)
        if ext not in first:
            first[ext] = feature_hash(existing[ext]["features"]) if ext in existing else mine
        if first[ext] != mine:  # also two applications under one id in a batch
            raise ApplicationConflict(CONFLICT.format(id=ext.partition(OWNER_SEPARATOR)[0][:64]))


def _as_datetime(v: Any) -> datetime | None:
    if isinstance(v, datetime):
        return v
    if hasattr(v, "to_pydatetime"):
        return v.to_pydatetime()
    return None
