"""SQL for the officer workspace: stored explanations, LLM usage rows and decision Q&A exchanges."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.db.tables import Application, ExplanationRow, LLMUsageRow, Prediction, QAExchange, User


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
    def add_explanation(self, row: ExplanationRow) -> ExplanationRow:
        self.s.add(row)
        self.s.flush()
        return row

    def add_usage(self, rows: list[LLMUsageRow]) -> None:
        self.s.add_all(rows)
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

    def add_exchange(self, row: QAExchange) -> QAExchange:
        self.s.add(row)
        self.s.flush()
        return row

    def exchanges(self, prediction_id: uuid.UUID) -> list[QAExchange]:
        """The decision's conversation, oldest first."""
        return list(self.s.execute(select(QAExchange).where(QAExchange.prediction_id == prediction_id)
                                   .order_by(QAExchange.turn, QAExchange.at)).scalars())
