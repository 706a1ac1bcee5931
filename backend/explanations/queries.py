"""SQL for the officer workspace: stored explanations, LLM usage rows and decision Q&A exchanges."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.explanations.providers import LLMUsage
from backend.platform.db.tables_access import User
from backend.platform.db.tables_book import (
    Application,
    Decision,
    ExplanationRow,
    LLMUsageRow,
    Prediction,
    QAExchange,
)


class ExplainRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    # -- the decision ------------------------------------------------------------------------------
    def load_prediction(self, prediction_id: uuid.UUID) -> tuple[Prediction, Application] | None:
        row = self.s.execute(select(Prediction, Application)
                             .join(Application, Prediction.application_id == Application.id)
                             .where(Prediction.id == prediction_id)).first()
        return (row[0], row[1]) if row is not None else None

    def user(self, user_id: uuid.UUID) -> User | None:
        return self.s.get(User, user_id)

    def approved_features(self, limit: int) -> list[dict[str, Any]]:
        """Features of the newest ``limit`` applications the model recommended approving."""
        q = (select(Application.features).join(Prediction, Prediction.application_id == Application.id)
             .where(Prediction.recommendation == "approve")
             .order_by(Prediction.created_at.desc(), Prediction.id).limit(limit))
        return [f for f in self.s.execute(q).scalars() if isinstance(f, dict)]

    # -- explanations and usage --------------------------------------------------------------------
    def add_explanation(self, *, prediction_id: uuid.UUID, at: datetime, actor: str, provider: str, model: str,
                        text: str, fact_check_ok: bool, failures: list[dict[str, Any]],
                        fallback_used: bool) -> ExplanationRow:
        """The explanation an officer was shown (flushed, so its id is set)."""
        row = ExplanationRow(prediction_id=prediction_id, created_at=at, actor=actor, provider=provider, model=model,
                             text=text, fact_check_ok=fact_check_ok, failures=failures, fallback_used=fallback_used)
        self.s.add(row)
        self.s.flush()
        return row

    def add_usage(self, usage: Sequence[LLMUsage], *, prediction_id: uuid.UUID, at: datetime,
                  purpose: str = "explanation") -> None:
        """One ``llm_usage`` row per LLM call (``at``: when a call does not say when it was made)."""
        self.s.add_all([_usage_row(u, prediction_id, at, purpose) for u in usage])
        self.s.flush()

    def latest_explanation(self, prediction_id: uuid.UUID) -> ExplanationRow | None:
        return self.s.execute(select(ExplanationRow).where(ExplanationRow.prediction_id == prediction_id)
                              .order_by(ExplanationRow.created_at.desc()).limit(1)).scalar()

    def usage(self, prediction_id: uuid.UUID | None = None, limit: int = 1000) -> list[LLMUsageRow]:
        q = select(LLMUsageRow).order_by(LLMUsageRow.at.desc()).limit(limit)
        if prediction_id is not None:
            q = q.where(LLMUsageRow.prediction_id == prediction_id)
        return list(self.s.execute(q).scalars())

    # -- Q&A ---------------------------------------------------------------------------------------
    def next_turn(self, prediction_id: uuid.UUID) -> int:
        top = self.s.execute(select(func.max(QAExchange.turn))
                             .where(QAExchange.prediction_id == prediction_id)).scalar()
        return int(top or 0) + 1

    def add_exchange(self, *, prediction_id: uuid.UUID, at: datetime, turn: int, actor: str, role: str,
                     question: str, answer: str, intent: str, refused: bool,
                     counterfactuals: list[dict[str, Any]], **more: Any) -> QAExchange:
        """One question and its answer, verbatim (flushed, so its id is set); ``more``: the 0010 columns
        (conversation_id, refusal, engine, facts, tool_calls, fact_check)."""
        row = QAExchange(prediction_id=prediction_id, at=at, turn=turn, actor=actor, role=role, question=question,
                         answer=answer, intent=intent, refused=refused, counterfactuals=counterfactuals, **more)
        self.s.add(row)
        self.s.flush()
        return row

    def decisions_of(self, application_id: uuid.UUID, limit: int = 20) -> list[Decision]:
        """The application's recorded decisions (people's), oldest first."""
        return list(self.s.execute(select(Decision).where(Decision.application_id == application_id)
                                   .order_by(Decision.decided_at).limit(limit)).scalars())

    def conversation_owner(self, conversation_id: str) -> uuid.UUID | None:
        """The decision a conversation belongs to (``None`` when no exchange has that id)."""
        return self.s.execute(select(QAExchange.prediction_id).where(QAExchange.conversation_id == conversation_id)
                              .limit(1)).scalar()

    def last_in_conversation(self, conversation_id: str) -> QAExchange | None:
        return self.s.execute(select(QAExchange).where(QAExchange.conversation_id == conversation_id)
                              .order_by(QAExchange.turn.desc(), QAExchange.at.desc()).limit(1)).scalar()

    def exchanges(self, prediction_id: uuid.UUID) -> list[QAExchange]:
        """The decision's conversation, oldest first."""
        return list(self.s.execute(select(QAExchange).where(QAExchange.prediction_id == prediction_id)
                                   .order_by(QAExchange.turn, QAExchange.at)).scalars())


def _usage_row(u: LLMUsage, prediction_id: uuid.UUID, at: datetime, purpose: str) -> LLMUsageRow:
    error = u.error
    if u.failed_claims:
        error = ((error + "; ") if error else "") + "fact-check failed: " + "; ".join(u.failed_claims)
    return LLMUsageRow(
        at=u.created_at or at, purpose=purpose, prediction_id=prediction_id, provider=u.provider[:32],
        model=(u.model or "")[:128], input_tokens=u.input_tokens, output_tokens=u.output_tokens,
        cost_usd=u.cost_usd, latency_ms=float(u.latency_ms or 0.0), fallback_used=u.fallback_used,
        fact_check_ok=None if u.fact_check == "not_checked" else u.fact_check == "passed", error=error)
