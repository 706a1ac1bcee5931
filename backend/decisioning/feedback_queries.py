"""Explanation verdicts and survey answers. Every SQL statement for them lives here."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, insert, select
from sqlalchemy.orm import Session

from backend.platform.db.tables_book import ExplanationFeedback, SurveyResponse

INSERT_CHUNK = 2000  # rows per multi-row INSERT


def _window(q: Any, column: Any, since: datetime | None, until: datetime | None) -> Any:
    if since is not None:
        q = q.where(column >= since)
    if until is not None:
        q = q.where(column < until)
    return q


class FeedbackRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    # -- explanation verdicts ----------------------------------------------------------------------
    def last_rating_at(self, prediction_id: uuid.UUID, user_id: uuid.UUID) -> datetime | None:
        return self.s.execute(select(func.max(ExplanationFeedback.at)).where(
            ExplanationFeedback.prediction_id == prediction_id, ExplanationFeedback.user_id == user_id)).scalar()

    def add_rating(self, *, explanation_id: uuid.UUID, prediction_id: uuid.UUID, user_id: uuid.UUID, at: datetime,
                   helpful: bool, comment: str | None) -> ExplanationFeedback:
        """A new verdict (flushed, so its id is set)."""
        row = ExplanationFeedback(explanation_id=explanation_id, prediction_id=prediction_id, user_id=user_id,
                                  at=at, helpful=helpful, comment=comment)
        self.s.add(row)
        self.s.flush()
        return row

    def latest_rating(self, prediction_id: uuid.UUID, user_id: uuid.UUID) -> ExplanationFeedback | None:
        return self.s.execute(select(ExplanationFeedback).where(
            ExplanationFeedback.prediction_id == prediction_id, ExplanationFeedback.user_id == user_id)
            .order_by(ExplanationFeedback.at.desc(), ExplanationFeedback.id.desc()).limit(1)).scalar()

    def insert_ratings(self, rows: list[dict[str, Any]]) -> None:
        """Verdicts as multi-row INSERTs (ids and every column given)."""
        self._insert(ExplanationFeedback, rows)

    def helpful_counts(self, since: datetime | None, until: datetime | None) -> tuple[int, int]:
        """(verdicts, helpful ones) in [since, until): each user's newest verdict per explanation counts once."""
        rank = func.row_number().over(
            partition_by=(ExplanationFeedback.user_id, ExplanationFeedback.explanation_id),
            order_by=(ExplanationFeedback.at.desc(), ExplanationFeedback.id.desc())).label("rank")
        inner = _window(select(ExplanationFeedback.helpful, rank), ExplanationFeedback.at, since, until).subquery()
        n, yes = self.s.execute(select(func.count(), func.sum(case((inner.c.helpful.is_(True), 1), else_=0)))
                                .where(inner.c.rank == 1)).one()
        return int(n or 0), int(yes or 0)

    # -- survey ------------------------------------------------------------------------------------
    def answered(self, user_id: uuid.UUID, period: str) -> bool:
        return self.s.execute(select(SurveyResponse.id).where(SurveyResponse.user_id == user_id,
                                                              SurveyResponse.period == period).limit(1)).first() is not None

    def add_survey(self, *, user_id: uuid.UUID, period: str, at: datetime, nps: int, satisfaction: int | None,
                   comment: str | None) -> SurveyResponse:
        """A new answer (flushed, so its id is set)."""
        row = SurveyResponse(user_id=user_id, period=period, at=at, nps=nps, satisfaction=satisfaction,
                             comment=comment)
        self.s.add(row)
        self.s.flush()
        return row

    def insert_surveys(self, rows: list[dict[str, Any]]) -> None:
        """Answers as multi-row INSERTs (ids and every column given)."""
        self._insert(SurveyResponse, rows)

    def nps_counts(self, since: datetime | None, until: datetime | None) -> tuple[int, int, int]:
        """(answers, promoters 9-10, detractors 0-6) given in [since, until)."""
        q = select(func.count(), func.sum(case((SurveyResponse.nps >= 9, 1), else_=0)),
                   func.sum(case((SurveyResponse.nps <= 6, 1), else_=0)))
        n, pro, det = self.s.execute(_window(q, SurveyResponse.at, since, until)).one()
        return int(n or 0), int(pro or 0), int(det or 0)

    def _insert(self, table: Any, rows: list[dict[str, Any]]) -> None:
        for i in range(0, len(rows), INSERT_CHUNK):
            self.s.execute(insert(table), rows[i:i + INSERT_CHUNK])
