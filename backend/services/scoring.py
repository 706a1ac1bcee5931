"""Scoring use case, shared by the console, the API and the CLI.

validate → cache lookup (feature hash + model version + engine) → score (compiled by default;
``reference`` = scikit-learn) → attributions → reasons → policy → persist the application, the
prediction and one audit row in a single transaction. When the primary model fails, the fallback
forest scores and the result says so (and the policy sends it to manual review).
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import select

from backend.db.engine import Database
from backend.db.repo_audit import AuditRepository
from backend.db.tables import Application, Prediction
from backend.model.policy import decide
from backend.ports import Cache, Clock
from backend.services.model_provider import ModelProvider, ServingModel
from backend.services.validation import validate_application

CACHE_TTL_SECONDS = 3600.0
CONFLICT = ("application id {id!r} already exists with different details; "
            "use a new id for a new application (nothing was recorded)")


class ApplicationConflict(ValueError):
    """An application id was submitted again with different features."""
PROTECTED_PASSTHROUGH = ("sex", "age_band", "race_ethnicity")
META_FIELDS = ("application_id", "applicant_id", "applied_at", "default", "pd_true")


@dataclass(frozen=True)
class ScoreResult:
    model_name: str
    model_version: str
    model_role: str  # primary | fallback
    engine: str  # compiled | reference
    pd: float
    raw_score: float
    risk_class: str
    confidence: float
    recommendation: str
    policy_reasons: list[str]
    reasons: list[dict[str, Any]]
    attributions: dict[str, float]
    base_value: float
    margin: float
    member_spread: float
    features: dict[str, Any]
    cache_hit: bool = False
    latency_ms: float = 0.0
    application_id: str | None = None
    prediction_id: str | None = None
    fallback_error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Submitter:
    """Who submitted the application (for ownership and the audit row)."""

    username: str
    role: str
    user_id: uuid.UUID | None = None


def feature_hash(clean: Mapping[str, Any]) -> str:
    """Hash of the validated features. ``clean`` comes from validation, so its keys are always in the
    model's column order and its values are None/int/float/str: ``repr`` of the items is canonical."""
    return hashlib.blake2b(repr(tuple(clean.items())).encode(), digest_size=20).hexdigest()


class ScoringService:
    def __init__(self, db: Database, cache: Cache, models: ModelProvider, clock: Clock) -> None:
        self.db = db
        self.cache = cache
        self.models = models
        self.clock = clock

    # -- pure computation ----------------------------------------------------------------------
    def validate(self, raw: Mapping[str, Any], model: ServingModel) -> dict[str, Any]:
        return validate_application(raw, columns=model.columns, kinds=model.kinds, categories=model.categories,
                                    ignore_extra=PROTECTED_PASSTHROUGH + META_FIELDS)

    def evaluate(self, clean: Mapping[str, Any], model: ServingModel, *, engine: str = "compiled",
                 use_cache: bool = True) -> ScoreResult:
        start = time.perf_counter()
        key = f"score:{model.name}:{model.version}:{engine}:{feature_hash(clean)}" if use_cache else ""
        if use_cache:
            hit = self.cache.get(key)
            if hit is not None:
                try:
                    data = json.loads(hit)
                    data.update(cache_hit=True, latency_ms=(time.perf_counter() - start) * 1000)
                    return ScoreResult(**data)
                except (ValueError, TypeError):
                    self.cache.delete(key)
        result = self._compute(clean, model, engine)
        if use_cache:  # vars(): a shallow view is enough for JSON (asdict deep-copies every nested dict)
            self.cache.set(key, json.dumps(vars(result), default=str).encode(), CACHE_TTL_SECONDS)
        return replace(result, latency_ms=(time.perf_counter() - start) * 1000)

    def _compute(self, clean: Mapping[str, Any], model: ServingModel, engine: str) -> ScoreResult:
        x = model.encoder.encode_one(clean)
        role, error = "primary", None
        try:
            if model.primary is None:
                raise RuntimeError("primary artifact failed its integrity check")
            raw, margin, phi, members = model.primary.score_one(x)
            if engine == "reference":
                raw = float(model.reference_proba([dict(clean)], role="primary")[0])
            base = float(margin - phi.sum())
        except Exception as exc:  # noqa: BLE001 - any primary failure falls back, and says so
            role, error = "fallback", f"{type(exc).__name__}: {exc}"[:300]
            X = x.reshape(1, -1)
            raw = float(model.fallback.predict_proba(X)[0])
            phis, bases = model.fallback.attributions(X)
            phi, base, margin = phis[0], float(bases[0]), raw
            members = model.fallback.member_probas(X)[0]
        pd_ = float(model.calibrate(float(raw), model=role))
        outcome = decide(float(raw), loan_amount=float(clean.get("loan_amount") or 0.0), members=members.tolist(),
                         fallback_used=role == "fallback", policy=model.policy)
        attributions = dict(zip(model.columns, np.round(phi, 8).tolist(), strict=True))
        return ScoreResult(
            model_name=model.name, model_version=model.version, model_role=role, engine=engine, pd=pd_,
            raw_score=float(raw), risk_class=outcome.risk_class, confidence=outcome.confidence,
            recommendation=outcome.recommendation, policy_reasons=list(outcome.policy_reasons),
            reasons=model.reasons.top(phi, clean), attributions=attributions, base_value=base,
            margin=float(margin), member_spread=outcome.member_spread, features=dict(clean), fallback_error=error)

    # -- use cases ---------------------------------------------------------------------------
    def score(self, raw: Mapping[str, Any], *, submitter: Submitter, model_ref: str = "champion",
              engine: str = "compiled", source: str = "console", persist: bool = True,
              applied_at: datetime | None = None) -> ScoreResult:
        """Validate, score and (by default) record one application with its audit row."""
        model = self.models.get(model_ref)
        clean = self.validate(raw, model)
        result = self.evaluate(clean, model, engine=engine)
        if not persist:
            return result
        return self._persist([raw], [result], submitter=submitter, source=source, applied_at=applied_at)[0]

    def score_many(self, rows: Sequence[Mapping[str, Any]], *, submitter: Submitter, model_ref: str = "champion",
                   engine: str = "compiled", source: str = "console", persist: bool = True) -> list[ScoreResult]:
        """Score a batch (vectorised when the primary serves) and record it in one transaction."""
        model = self.models.get(model_ref)
        cleans = [self.validate(r, model) for r in rows]
        if engine == "compiled" and model.primary is not None:
            results = self._batch(cleans, model)
        else:
            results = [self.evaluate(c, model, engine=engine, use_cache=False) for c in cleans]
        if not persist:
            return results
        return self._persist(rows, results, submitter=submitter, source=source)

    def _batch(self, cleans: list[dict[str, Any]], model: ServingModel) -> list[ScoreResult]:
        if not cleans:
            return []
        X = model.encoder.transform_records(cleans)
        raw = model.primary.predict_proba(X)
        phi, base = model.primary.attributions(X)
        members = model.primary.member_probas(X)
        pds = model.calibrate(raw, model="primary")
        out = []
        for i, clean in enumerate(cleans):
            o = decide(float(raw[i]), loan_amount=float(clean.get("loan_amount") or 0.0),
                       members=members[i], fallback_used=False, policy=model.policy)
            out.append(ScoreResult(
                model_name=model.name, model_version=model.version, model_role="primary", engine="compiled",
                pd=float(pds[i]), raw_score=float(raw[i]), risk_class=o.risk_class, confidence=o.confidence,
                recommendation=o.recommendation, policy_reasons=list(o.policy_reasons),
                reasons=model.reasons.top(phi[i], clean),
                attributions=dict(zip(model.columns, np.round(phi[i], 8).tolist(), strict=True)),
                base_value=float(base[i]), margin=float(base[i] + phi[i].sum()), member_spread=o.member_spread,
                features=clean))
        return out

    def _persist(self, raws: Sequence[Mapping[str, Any]], results: list[ScoreResult], *, submitter: Submitter,
                 source: str, applied_at: datetime | None = None) -> list[ScoreResult]:
        now = self.clock.now()
        saved: list[ScoreResult] = []
        with self.db.transaction() as s:
            audit = AuditRepository(s)
            ids = [str(r["application_id"]) for r in raws if r.get("application_id")]
            existing = {a.external_id: a for a in s.execute(
                select(Application).where(Application.external_id.in_(ids))).scalars()} if ids else {}
            for raw, res in zip(raws, results, strict=True):  # check all first: a conflict writes nothing
                app = existing.get(str(raw.get("application_id"))) if raw.get("application_id") else None
                if app is not None and feature_hash(app.features) != feature_hash(res.features):
                    raise ApplicationConflict(CONFLICT.format(id=str(raw["application_id"])[:64]))
            for raw, res in zip(raws, results, strict=True):
                app = existing.get(str(raw.get("application_id"))) if raw.get("application_id") else None
                rescored = app is not None
                if app is None:
                    protected = {k: raw[k] for k in PROTECTED_PASSTHROUGH if raw.get(k) is not None}
                    when = applied_at or _as_datetime(raw.get("applied_at")) or now
                    app = Application(external_id=raw.get("application_id") or None,
                                      applicant_id=str(raw.get("applicant_id") or uuid.uuid4().hex[:12]),
                                      features=res.features, protected=protected,
                                      loan_amount=float(res.features.get("loan_amount") or 0.0), applied_at=when,
                                      created_at=now, officer_id=submitter.user_id, source=source)
                    s.add(app)
                    s.flush()
                    if app.external_id:
                        existing[app.external_id] = app
                pred = Prediction(application_id=app.id, model_name=res.model_name, model_version=res.model_version,
                                  model_role=res.model_role, engine=res.engine, pd=res.pd, raw_score=res.raw_score,
                                  risk_class=res.risk_class, confidence=res.confidence,
                                  recommendation=res.recommendation, policy_reasons=res.policy_reasons,
                                  reasons=res.reasons, attributions=res.attributions, cache_hit=res.cache_hit,
                                  latency_ms=res.latency_ms, created_at=now, base_value=res.base_value,
                                  margin=res.margin, member_spread=res.member_spread,
                                  fallback_error=res.fallback_error[:300] if res.fallback_error else None)
                s.add(pred)
                s.flush()
                audit.append(actor=submitter.username, role=submitter.role,
                             action="application_rescored" if rescored else "application_scored",
                             entity_type="prediction", entity_id=str(pred.id), at=now,
                             payload={"application_id": str(app.id), "model_version": res.model_version,
                                      "model_role": res.model_role, "engine": res.engine,
                                      "pd": round(res.pd, 6), "recommendation": res.recommendation,
                                      "reasons": [r["code"] for r in res.reasons], "feature_hash": feature_hash(res.features)})
                saved.append(replace(res, application_id=str(app.id), prediction_id=str(pred.id)))
        return saved


def _as_datetime(v: Any) -> datetime | None:
    if isinstance(v, datetime):
        return v
    if hasattr(v, "to_pydatetime"):
        return v.to_pydatetime()
    return None
