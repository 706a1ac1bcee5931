"""Scoring use case, shared by the console, the API and the CLI.

validate → cache lookup (feature hash + model version + engine) → score (compiled by default;
``reference`` = scikit-learn) → attributions → reasons → policy → persist the application, the
prediction and one audit row in a single transaction. When the primary model fails, the fallback
forest scores and the result says so (and the policy sends it to manual review).

Canary: while a canary runs (:mod:`backend.model.canary`), a request for the ``champion`` is
routed per application: a keyed hash bucket below the canary share is scored by the canary
version, the rest by the champion; the prediction records the version that scored it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any, cast

import numpy as np
from sqlalchemy import Table, insert, select

from backend.db.bulk import AuditEntry, append_many
from backend.db.engine import Database, json_dumps
from backend.db.group_commit import GroupCommit
from backend.db.tables import Application, Prediction
from backend.model.canary import CanaryRouter
from backend.model.policy import Policy, decide
from backend.ports import Cache, Clock
from backend.security.pii import PiiKeyRing, protect_intake
from backend.security.pii_fields import check_applicants
from backend.services.model_provider import ModelProvider, ModelUnavailable, ServingModel
from backend.services.rollout import OfficerInfo, Phase, RolloutService, assign, default_phase, with_policy
from backend.services.validation import validate_application, validate_many

CACHE_TTL_SECONDS = 3600.0
_APPLICATIONS, _PREDICTIONS = cast(Table, Application.__table__), cast(Table, Prediction.__table__)
CONFLICT = ("application id {id!r} already exists with different details; "
            "use a new id for a new application (nothing was recorded)")


class ApplicationConflict(ValueError):
    """An application id was submitted again with different features."""
PROTECTED_PASSTHROUGH = ("sex", "age_band", "race_ethnicity")
META_FIELDS = ("application_id", "applicant_id", "applicant", "applied_at", "default", "pd_true")


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
    arm: str | None = None  # ai | control | excluded (None: not recorded)
    phase: str | None = None  # the rollout phase in force when the application was made
    ai_visible: bool = True  # False: the officer decides without the model (control arm, shadow mode)
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Submitter:
    """Who submitted the application (for ownership and the audit row)."""

    username: str
    role: str
    user_id: uuid.UUID | None = None
    senior: bool = False


@dataclass(frozen=True)
class Intake:
    """One application to score: its raw fields, who submitted it and when it was made."""

    raw: Mapping[str, Any]
    submitter: Submitter
    applied_at: datetime | None = None


ScoreJob = tuple[Intake, ScoreResult, Phase, dict[str, float]]  # scored, not yet recorded (prepare -> record)


def feature_hash(clean: Mapping[str, Any]) -> str:
    """Hash of the validated features. ``clean`` comes from validation, so its keys are always in the
    model's column order and its values are None/int/float/str: ``repr`` of the items is canonical."""
    return hashlib.blake2b(repr(tuple(clean.items())).encode(), digest_size=20).hexdigest()


def _policy_key(policy: Policy) -> str:
    return ",".join(f"{v:g}" for v in (policy.score_cutoff, policy.confidence_threshold, policy.loan_amount_cap,
                                        policy.disagreement_threshold))


class ScoringService:
    def __init__(self, db: Database, cache: Cache, models: ModelProvider, clock: Clock,
                 rollout: RolloutService | None = None, pii: PiiKeyRing | None = None) -> None:
        self.pii = pii  # encrypts the applicant id and direct PII of every recorded application
        self.db = db
        self.cache = cache
        self.models = models
        self.clock = clock
        self.rollout = rollout
        self.canary = CanaryRouter(models)
        self._default_phase = default_phase(models.policy_settings)
        # concurrent single-application requests share one transaction (see backend/db/group_commit.py)
        self._writers: dict[str, GroupCommit[ScoreJob, ScoreResult]] = {}

    # -- pure computation ----------------------------------------------------------------------
    def validate(self, raw: Mapping[str, Any], model: ServingModel) -> dict[str, Any]:
        clean = validate_application(raw, columns=model.columns, kinds=model.kinds, categories=model.categories,
                                     ignore_extra=PROTECTED_PASSTHROUGH + META_FIELDS)
        check_applicants([raw])  # the optional personal data, refused here (before any write), never echoed
        return clean

    def validate_many(self, raws: Sequence[Mapping[str, Any]], model: ServingModel) -> list[dict[str, Any]]:
        """:meth:`validate` for a batch (vectorized; the same result and the same errors)."""
        cleans = validate_many(raws, columns=model.columns, kinds=model.kinds, categories=model.categories,
                               ignore_extra=PROTECTED_PASSTHROUGH + META_FIELDS)
        check_applicants(raws)
        return cleans

    def evaluate(self, clean: Mapping[str, Any], model: ServingModel, *, engine: str = "compiled",
                 use_cache: bool = True, policy: Policy | None = None) -> ScoreResult:
        start = time.perf_counter()
        policy = policy or model.policy
        digest = feature_hash(clean) if use_cache else ""
        key = f"score:{model.name}:{model.version}:{engine}:{_policy_key(policy)}:{digest}" if use_cache else ""
        if use_cache:
            hit = self.cache.get(key)
            if hit is not None:
                try:
                    data = json.loads(hit)
                    data.update(cache_hit=True, latency_ms=(time.perf_counter() - start) * 1000)
                    return ScoreResult(**data)
                except (ValueError, TypeError):
                    self.cache.delete(key)
        result = self._compute(clean, model, engine, policy)
        if use_cache:
            result.extra["feature_hash"] = digest  # the audit row's, computed once
        # a fallback answer (manual review) is never cached: once the primary serves again, so do its scores;
        # vars(): a shallow view is enough for JSON (asdict deep-copies every nested dict)
        if use_cache and result.model_role == "primary":
            self.cache.set(key, json_dumps(vars(result), default=str).encode(), CACHE_TTL_SECONDS)
        return replace(result, latency_ms=(time.perf_counter() - start) * 1000)

    def _compute(self, clean: Mapping[str, Any], model: ServingModel, engine: str, policy: Policy) -> ScoreResult:
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
                         fallback_used=role == "fallback", policy=policy)
        attributions = dict(zip(model.columns, np.round(phi, 8).tolist(), strict=True))
        return ScoreResult(
            model_name=model.name, model_version=model.version, model_role=role, engine=engine, pd=pd_,
            raw_score=float(raw), risk_class=outcome.risk_class, confidence=outcome.confidence,
            recommendation=outcome.recommendation, policy_reasons=list(outcome.policy_reasons),
            reasons=model.reasons.top(phi, clean), attributions=attributions, base_value=base,
            margin=float(margin), member_spread=outcome.member_spread, features=dict(clean), fallback_error=error)

    # -- use cases ---------------------------------------------------------------------------
    def policy_for(self, model: ServingModel, phase: Phase) -> Policy:
        """The model's policy with the rollout phase's confidence threshold and loan-amount cap."""
        return with_policy(phase, model.policy)

    def phase_at(self, at: datetime) -> Phase:
        return self.rollout.active(at) if self.rollout is not None else self._default_phase

    def _canary_model(self, raw: Mapping[str, Any], model_ref: str) -> ServingModel | None:
        """The canary version's model when this application falls in its share (``champion`` only)."""
        if model_ref != "champion":
            return None
        version = self.canary.pick(raw, self.canary.current())
        if version is None:
            return None
        try:
            return self.models.get(version)
        except ModelUnavailable:  # a canary that cannot be served never blocks scoring: the champion serves
            return None

    def _route_many(self, raws: Sequence[Mapping[str, Any]], model_ref: str, model: ServingModel,
                    cleans: list[dict[str, Any]]) -> list[ServingModel]:
        """The model serving each application (the champion, or the canary for its share)."""
        served = [model] * len(raws)
        route = self.canary.current() if model_ref == "champion" else None
        picked = [i for i, raw in enumerate(raws) if self.canary.pick(raw, route)] if route else []
        if not picked:
            return served
        canary = self._canary_model(raws[picked[0]], model_ref)
        if canary is None:
            return served
        if (canary.columns, canary.kinds, canary.categories) != (model.columns, model.kinds, model.categories):
            for i, clean in zip(picked, self.validate_many([raws[i] for i in picked], canary), strict=True):
                cleans[i] = clean
        for i in picked:
            served[i] = canary
        return served

    def score(self, raw: Mapping[str, Any], *, submitter: Submitter, model_ref: str = "champion",
              engine: str = "compiled", source: str = "console", persist: bool = True,
              applied_at: datetime | None = None) -> ScoreResult:
        """Validate, score and (by default) record one application with its arm and its audit row.
        Concurrent calls share their transaction (group commit); each returns once its rows are committed."""
        job = self.prepare(raw, submitter=submitter, model_ref=model_ref, engine=engine, applied_at=applied_at)
        if not persist:
            return job[1]
        writer = self._writers.get(source) or self._writers.setdefault(
            source, GroupCommit(functools.partial(self.record, source=source)))
        return writer.submit(job)

    def prepare(self, raw: Mapping[str, Any], *, submitter: Submitter, model_ref: str = "champion",
                engine: str = "compiled", applied_at: datetime | None = None) -> ScoreJob:
        """Validate and score one application without recording it (:meth:`record` writes it)."""
        t0 = time.perf_counter()
        model = self._canary_model(raw, model_ref) or self.models.get(model_ref)
        clean = self.validate(raw, model)
        t1 = time.perf_counter()
        phase = self.phase_at(applied_at or self.clock.now())
        result = self.evaluate(clean, model, engine=engine, policy=self.policy_for(model, phase))
        timings = {"validate_ms": (t1 - t0) * 1000, "score_ms": result.latency_ms}
        return Intake(raw, submitter, applied_at), result, phase, timings

    def record(self, jobs: Sequence[ScoreJob], *, source: str) -> list[ScoreResult]:
        """Write prepared applications, their predictions and audit rows in one transaction (:meth:`_persist`)."""
        return self._persist([j[0] for j in jobs], [j[1] for j in jobs], [j[2] for j in jobs], source=source,
                             timings=[j[3] for j in jobs])

    def score_many(self, rows: Sequence[Mapping[str, Any]], *, submitter: Submitter, model_ref: str = "champion",
                   engine: str = "compiled", source: str = "console", persist: bool = True) -> list[ScoreResult]:
        """Score a batch (vectorised when the primary serves) and record it in one transaction."""
        return self.score_intake([Intake(r, submitter) for r in rows], model_ref=model_ref, engine=engine,
                                 source=source, persist=persist)

    def score_intake(self, items: Sequence[Intake], *, model_ref: str = "champion", engine: str = "compiled",
                     source: str = "console", persist: bool = True) -> list[ScoreResult]:
        """Score applications from several officers and dates in one transaction (the simulator and
        batch clients use this): each is scored under the rollout phase in force when it was made."""
        t0 = time.perf_counter()
        model = self.models.get(model_ref)
        cleans = self.validate_many([it.raw for it in items], model)
        t1 = time.perf_counter()
        now = self.clock.now()
        phases = [self.phase_at(it.applied_at or now) for it in items]
        served = self._route_many([it.raw for it in items], model_ref, model, cleans)
        results: list[ScoreResult | None] = [None] * len(items)
        groups: dict[tuple[str, int], list[int]] = {}
        for i, ph in enumerate(phases):
            groups.setdefault((served[i].version, ph.version), []).append(i)
        for idx in groups.values():
            m = served[idx[0]]
            policy = self.policy_for(m, phases[idx[0]])
            sub = [cleans[i] for i in idx]
            if engine == "compiled" and m.primary is not None:
                scored = self._batch(sub, m, policy)
            else:
                scored = [self.evaluate(c, m, engine=engine, use_cache=False, policy=policy) for c in sub]
            for i, r in zip(idx, scored, strict=True):
                results[i] = r
        done = [r for r in results if r is not None]
        if not persist:
            return done
        n = max(len(items), 1)
        per_row = {"validate_ms": (t1 - t0) * 1000 / n, "score_ms": (time.perf_counter() - t1) * 1000 / n}
        return self._persist(items, done, phases, source=source, timings=[per_row] * len(done))

    def _batch(self, cleans: list[dict[str, Any]], model: ServingModel, policy: Policy | None = None
               ) -> list[ScoreResult]:
        if not cleans:
            return []
        policy = policy or model.policy
        X = model.encoder.transform_records(cleans)
        raw = model.primary.predict_proba(X)
        phi, base = model.primary.attributions(X)
        members = model.primary.member_probas(X)
        pds = model.calibrate(raw, model="primary")
        phi_rounded = np.round(phi, 8)
        margins = base + phi.sum(axis=1)
        out = []
        for i, clean in enumerate(cleans):
            o = decide(float(raw[i]), loan_amount=float(clean.get("loan_amount") or 0.0),
                       members=members[i], fallback_used=False, policy=policy)
            out.append(ScoreResult(
                model_name=model.name, model_version=model.version, model_role="primary", engine="compiled",
                pd=float(pds[i]), raw_score=float(raw[i]), risk_class=o.risk_class, confidence=o.confidence,
                recommendation=o.recommendation, policy_reasons=list(o.policy_reasons),
                reasons=model.reasons.top(phi[i], clean),
                attributions=dict(zip(model.columns, phi_rounded[i].tolist(), strict=True)),
                base_value=float(base[i]), margin=float(margins[i]), member_spread=o.member_spread,
                features=clean))
        return out

    def _persist(self, items: Sequence[Intake], results: list[ScoreResult], phases: list[Phase], *, source: str,
                 timings: list[dict[str, float]]) -> list[ScoreResult]:
        """Write applications (with their arm), predictions and audit rows in one transaction.

        Rows go in as multi-row INSERTs with ids made here (a batch of thousands costs a few
        statements, not thousands of flushes). A re-submitted application id with the same
        features is re-scored (new prediction, same application and arm); with different features
        the whole batch is refused (:class:`ApplicationConflict`) and nothing is written.
        """
        now = self.clock.now()
        t_db = time.perf_counter()
        saved: list[ScoreResult] = []
        with self.db.transaction() as s:
            ids = [str(it.raw["application_id"]) for it in items if it.raw.get("application_id")]
            existing: dict[str, dict[str, Any]] = {}
            for chunk in range(0, len(ids), 5000):
                for row in s.execute(select(Application.id, Application.external_id, Application.features,
                                            Application.arm, Application.phase, Application.ai_visible)
                                     .where(Application.external_id.in_(ids[chunk:chunk + 5000]))):
                    existing[row.external_id] = {"id": row.id, "features": row.features, "arm": row.arm,
                                                 "phase": row.phase, "ai_visible": row.ai_visible}
            # the database component of each request's timings: the lookup of known applications (the
            # INSERTs come after the row is built; their time is in ScoreResult.extra["db_ms"])
            db_read_ms = (time.perf_counter() - t_db) * 1000 / max(len(items), 1)
            first: dict[str, str] = {}  # id -> features hash: the stored application's, else the batch's first
            for it, res in zip(items, results, strict=True):  # check all first: a conflict writes nothing
                ext = str(it.raw.get("application_id")) if it.raw.get("application_id") else None
                if ext is None:
                    continue
                if ext not in first:
                    first[ext] = feature_hash(existing[ext]["features"] if ext in existing else res.features)
                if first[ext] != feature_hash(res.features):  # also two applications under one id in a batch
                    raise ApplicationConflict(CONFLICT.format(id=ext[:64]))
            apps: list[dict[str, Any]] = []
            preds: list[dict[str, Any]] = []
            audits: list[AuditEntry] = []
            for it, res, phase, timing in zip(items, results, phases, timings, strict=True):
                ext = str(it.raw.get("application_id")) if it.raw.get("application_id") else None
                known = existing.get(ext) if ext else None
                if known is None:
                    app_id = uuid.uuid4()
                    applicant = str(it.raw.get("applicant_id") or uuid.uuid4().hex[:12])
                    loan = float(res.features.get("loan_amount") or 0.0)
                    sub = it.submitter
                    a = assign(phase, applicant_id=applicant, loan_amount=loan,
                               officer=OfficerInfo(sub.username, sub.role, sub.senior))
                    arm, phase_name, visible = a.arm, a.phase, a.ai_visible
                    apps.append({"id": app_id, "external_id": ext,  # PII columns: encrypted, see security/pii.py
                                 **protect_intake(self.pii, app_id, applicant[:64], it.raw.get("applicant")),
                                 "features": res.features,
                                 "protected": {k: it.raw[k] for k in PROTECTED_PASSTHROUGH if it.raw.get(k) is not None},
                                 "loan_amount": loan, "applied_at": it.applied_at or _as_datetime(it.raw.get("applied_at"))
                                 or now, "created_at": now, "officer_id": sub.user_id, "source": source, "arm": arm,
                                 "phase": phase_name, "rollout_version": a.version, "ai_visible": visible})
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
                              "timings": {k: round(v, 4) for k, v in {**timing, "db_read_ms": db_read_ms}.items()}})
                audits.append(AuditEntry(
                    actor=it.submitter.username, role=it.submitter.role,
                    action="application_rescored" if rescored else "application_scored", entity_type="prediction",
                    entity_id=str(pred_id), at=now,
                    payload={"application_id": str(app_id), "model_version": res.model_version,
                             "model_role": res.model_role, "engine": res.engine, "pd": round(res.pd, 6),
                             "recommendation": res.recommendation, "reasons": [r["code"] for r in res.reasons],
                             "feature_hash": res.extra.get("feature_hash") or feature_hash(res.features),
                             "arm": arm, "phase": phase_name,
                             "ai_visible": visible}))
                saved.append(replace(res, application_id=str(app_id), prediction_id=str(pred_id), arm=arm,
                                     phase=phase_name, ai_visible=bool(visible)))
            if apps:  # Core INSERTs of the tables (the ORM's bulk path adds per-row work and nothing else here)
                s.execute(insert(_APPLICATIONS), apps)
            s.execute(insert(_PREDICTIONS), preds)
            append_many(s, audits)
        db_ms = (time.perf_counter() - t_db) * 1000 / max(len(saved), 1)
        return [replace(r, extra={**r.extra, "db_ms": db_ms}) for r in saved]


def _as_datetime(v: Any) -> datetime | None:
    if isinstance(v, datetime):
        return v
    if hasattr(v, "to_pydatetime"):
        return v.to_pydatetime()
    return None
