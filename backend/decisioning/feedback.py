"""Officer feedback: verdicts on explanations and a monthly satisfaction / NPS survey.

* **Explanation feedback** (:meth:`FeedbackService.rate_explanation`): the actor must be an enabled
  user who may see the application (the workspace rule: an officer only their own applications, a
  role with :attr:`Perm.VIEW_ALL_DECISIONS` all; missing and not-yours are indistinguishable,
  :data:`NOT_FOUND`). The verdict is linked to the latest explanation of the prediction; every
  rating is kept (people change their minds) and the newest one counts.
* **Survey** (:meth:`FeedbackService.submit_survey`): for roles that decide (:attr:`Perm.DECIDE`),
  one answer per user and month (``YYYY-MM``): NPS 0-10, satisfaction 1-5, optional comment.
* **Comments** are data: stored verbatim, at most :data:`MAX_COMMENT` characters; NUL and lone
  surrogates are refused (:func:`override_rules.check_text`).
* Each write and its audit row (``explanation_feedback``, ``survey_submitted``) are one transaction.
  The bulk variants (for the operations simulator) write many rows with one audit row each, chained
  by :func:`backend.compliance.audit_queries.append_many` at each item's own time.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError

from backend.compliance import AuditEntry, AuditRepository, append_many
from backend.decisioning.feedback_queries import FeedbackRepository
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
from backend.explanations import ExplainRepository
from backend.identity import UserRepository
from backend.platform.db.engine import Database
from backend.platform.ports import Clock

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from backend.platform.db.tables_access import User
    from backend.platform.db.tables_book import ExplanationFeedback

__all__ = ["FeedbackError", "FeedbackItem", "FeedbackService", "FeedbackView", "Helpfulness", "NPSSummary",
           "SurveyItem", "SurveyView"]

MAX_COMMENT = 1000
PERIOD_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
SURVEY_PERM = Perm.DECIDE  # who is asked: the people who decide with the AI

# messages (asserted by tests)
NO_EXPLANATION = "No explanation has been shown for this decision yet; open the explanation before rating it."
NOT_A_USER = "Feedback is recorded for console users only."
BAD_HELPFUL = "helpful must be true or false."
BAD_COMMENT = "A comment must be text."
COMMENT_TOO_LONG = "A comment must have at most {max} characters (it has {n}); shorten it."
BAD_PERIOD = "The survey period must be a month written YYYY-MM (got {period!r})."
FUTURE_PERIOD = "The survey period {period} has not started yet."
BAD_NPS = "The recommendation score must be a whole number from 0 to 10."
BAD_SATISFACTION = "Satisfaction must be a whole number from 1 to 5, or left empty."
SURVEY_DONE = "You have already answered the survey for {period}; one answer per month."
SURVEY_NOT_FOR_ROLE = "The survey is for loan officers and risk managers."
DUPLICATE_IN_BATCH = "The batch answers the survey twice for the same user and period ({detail}); nothing was recorded."
NAIVE_TIME = "Feedback times must be timezone-aware (UTC)."


class FeedbackError(DecisionError):
    """Feedback or a survey answer was refused; the message says why (nothing was recorded)."""


@dataclass(frozen=True)
class FeedbackView:
    id: str
    prediction_id: str
    explanation_id: str | None
    helpful: bool
    comment: str | None
    at: datetime


@dataclass(frozen=True)
class SurveyView:
    id: str
    period: str
    nps: int
    satisfaction: int | None
    comment: str | None
    at: datetime


@dataclass(frozen=True)
class NPSSummary:
    score: float | None  # % promoters (9-10) minus % detractors (0-6), -100..100; None without answers
    n: int
    promoters: int
    passives: int
    detractors: int


@dataclass(frozen=True)
class Helpfulness:
    share: float | None  # share of "helpful" verdicts, 0..1; None without verdicts
    n: int


@dataclass(frozen=True)
class FeedbackItem:
    """One explanation verdict for :meth:`FeedbackService.record_feedback_many` (caller-checked access)."""

    prediction_id: uuid.UUID
    explanation_id: uuid.UUID | None
    user_id: uuid.UUID | None
    username: str
    role: str
    at: datetime
    helpful: bool
    comment: str | None = None


@dataclass(frozen=True)
class SurveyItem:
    """One survey answer for :meth:`FeedbackService.record_surveys_many` (caller-checked user)."""

    user_id: uuid.UUID
    username: str
    role: str
    period: str
    at: datetime
    nps: int
    satisfaction: int | None = None
    comment: str | None = None


def period_of(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m")


def _comment(comment: str | None) -> str | None:
    """Validated comment; empty or blank means none."""
    if comment is None:
        return None
    if not isinstance(comment, str):
        raise FeedbackError(BAD_COMMENT)
    try:
        check_text(comment, required=False, max_len=MAX_COMMENT, too_long=COMMENT_TOO_LONG)
    except FeedbackError:
        raise
    except DecisionError as exc:
        raise FeedbackError(str(exc)) from None
    return comment if comment.strip() else None


def _whole(value: Any, lo: int, hi: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi


def _survey_values(period: str, nps: Any, satisfaction: Any, comment: str | None, now: datetime) -> str | None:
    if not isinstance(period, str) or not PERIOD_RE.match(period):
        raise FeedbackError(BAD_PERIOD.format(period=str(period)[:20]))
    if period > period_of(now):
        raise FeedbackError(FUTURE_PERIOD.format(period=period))
    if not _whole(nps, 0, 10):
        raise FeedbackError(BAD_NPS)
    if satisfaction is not None and not _whole(satisfaction, 1, 5):
        raise FeedbackError(BAD_SATISFACTION)
    return _comment(comment)


def _aware(at: datetime) -> datetime:
    if not isinstance(at, datetime) or at.tzinfo is None:
        raise FeedbackError(NAIVE_TIME)
    return at.astimezone(UTC)


class FeedbackService:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    # -- explanation feedback ----------------------------------------------------------------------
    def rate_explanation(self, prediction_id: str | uuid.UUID, *, actor: Actor, helpful: bool,
                         comment: str | None = None) -> FeedbackView:
        """Record a verdict on the latest explanation of the prediction (one audit row)."""
        if not isinstance(helpful, bool):
            raise FeedbackError(BAD_HELPFUL)
        text = _comment(comment)
        now = self.clock.now()
        with self.db.transaction() as s:
            user, pred_id, app_id = self._visible(s, prediction_id, actor)
            exp = ExplainRepository(s).latest_explanation(pred_id)
            if exp is None:
                raise FeedbackError(NO_EXPLANATION)
            repo = FeedbackRepository(s)
            last = repo.last_rating_at(pred_id, user.id)
            if last is not None and last >= now:  # keep "newest" strict even when the clock stands still
                now = last + timedelta(microseconds=1)
            row = repo.add_rating(explanation_id=exp.id, prediction_id=pred_id, user_id=user.id, at=now,
                                  helpful=helpful, comment=text)
            AuditRepository(s).append(
                actor=user.username, role=user.role, action="explanation_feedback", entity_type="explanation_feedback",
                entity_id=str(row.id), at=now,
                payload={"prediction_id": str(pred_id), "application_id": str(app_id), "explanation_id": str(exp.id),
                         "helpful": helpful, "comment": text})
            return self._feedback_view(row)

    def latest_rating(self, prediction_id: str | uuid.UUID, actor: Actor) -> FeedbackView | None:
        """The actor's newest verdict on this prediction's explanations (None if they gave none)."""
        with self.db.read() as s:
            user, pred_id, _app = self._visible(s, prediction_id, actor)
            row = FeedbackRepository(s).latest_rating(pred_id, user.id)
            return self._feedback_view(row) if row is not None else None

    # -- survey ------------------------------------------------------------------------------------
    def submit_survey(self, *, actor: Actor, period: str, nps: int, satisfaction: int | None = None,
                      comment: str | None = None) -> SurveyView:
        """Record the actor's answer for ``period`` (``YYYY-MM``); a second answer is refused."""
        now = self.clock.now()
        text = _survey_values(period, nps, satisfaction, comment, now)
        try:
            with self.db.transaction() as s:
                user = self._user(s, actor)
                if not allowed(user.role, SURVEY_PERM):
                    raise FeedbackError(SURVEY_NOT_FOR_ROLE)
                repo = FeedbackRepository(s)
                if repo.answered(user.id, period):
                    raise FeedbackError(SURVEY_DONE.format(period=period))
                row = repo.add_survey(user_id=user.id, period=period, at=now, nps=nps, satisfaction=satisfaction,
                                      comment=text)
                AuditRepository(s).append(
                    actor=user.username, role=user.role, action="survey_submitted", entity_type="survey_response",
                    entity_id=str(row.id), at=now,
                    payload={"period": period, "nps": nps, "satisfaction": satisfaction, "comment": text})
                return SurveyView(str(row.id), period, nps, satisfaction, text, now)
        except IntegrityError:  # a concurrent answer won the unique index uq_survey_user_period
            raise FeedbackError(SURVEY_DONE.format(period=period)) from None

    def survey_due(self, actor: Actor, at: datetime) -> bool:
        """True when the actor is asked the survey and has not answered for ``at``'s month (UTC)."""
        with self.db.read() as s:
            user = UserRepository(s).get(actor.id) if isinstance(actor.id, uuid.UUID) else None
            if user is None or user.disabled or not allowed(user.role, SURVEY_PERM):
                return False
            return not FeedbackRepository(s).answered(user.id, period_of(at))

    # -- bulk (the operations simulator) -----------------------------------------------------------
    def record_feedback_many(self, items: Sequence[FeedbackItem]) -> int:
        """Store many verdicts in one transaction, one chained audit row each at the item's ``at``.

        The caller vouches for access (the simulator replays what officers did); values are still
        validated, and a bad item refuses the whole batch.
        """
        rows: list[dict[str, Any]] = []
        audit: list[AuditEntry] = []
        for it in items:
            if not isinstance(it.helpful, bool):
                raise FeedbackError(BAD_HELPFUL)
            at, text, fid = _aware(it.at), _comment(it.comment), uuid.uuid4()
            rows.append({"id": fid, "explanation_id": it.explanation_id, "prediction_id": it.prediction_id,
                         "user_id": it.user_id, "at": at, "helpful": it.helpful, "comment": text})
            audit.append(AuditEntry(it.username[:64], it.role, "explanation_feedback", "explanation_feedback", str(fid),
                                    {"prediction_id": str(it.prediction_id), "explanation_id":
                                     str(it.explanation_id) if it.explanation_id else None,
                                     "helpful": it.helpful, "comment": text}, at))
        return self._bulk(FeedbackRepository.insert_ratings, rows, audit)

    def record_surveys_many(self, items: Sequence[SurveyItem]) -> int:
        """Store many survey answers in one transaction (one chained audit row each at the item's ``at``).

        The caller vouches for the users; values are validated, and an answer that repeats a
        (user, period) already stored or earlier in the batch refuses the whole batch.
        """
        rows: list[dict[str, Any]] = []
        audit: list[AuditEntry] = []
        seen: set[tuple[uuid.UUID, str]] = set()
        for it in items:
            at = _aware(it.at)
            text = _survey_values(it.period, it.nps, it.satisfaction, it.comment, at)
            if (it.user_id, it.period) in seen:
                raise FeedbackError(DUPLICATE_IN_BATCH.format(detail=f"{it.username} {it.period}"))
            seen.add((it.user_id, it.period))
            sid = uuid.uuid4()
            rows.append({"id": sid, "user_id": it.user_id, "period": it.period, "at": at, "nps": it.nps,
                         "satisfaction": it.satisfaction, "comment": text})
            audit.append(AuditEntry(it.username[:64], it.role, "survey_submitted", "survey_response", str(sid),
                                    {"period": it.period, "nps": it.nps, "satisfaction": it.satisfaction,
                                     "comment": text}, at))
        try:
            return self._bulk(FeedbackRepository.insert_surveys, rows, audit)
        except IntegrityError:
            raise FeedbackError(DUPLICATE_IN_BATCH.format(detail="an answer is already stored")) from None

    # -- dashboards --------------------------------------------------------------------------------
    def nps(self, since: datetime | None = None, until: datetime | None = None) -> NPSSummary:
        """Net promoter score of the answers given in [since, until)."""
        with self.db.read() as s:
            n, pro, det = FeedbackRepository(s).nps_counts(since, until)
        score = round(100.0 * (pro - det) / n, 4) if n else None
        return NPSSummary(score, n, pro, n - pro - det, det)

    def helpfulness(self, since: datetime | None = None, until: datetime | None = None) -> Helpfulness:
        """Share of helpful verdicts in [since, until): each user's newest verdict per explanation counts once."""
        with self.db.read() as s:
            n, yes = FeedbackRepository(s).helpful_counts(since, until)
        return Helpfulness(round(yes / n, 6) if n else None, n)

    # -- helpers -----------------------------------------------------------------------------------
    def _bulk(self, write: Callable[[FeedbackRepository, list[dict[str, Any]]], None], rows: list[dict[str, Any]],
              audit: list[AuditEntry]) -> int:
        if not rows:
            return 0
        with self.db.transaction() as s:
            write(FeedbackRepository(s), rows)
            append_many(s, audit)
        return len(rows)

    @staticmethod
    def _user(s: Session, actor: Actor) -> User:
        user = UserRepository(s).get(actor.id) if isinstance(actor.id, uuid.UUID) else None
        if user is None:
            raise FeedbackError(NOT_A_USER)
        if user.disabled:
            raise DecisionNotFound(NOT_FOUND)
        return user

    def _visible(self, s: Session, prediction_id: str | uuid.UUID, actor: Actor) -> tuple[User, uuid.UUID, uuid.UUID]:
        """The user, prediction and application ids, or DecisionNotFound (the workspace's access rule)."""
        user = self._user(s, actor)
        found = ExplainRepository(s).load_prediction(parse_id(prediction_id))
        if found is None:
            raise DecisionNotFound(NOT_FOUND)
        pred, app = found
        if not may_see(user.role, user.id, app.officer_id):
            raise DecisionNotFound(NOT_FOUND)
        return user, pred.id, app.id

    @staticmethod
    def _feedback_view(row: ExplanationFeedback) -> FeedbackView:
        return FeedbackView(str(row.id), str(row.prediction_id), str(row.explanation_id) if row.explanation_id else None,
                            bool(row.helpful), row.comment, row.at)
