"""Scoring use case, shared by the console, the API and the CLI.

validate → cache lookup (feature hash + model version + engine) → score (compiled by default;
``reference`` = scikit-learn) → attributions → reasons → policy → persist the application, the
prediction and one audit row in a single transaction. When the primary model fails, the fallback
forest scores and the result says so (and the policy sends it to manual review).

Canary: while a canary runs (:mod:`backend.models.canary`), a request for the ``champion`` is
routed per application: a keyed hash bucket below the canary share is scored by the canary
version, the rest by the champion; the prediction records the version that scored it.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import numpy as np

from backend.compliance import PiiKeyRing, check_applicants
from backend.domain import (
    Actor,
    ApplicationInvalid,
    FieldError,
    Policy,
    decide,
    parse_key_factors,
    validate_application,
    validate_many,
)
from backend.models import CanaryRouter, ModelProvider, ModelUnavailable, ServingModel
from backend.platform.db.engine import Database, json_dumps
from backend.platform.db.group_commit import GroupCommit
from backend.platform.ports import Cache, Clock
from backend.rollout import Phase, RolloutService, default_phase, with_policy
from backend.scoring.card import Card, card
from backend.scoring.recording import record_scored
from backend.scoring.result import (
    META_FIELDS,
    PROTECTED_PASSTHROUGH,
    Intake,
    ScoreJob,
    ScoreResult,
    feature_hash,
)

CACHE_TTL_SECONDS = 3600.0
#: ``also(session, saved)``: more work in the scoring transaction (see :meth:`ScoringService._persist`)
AlsoInTransaction = Callable[[Any, list[ScoreResult]], None]


def _policy_key(policy: Policy) -> str:
    return ",".join(f"{v:g}" for v in (policy.score_cutoff, policy.confidence_threshold, policy.loan_amount_cap,
                                        policy.disagreement_threshold))


def check_key_factors(raws: Sequence[Mapping[str, Any]]) -> None:
    """Refuse an application whose ``bureau_key_factors`` holds an unknown code or too many (before any write)."""
    for i, raw in enumerate(raws):
        try:
            parse_key_factors(raw.get("bureau_key_factors"))
        except ValueError as exc:
            where = "bureau_key_factors" if len(raws) == 1 else f"row {i + 1}: bureau_key_factors"
            raise ApplicationInvalid([FieldError(where, str(exc).split(": ", 1)[-1])]) from None


class ScoringService:
    def __init__(self, db: Database, cache: Cache, models: ModelProvider, clock: Clock,
                 rollout: RolloutService | None = None, pii: PiiKeyRing | None = None,
                 canary: CanaryRouter | None = None) -> None:
        self.pii = pii  # encrypts the applicant id and direct PII of every recorded application
        self.db = db
        self.cache = cache
        self.models = models
        self.clock = clock
        self.rollout = rollout
        self.canary = canary if canary is not None else CanaryRouter(models)
        self._default_phase = default_phase(models.policy_settings)
        # concurrent single-application requests share one transaction (see backend/platform/db/group_commit.py)
        self._writers: dict[str, GroupCommit[ScoreJob, ScoreResult]] = {}

    # -- pure computation ----------------------------------------------------------------------
    def validate(self, raw: Mapping[str, Any], model: ServingModel) -> dict[str, Any]:
        clean = validate_application(raw, columns=model.columns, kinds=model.kinds, categories=model.categories,
                                     ignore_extra=PROTECTED_PASSTHROUGH + META_FIELDS)
        check_applicants([raw])  # the optional personal data, refused here (before any write), never echoed
        check_key_factors([raw])
        return clean

    def validate_many(self, raws: Sequence[Mapping[str, Any]], model: ServingModel) -> list[dict[str, Any]]:
        """:meth:`validate` for a batch (vectorized; the same result and the same errors)."""
        cleans = validate_many(raws, columns=model.columns, kinds=model.kinds, categories=model.categories,
                               ignore_extra=PROTECTED_PASSTHROUGH + META_FIELDS)
        check_applicants(raws)
        check_key_factors(raws)
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

    def card(self, result: ScoreResult) -> Card:
        """The decision card's figures (:mod:`backend.scoring.card`) from the model version that scored it."""
        try:
            model = self.models.get(result.model_version)
        except ModelUnavailable:
            model = None
        return card(result, model)

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

    def score(self, raw: Mapping[str, Any], *, submitter: Actor, model_ref: str = "champion",
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

    def prepare(self, raw: Mapping[str, Any], *, submitter: Actor, model_ref: str = "champion",
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

    def record(self, jobs: Sequence[ScoreJob], *, source: str, also: AlsoInTransaction | None = None
               ) -> list[ScoreResult]:
        """Write prepared applications, their predictions and audit rows in one transaction (:meth:`_persist`)."""
        return self._persist([j[0] for j in jobs], [j[1] for j in jobs], [j[2] for j in jobs], source=source,
                             timings=[j[3] for j in jobs], also=also)

    def score_many(self, rows: Sequence[Mapping[str, Any]], *, submitter: Actor, model_ref: str = "champion",
                   engine: str = "compiled", source: str = "console", persist: bool = True,
                   for_officer: Actor | None = None, also: AlsoInTransaction | None = None) -> list[ScoreResult]:
        """Score a batch (vectorised when the primary serves) and record it in one transaction.
        ``for_officer``: the officer whose book the applications join when ``submitter`` queued them."""
        return self.score_intake([Intake(r, submitter, for_officer=for_officer) for r in rows], model_ref=model_ref,
                                 engine=engine, source=source, persist=persist, also=also)

    def score_intake(self, items: Sequence[Intake], *, model_ref: str = "champion", engine: str = "compiled",
                     source: str = "console", persist: bool = True, also: AlsoInTransaction | None = None,
                     timings: Sequence[dict[str, float]] | None = None) -> list[ScoreResult]:
        """Score applications from several officers and dates in one transaction (the simulator and
        batch clients use this): each is scored under the rollout phase in force when it was made.
        ``timings``: the request timings to record per item instead of this batch's average (the simulator's
        simulated requests)."""
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
        if timings is not None and len(timings) != len(done):
            raise ValueError(f"{len(timings)} timings for {len(done)} applications")
        return self._persist(items, done, phases, source=source, also=also,
                             timings=list(timings) if timings is not None else [per_row] * len(done))

    def batch_policy(self, model: ServingModel) -> tuple[Phase, Policy]:
        """The rollout phase in force now and the policy it gives ``model`` (a batch file is scored under one)."""
        phase = self.phase_at(self.clock.now())
        return phase, self.policy_for(model, phase)

    def record_frame(self, raws: Sequence[Mapping[str, Any]], results: list[ScoreResult], phase: Phase, *,
                     submitter: Actor, source: str) -> list[ScoreResult]:
        """Record results scored on arrays (:mod:`backend.scoring.frames`): applications, predictions and
        audit rows of one chunk of a batch file in one transaction, as :meth:`score_many` records them."""
        items = [Intake(r, submitter) for r in raws]
        return self._persist(items, results, [phase] * len(items), source=source,
                             timings=[{}] * len(items))

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
                 timings: list[dict[str, float]], also: AlsoInTransaction | None = None) -> list[ScoreResult]:
        """Write applications (with their arm), predictions and audit rows in one transaction
        (:func:`backend.scoring.recording.record_scored`); ``extra["db_ms"]``: database time per result.
        ``also(session, saved)`` runs in that transaction after the rows are written (the API stores its
        idempotent answer there, so the answer commits exactly when the scores do)."""
        now = self.clock.now()
        t_db = time.perf_counter()
        with self.db.transaction() as s:
            saved = record_scored(s, items, results, phases, pii=self.pii, now=now, source=source, timings=timings,
                                  started=t_db)
            if also is not None:
                also(s, saved)
        db_ms = (time.perf_counter() - t_db) * 1000 / max(len(saved), 1)
        return [replace(r, extra={**r.extra, "db_ms": db_ms}) for r in saved]
