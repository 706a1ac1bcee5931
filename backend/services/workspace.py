"""The loan officer's workspace on one scored decision: the stored result, its explanation, and Q&A.

* **Access**: an officer (``loan_officer``) sees only the applications they submitted; a role with
  :attr:`Perm.VIEW_ALL_DECISIONS` sees all. Anything else, a missing id or a malformed one raises
  :class:`DecisionNotFound` (:data:`NOT_FOUND`): not-yours and missing are indistinguishable. The
  actor's role and state come from the users table when the actor is a user; a system actor that
  is not one (the CLI) is taken at its stated role.
* **Explanations** come from the :class:`ExplanationEngine` (the template by default). The text
  shown, its provider, the fact-check verdict, the usage row of every LLM call and ONE audit row
  (``explanation_shown``) are written in one transaction.
* **Questions** are data, never instructions: stored verbatim (NUL and lone surrogates are refused
  with a clear message, see :func:`override_rules.check_text`), answered by :class:`DecisionQA`
  (which never changes a decision), and written with ONE audit row (``qa_exchange``).
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from backend.db.engine import Database
from backend.db.repo_audit import AuditRepository
from backend.db.repo_explain import ExplainRepository
from backend.db.tables import Application, ExplanationRow, LLMUsageRow, Prediction, QAExchange
from backend.permissions import Perm, allowed
from backend.ports import Clock
from backend.services.auth import UserInfo
from backend.services.explain.engine import EngineStream, ExplanationEngine, ExplanationOutcome, StreamEvent
from backend.services.explain.factcheck import fact_check
from backend.services.explain.providers import LLMUsage
from backend.services.explain.record import DecisionRecord
from backend.services.override_rules import (
    NOT_FOUND,
    DecisionError,
    DecisionNotFound,
    check_text,
    may_see,
    parse_id,
)
from backend.services.qa import DecisionQA
from backend.services.qa_compare import MIN_COUNT, FrameComparisonStats
from backend.services.scoring import ScoreResult, ScoringService

__all__ = ["AI_HIDDEN", "AIHidden", "ExplanationStream", "ManualCase", "MAX_QUESTION", "QUESTION_EMPTY", "QUESTION_TOO_LONG", "DecisionError", "DecisionNotFound",
           "StoredAnswer", "StoredExplanation", "WorkspaceService"]

MAX_QUESTION = 1000
COMPARISON_ROWS = 5000
QUESTION_EMPTY = "Type a question about this decision (it is empty)."
QUESTION_TOO_LONG = "A question must have at most {max} characters (it has {n}); shorten it and ask again."
AI_HIDDEN = ("This application is decided without the AI ({why}): the model's score is recorded for "
             "measurement only and is not shown.")
FEATURE_OFF = "{feature} are switched off in the current rollout phase ({phase})."


class AIHidden(DecisionError):
    """The application is in the control arm or shadow mode: its prediction is not for the officer."""


@dataclass(frozen=True)
class ManualCase:
    """What an officer deciding without the AI may see: the application, not the model."""

    application_id: str
    prediction_id: str
    features: dict[str, Any]
    loan_amount: float
    applied_at: datetime | None
    arm: str | None
    phase: str | None


def hidden_reason(app: Application) -> str:
    return "shadow mode" if app.phase == "shadow" else f"{app.arm or 'control'} arm"


@dataclass(frozen=True)
class StoredExplanation:
    id: str
    text: str
    provider: str
    model: str
    fact_check_ok: bool
    failures: list[dict[str, Any]]
    fallback_used: bool
    created_at: datetime | None = None


@dataclass(frozen=True)
class StoredAnswer:
    id: str
    question: str
    text: str
    intent: str
    refused: bool
    counterfactuals: list[dict[str, Any]] = field(default_factory=list)
    at: datetime | None = None


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _jsonable(value: Any) -> Any:
    """Plain JSON values (tuples → lists, numpy scalars → numbers, NaN/inf → None), as stored and read back."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _explanation(row: ExplanationRow) -> StoredExplanation:
    return StoredExplanation(id=str(row.id), text=row.text, provider=row.provider, model=row.model,
                             fact_check_ok=bool(row.fact_check_ok), failures=list(row.failures or []),
                             fallback_used=bool(row.fallback_used), created_at=row.created_at)


def _answer(row: QAExchange) -> StoredAnswer:
    return StoredAnswer(id=str(row.id), question=row.question, text=row.answer, intent=row.intent,
                        refused=bool(row.refused), counterfactuals=list(row.counterfactuals or []), at=row.at)


class ExplanationStream:
    """Iterate for :class:`StreamEvent` (``text`` pieces already fact-checked, ``reset``, ``final``).

    When iteration ends the explanation, its usage rows and its audit row are stored and
    ``stored`` is set. Abandoned mid-way, nothing is stored (the officer saw only checked text).
    """

    def __init__(self, ws: WorkspaceService, stream: EngineStream, ctx: tuple[Any, ...]) -> None:
        self._ws, self._stream, self._ctx = ws, stream, ctx
        self.stored: StoredExplanation | None = None

    def __iter__(self) -> Iterator[StreamEvent]:
        yield from self._stream
        assert self._stream.outcome is not None  # set when the engine stream is exhausted
        pred, app, role, actor, record = self._ctx
        self.stored = self._ws._store(pred, app, role, actor, record, self._stream.outcome)


class WorkspaceService:
    def __init__(self, db: Database, scoring: ScoringService, engine: ExplanationEngine, clock: Clock) -> None:
        self.db = db
        self.scoring = scoring
        self.engine = engine
        self.clock = clock
        self.qa = DecisionQA(scoring)

    # -- reads -------------------------------------------------------------------------------------
    def result(self, prediction_id: str, *, actor: UserInfo) -> ScoreResult:
        """The stored prediction rebuilt as a :class:`ScoreResult` (never re-scored).

        Raises :class:`AIHidden` for an officer when the application is decided without the AI
        (control arm, shadow mode); managers (VIEW_ALL_DECISIONS) see it, flagged ``ai_visible=False``.
        """
        pred, app, role = self._load(prediction_id, actor)
        if app.ai_visible is False and not allowed(role, Perm.VIEW_ALL_DECISIONS):
            raise AIHidden(AI_HIDDEN.format(why=hidden_reason(app)))
        return self._rebuild(pred, app)

    def case(self, prediction_id: str, *, actor: UserInfo) -> ManualCase:
        """The application without the model's output (for deciding in the control arm)."""
        pred, app, _role = self._load(prediction_id, actor)
        return ManualCase(application_id=str(app.id), prediction_id=str(pred.id), features=dict(app.features or {}),
                          loan_amount=float(app.loan_amount), applied_at=app.applied_at, arm=app.arm, phase=app.phase)

    def _require_ai(self, app: Application, feature: str, label: str) -> None:
        if app.ai_visible is False:
            raise AIHidden(AI_HIDDEN.format(why=hidden_reason(app)))
        phase = self.scoring.phase_at(self.clock.now())
        if not phase.enabled(feature):
            raise DecisionError(FEATURE_OFF.format(feature=label, phase=phase.label))

    def latest_explanation(self, prediction_id: str, *, actor: UserInfo) -> StoredExplanation | None:
        pred, _app, _role = self._load(prediction_id, actor)
        with self.db.read() as s:
            row = ExplainRepository(s).latest_explanation(pred.id)
            return _explanation(row) if row is not None else None

    def history(self, prediction_id: str, *, actor: UserInfo) -> list[StoredAnswer]:
        """The decision's questions and answers, oldest first."""
        pred, _app, _role = self._load(prediction_id, actor)
        with self.db.read() as s:
            return [_answer(r) for r in ExplainRepository(s).exchanges(pred.id)]

    # -- writes ------------------------------------------------------------------------------------
    def explain(self, prediction_id: str, *, actor: UserInfo) -> StoredExplanation:
        """Explain the decision, store what the officer is shown, its usage rows and one audit row."""
        pred, app, role = self._load(prediction_id, actor)
        self._require_ai(app, "explanations", "GenAI explanations")
        record = DecisionRecord.from_score(self._rebuild(pred, app))
        return self._store(pred, app, role, actor, record, self.engine.explain(record))

    def explain_stream(self, prediction_id: str, *, actor: UserInfo) -> ExplanationStream:
        """Like :meth:`explain`, but iterable: checked sentences as the LLM writes them (see
        :class:`~backend.services.explain.engine.EngineStream`); ``stored`` is set at the end."""
        pred, app, role = self._load(prediction_id, actor)
        self._require_ai(app, "explanations", "GenAI explanations")
        record = DecisionRecord.from_score(self._rebuild(pred, app))
        return ExplanationStream(self, self.engine.stream(record), (pred, app, role, actor, record))

    @property
    def streams(self) -> bool:
        """True when an LLM provider is configured (the template has nothing to stream)."""
        return bool(self.engine.providers)

    def _store(self, pred: Prediction, app: Application, role: str, actor: UserInfo, record: DecisionRecord,
               outcome: ExplanationOutcome) -> StoredExplanation:
        exp = outcome.explanation
        shown = fact_check(exp.text, record)  # the shown text is checked too (template included)
        failures = [{"claim": f.claim, "kind": f.kind, "detail": f.detail}
                    for f in [*outcome.failures, *shown.failures]]
        now = self.clock.now()
        with self.db.transaction() as s:
            repo = ExplainRepository(s)
            row = repo.add_explanation(ExplanationRow(
                prediction_id=pred.id, created_at=now, actor=actor.username[:64], provider=exp.provider,
                model=exp.model or "", text=exp.text, fact_check_ok=not failures, failures=failures,
                fallback_used=bool(exp.fallback_used)))
            repo.add_usage([self._usage_row(u, pred.id, now) for u in outcome.usage])
            AuditRepository(s).append(
                actor=actor.username, role=role, action="explanation_shown", entity_type="explanation",
                entity_id=str(row.id), at=now,
                payload={"prediction_id": str(pred.id), "application_id": str(app.id), "provider": exp.provider,
                         "model": exp.model, "fact_check_ok": not failures, "fallback_used": bool(exp.fallback_used),
                         "failures": failures, "llm_calls": len(outcome.usage), "text_sha256": _sha(exp.text)})
            return _explanation(row)

    def ask(self, prediction_id: str, question: str, *, actor: UserInfo) -> StoredAnswer:
        """Answer one question about the decision; store it verbatim with one audit row."""
        if not isinstance(question, str):
            raise DecisionError(QUESTION_EMPTY)
        check_text(question, required=True, min_len=1, max_len=MAX_QUESTION, too_short=QUESTION_EMPTY,
                   too_long=QUESTION_TOO_LONG)
        pred, app, role = self._load(prediction_id, actor)
        self._require_ai(app, "qa", "Questions about a decision")
        result = self._rebuild(pred, app)
        answer = self.qa.ask(question, result=result, comparison=self._comparison())
        now = self.clock.now()
        with self.db.transaction() as s:
            repo = ExplainRepository(s)
            row = repo.add_exchange(QAExchange(
                prediction_id=pred.id, at=now, turn=repo.next_turn(pred.id), actor=actor.username[:64],
                role=role, question=question, answer=answer.text, intent=answer.intent[:32],
                refused=answer.refused, counterfactuals=_jsonable(answer.counterfactuals)))
            AuditRepository(s).append(
                actor=actor.username, role=role, action="qa_exchange", entity_type="qa_exchange",
                entity_id=str(row.id), at=now,
                payload={"prediction_id": str(pred.id), "application_id": str(app.id), "question": question,
                         "intent": answer.intent, "refused": answer.refused, "answer_sha256": _sha(answer.text),
                         "counterfactuals": len(answer.counterfactuals)})
            return _answer(row)

    # -- helpers -----------------------------------------------------------------------------------
    def _load(self, prediction_id: str | uuid.UUID, actor: UserInfo) -> tuple[Prediction, Application, str]:
        """The prediction, its application and the actor's effective role, or DecisionNotFound."""
        pid = parse_id(prediction_id)
        with self.db.read() as s:
            repo = ExplainRepository(s)
            role = actor.role
            user = repo.user(actor.id) if isinstance(actor.id, uuid.UUID) else None
            if user is not None:
                if user.disabled:
                    raise DecisionNotFound(NOT_FOUND)
                role = user.role
            found = repo.load_prediction(pid)
            if found is None:
                raise DecisionNotFound(NOT_FOUND)
            pred, app = found
            if not may_see(role, actor.id, app.officer_id):
                raise DecisionNotFound(NOT_FOUND)
            return pred, app, role

    def _rebuild(self, pred: Prediction, app: Application) -> ScoreResult:
        features = dict(app.features or {})
        base, margin, spread = pred.base_value, pred.margin, pred.member_spread
        if base is None or margin is None or spread is None:  # rows written before migration 0002
            base, margin, spread = self._recompute(features, pred)
        return ScoreResult(
            model_name=pred.model_name, model_version=pred.model_version, model_role=pred.model_role,
            engine=pred.engine, pd=float(pred.pd), raw_score=float(pred.raw_score), risk_class=pred.risk_class,
            confidence=float(pred.confidence), recommendation=pred.recommendation,
            policy_reasons=list(pred.policy_reasons or []), reasons=list(pred.reasons or []),
            attributions={k: float(v) for k, v in (pred.attributions or {}).items()}, base_value=float(base),
            margin=float(margin), member_spread=float(spread), features=features, cache_hit=False,
            latency_ms=float(pred.latency_ms or 0.0), application_id=str(app.id), prediction_id=str(pred.id),
            fallback_error=pred.fallback_error, arm=app.arm, phase=app.phase,
            ai_visible=True if app.ai_visible is None else bool(app.ai_visible))

    def _recompute(self, features: dict[str, Any], pred: Prediction) -> tuple[float, float, float]:
        """Base value, margin and spread of an old row: from its model if still served, else additive."""
        total = float(sum(float(v) for v in (pred.attributions or {}).values()))
        try:
            model = self.scoring.models.get(pred.model_version)
            r = self.scoring.evaluate(self.scoring.validate(features, model), model, use_cache=False)
            return r.base_value, r.margin, r.member_spread
        except Exception:  # noqa: BLE001 - the model is gone: keep the stored attributions additive
            return 0.0, total, 0.0

    def _comparison(self) -> FrameComparisonStats | None:
        """Statistics of the newest approved applications in the book (None below MIN_COUNT rows)."""
        with self.db.read() as s:
            rows = ExplainRepository(s).approved_features(COMPARISON_ROWS)
        if len(rows) < MIN_COUNT:
            return None
        return FrameComparisonStats(pd.DataFrame.from_records(rows))

    @staticmethod
    def _usage_row(u: LLMUsage, prediction_id: uuid.UUID, now: datetime) -> LLMUsageRow:
        error = u.error
        if u.failed_claims:
            error = ((error + "; ") if error else "") + "fact-check failed: " + "; ".join(u.failed_claims)
        return LLMUsageRow(
            at=u.created_at or now, purpose="explanation", prediction_id=prediction_id, provider=u.provider[:32],
            model=(u.model or "")[:128], input_tokens=u.input_tokens, output_tokens=u.output_tokens,
            cost_usd=u.cost_usd, latency_ms=float(u.latency_ms or 0.0), fallback_used=u.fallback_used,
            fact_check_ok=None if u.fact_check == "not_checked" else u.fact_check == "passed", error=error)
