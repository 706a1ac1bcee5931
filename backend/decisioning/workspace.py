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
  (which never changes a decision), and written with ONE audit row (``qa_exchange``); :meth:`ask_stream`
  shows the LLM's checked sentences as they come and stores the same exchange.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from backend.compliance import AuditRepository
from backend.decisioning.workspace_qa import (
    CONVERSATION_BAD,
    CONVERSATION_ELSEWHERE,
    CONVERSATION_UNKNOWN,
    AnswerStream,
    LazyStats,
    StoredAnswer,
    offline_turn,
    store_exchange,
    stored_answer,
)
from backend.decisioning.workspace_qa import (
    sha as _sha,
)
from backend.domain import (
    NOT_FOUND,
    Actor,
    DecisionError,
    DecisionNotFound,
    Perm,
    allowed,
    check_text,
    may_see,
    parse_id,
)
from backend.explanations import (
    LLMQA,
    MIN_COUNT,
    Answer,
    DecisionQA,
    DecisionRecord,
    EngineStream,
    ExplainRepository,
    ExplanationEngine,
    ExplanationOutcome,
    FrameComparisonStats,
    QAStream,
    StreamEvent,
    fact_check,
)
from backend.platform.db.engine import Database
from backend.platform.ports import Clock
from backend.scoring import ScoreResult, ScoringService

if TYPE_CHECKING:
    from backend.platform.db.tables_book import Application, ExplanationRow, Prediction

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
    bureau_key_factors: tuple[str, ...] = ()  # the bureau's key-factor codes sent with the score (0011)


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


def _explanation(row: ExplanationRow) -> StoredExplanation:
    return StoredExplanation(id=str(row.id), text=row.text, provider=row.provider, model=row.model,
                             fact_check_ok=bool(row.fact_check_ok), failures=list(row.failures or []),
                             fallback_used=bool(row.fallback_used), created_at=row.created_at)


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
    def __init__(self, db: Database, scoring: ScoringService, engine: ExplanationEngine, clock: Clock, *,
                 qa: DecisionQA | None = None, qa_llm: LLMQA | None = None) -> None:
        self.db = db
        self.scoring = scoring
        self.engine = engine
        self.clock = clock
        self.qa = qa if qa is not None else DecisionQA(scoring)
        self.qa_llm = qa_llm  # the conversation through the LLM's tools (None: the offline engine answers)

    # -- reads -------------------------------------------------------------------------------------
    def result(self, prediction_id: str, *, actor: Actor) -> ScoreResult:
        """The stored prediction rebuilt as a :class:`ScoreResult` (never re-scored).

        Raises :class:`AIHidden` for an officer when the application is decided without the AI
        (control arm, shadow mode); managers (VIEW_ALL_DECISIONS) see it, flagged ``ai_visible=False``.
        """
        pred, app, role = self._load(prediction_id, actor)
        if app.ai_visible is False and not allowed(role, Perm.VIEW_ALL_DECISIONS):
            raise AIHidden(AI_HIDDEN.format(why=hidden_reason(app)))
        return self._rebuild(pred, app)

    def case(self, prediction_id: str, *, actor: Actor) -> ManualCase:
        """The application without the model's output (for deciding in the control arm)."""
        pred, app, _role = self._load(prediction_id, actor)
        return ManualCase(application_id=str(app.id), prediction_id=str(pred.id), features=dict(app.features or {}),
                          loan_amount=float(app.loan_amount), applied_at=app.applied_at, arm=app.arm, phase=app.phase,
                          bureau_key_factors=tuple(app.bureau_key_factors or ()))

    def _require_ai(self, app: Application, feature: str, label: str) -> None:
        if app.ai_visible is False:
            raise AIHidden(AI_HIDDEN.format(why=hidden_reason(app)))
        phase = self.scoring.phase_at(self.clock.now())
        if not phase.enabled(feature):
            raise DecisionError(FEATURE_OFF.format(feature=label, phase=phase.label))

    def latest_explanation(self, prediction_id: str, *, actor: Actor) -> StoredExplanation | None:
        pred, _app, _role = self._load(prediction_id, actor)
        with self.db.read() as s:
            row = ExplainRepository(s).latest_explanation(pred.id)
            return _explanation(row) if row is not None else None

    def history(self, prediction_id: str, *, actor: Actor) -> list[StoredAnswer]:
        """The decision's questions and answers, oldest first."""
        pred, _app, _role = self._load(prediction_id, actor)
        with self.db.read() as s:
            return [stored_answer(r) for r in ExplainRepository(s).exchanges(pred.id)]

    # -- writes ------------------------------------------------------------------------------------
    def explain(self, prediction_id: str, *, actor: Actor) -> StoredExplanation:
        """Explain the decision, store what the officer is shown, its usage rows and one audit row."""
        pred, app, role = self._load(prediction_id, actor)
        self._require_ai(app, "explanations", "GenAI explanations")
        reused = self._reuse(pred, app, role, actor)
        if reused is not None:
            return reused
        record = DecisionRecord.from_score(self._rebuild(pred, app))
        return self._store(pred, app, role, actor, record, self.engine.explain(record))

    def _reuse(self, pred: Prediction, app: Application, role: str, actor: Actor) -> StoredExplanation | None:
        """The stored explanation of this decision when the configured primary LLM (same provider and model)
        wrote it and it passed the fact-check: an identical request is not paid for again (one audit row says it
        was shown again). A template (no LLM, or a fallback after a failure) is never reused: the next request
        tries the LLM again."""
        primary = self.engine.primary
        if primary is None:
            return None
        with self.db.transaction() as s:
            row = ExplainRepository(s).latest_explanation(pred.id)
            if row is None or (row.provider, row.model) != (primary.provider, primary.model) or not row.fact_check_ok:
                return None
            AuditRepository(s).append(
                actor=actor.username, role=role, action="explanation_shown", entity_type="explanation",
                entity_id=str(row.id), at=self.clock.now(),
                payload={"prediction_id": str(pred.id), "application_id": str(app.id), "provider": row.provider,
                         "model": row.model, "fact_check_ok": True, "reused": True, "llm_calls": 0,
                         "text_sha256": _sha(row.text)})
            return _explanation(row)

    def explain_stream(self, prediction_id: str, *, actor: Actor) -> ExplanationStream:
        """Like :meth:`explain`, but iterable: checked sentences as the LLM writes them (see
        :class:`~backend.explanations.engine.EngineStream`); ``stored`` is set at the end."""
        pred, app, role = self._load(prediction_id, actor)
        self._require_ai(app, "explanations", "GenAI explanations")
        record = DecisionRecord.from_score(self._rebuild(pred, app))
        return ExplanationStream(self, self.engine.stream(record), (pred, app, role, actor, record))

    @property
    def streams(self) -> bool:
        """True when an LLM provider is configured (the template has nothing to stream)."""
        return bool(self.engine.providers)

    def _store(self, pred: Prediction, app: Application, role: str, actor: Actor, record: DecisionRecord,
               outcome: ExplanationOutcome) -> StoredExplanation:
        exp = outcome.explanation
        shown = fact_check(exp.text, record)  # the shown text is checked too (template included)
        failures = [{"claim": f.claim, "kind": f.kind, "detail": f.detail}
                    for f in [*outcome.failures, *shown.failures]]
        now = self.clock.now()
        with self.db.transaction() as s:
            repo = ExplainRepository(s)
            row = repo.add_explanation(
                prediction_id=pred.id, at=now, actor=actor.username[:64], provider=exp.provider,
                model=exp.model or "", text=exp.text, fact_check_ok=not failures, failures=failures,
                fallback_used=bool(exp.fallback_used))
            repo.add_usage(outcome.usage, prediction_id=pred.id, at=now)
            AuditRepository(s).append(
                actor=actor.username, role=role, action="explanation_shown", entity_type="explanation",
                entity_id=str(row.id), at=now,
                payload={"prediction_id": str(pred.id), "application_id": str(app.id), "provider": exp.provider,
                         "model": exp.model, "fact_check_ok": not failures, "fallback_used": bool(exp.fallback_used),
                         "failures": failures, "llm_calls": len(outcome.usage), "text_sha256": _sha(exp.text)})
            return _explanation(row)

    def ask(self, prediction_id: str, question: str, *, actor: Actor,
            conversation_id: str | None = None) -> StoredAnswer:
        """Answer one question about the decision in a conversation (a new one when ``conversation_id`` is
        None); store it verbatim with its engine, facts, tool calls and verdict, and one audit row.

        Errors (nothing is stored): an empty, over-long or unstorable question; an unknown, malformed or
        another officer's decision (:class:`DecisionNotFound`); a conversation id that is malformed,
        unknown, or belongs to another decision."""
        ctx, kwargs = self._question(prediction_id, question, actor, conversation_id)
        if self.qa_llm is not None:
            answer = self.qa_llm.ask(question, **kwargs)
        else:
            kwargs.pop("history")
            answer = self.qa.ask(question, **kwargs)
        return self._store_answer(ctx, question, answer)

    def ask_stream(self, prediction_id: str, question: str, *, actor: Actor,
                   conversation_id: str | None = None) -> AnswerStream:
        """Like :meth:`ask`, but iterable: checked sentences as the LLM writes them (see
        :class:`~backend.explanations.qa_llm.QAStream`); the same errors are raised here, before anything
        streams, and ``stored`` is set at the end (the same exchange and audit row as :meth:`ask`)."""
        ctx, kwargs = self._question(prediction_id, question, actor, conversation_id)
        if self.qa_llm is not None:
            events = self.qa_llm.stream(question, **kwargs)
        else:
            kwargs.pop("history")
            events = QAStream(offline_turn(self.qa.ask(question, **kwargs)))
        return AnswerStream(events, lambda answer: self._store_answer(ctx, question, answer))

    @property
    def streams_answers(self) -> bool:
        """True when the LLM answers questions and its adapter streams (the offline engine is not streamed)."""
        return self.qa_llm is not None and self.qa_llm.streams

    def _question(self, prediction_id: str, question: str, actor: Actor, conversation_id: str | None
                  ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The checks of a question (errors store nothing), its context and the answering engine's arguments."""
        if not isinstance(question, str):
            raise DecisionError(QUESTION_EMPTY)
        check_text(question, required=True, min_len=1, max_len=MAX_QUESTION, too_short=QUESTION_EMPTY,
                   too_long=QUESTION_TOO_LONG)
        pred, app, role = self._load(prediction_id, actor)
        self._require_ai(app, "qa", "Questions about a decision")
        cid, state = self._conversation(pred.id, conversation_id)
        kwargs = {"result": self._rebuild(pred, app), "comparison": LazyStats(self._comparison), "state": state,
                  "history": lambda: self._decision_history(app.id)}
        return (pred, app, role, actor, cid), kwargs

    def _store_answer(self, ctx: tuple[Any, ...], question: str, answer: Answer) -> StoredAnswer:
        return store_exchange(self.db, self.clock.now(), ctx, question, answer)

    def _decision_history(self, application_id: uuid.UUID) -> dict[str, Any]:
        """Earlier decisions and overrides of this application (for the LLM's application_history tool)."""
        with self.db.read() as s:
            rows = ExplainRepository(s).decisions_of(application_id)
        return {"decisions": [{"at": r.decided_at.date().isoformat() if r.decided_at else "unknown date",
                               "outcome": r.outcome, "status": r.status, "override": bool(r.is_override),
                               "reason_code": r.override_reason_code} for r in rows]}

    def _conversation(self, prediction_id: uuid.UUID, conversation_id: str | None) -> tuple[str, dict[str, Any]]:
        """The conversation's id and its memory (the last turn's state); a new id when none is given."""
        if conversation_id is None:
            return str(uuid.uuid4()), {}
        try:
            cid = str(uuid.UUID(str(conversation_id)))
        except ValueError:
            raise DecisionError(CONVERSATION_BAD.format(value=str(conversation_id)[:60])) from None
        with self.db.read() as s:
            repo = ExplainRepository(s)
            owner = repo.conversation_owner(cid)
            if owner is None:
                raise DecisionError(CONVERSATION_UNKNOWN.format(cid=cid))
            if owner != prediction_id:
                raise DecisionError(CONVERSATION_ELSEWHERE.format(cid=cid))
            last = repo.last_in_conversation(cid)
            state = (last.facts or {}).get("state") if last is not None else None
            return cid, dict(state) if isinstance(state, dict) else {}

    # -- helpers -----------------------------------------------------------------------------------
    def _load(self, prediction_id: str | uuid.UUID, actor: Actor) -> tuple[Prediction, Application, str]:
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
