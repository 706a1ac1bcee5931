"""Human decisions on scored applications: accept, override, four-eyes approval, and the lists.

Every write is one transaction holding the decision and exactly one audit row. The actor's role is
read from the users table (not trusted from the caller). An officer sees and decides only the
applications they submitted; anything else answers :data:`NOT_FOUND`, exactly like a missing id.

Idempotency: ``decide`` takes a key (the console makes one per form; the API takes the client's).
A retry with the same key and the same request returns the decision already recorded (``replayed``)
and writes nothing; the same key with a different request is refused (:data:`KEY_REUSED`). On
PostgreSQL decisions on one application are serialised by an advisory lock, and a race on the
unique key is resolved by answering as a retry would; SQLite writers are serialised already.

The rules themselves (reasons, text bounds, materiality, messages) live in ``override_rules``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol

from sqlalchemy.exc import IntegrityError

from backend.config import PolicySettings
from backend.db.engine import Database
from backend.db.repo_audit import AuditRepository
from backend.db.repo_decisions import DecisionRepository
from backend.db.tables import Application, Decision, User
from backend.permissions import Perm, allowed
from backend.ports import Clock
from backend.services.decision_views import CaseRow, DecisionView, case_row, decision_view
from backend.services.override_rules import (
    ALREADY_DECIDED,
    KEY_REUSED,
    MAX_NOTE,
    MIN_TEXT,
    NOT_A_MANAGER,
    NOT_ALLOWED,
    NOT_FOUND,
    NOT_PENDING,
    NOTE_TOO_LONG,
    OVERRIDE_REASONS,
    REJECT_NOTE_REQUIRED,
    SAME_PERSON,
    STALE_PREDICTION,
    DecisionError,
    DecisionNotFound,
    check_key,
    check_request,
    check_text,
    elapsed_seconds,
    materiality,
)

__all__ = ["OVERRIDE_REASONS", "CaseRow", "DecisionError", "DecisionNotFound", "DecisionService", "DecisionView"]
MAX_LIST = 500


class DecisionActor(Protocol):
    """Anything with the signed-in user's id, username and role (``UserInfo`` fits)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def username(self) -> str: ...
    @property
    def role(self) -> str: ...


def _uuid(value: str | uuid.UUID) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise DecisionNotFound(NOT_FOUND) from None


class DecisionService:
    def __init__(self, db: Database, clock: Clock, policy_settings: PolicySettings) -> None:
        self.db = db
        self.clock = clock
        self.cap = float(policy_settings.loan_amount_cap)

    # -- writes ------------------------------------------------------------------------------------
    def decide(self, prediction_id: str | uuid.UUID, *, actor: DecisionActor, outcome: str,
               reason_code: str | None = None, reason_text: str | None = None, idempotency_key: str,
               started_at: datetime | None = None) -> DecisionView:
        """Accept (``outcome`` == recommendation) or override one scored application."""
        check_key(idempotency_key)
        pid = _uuid(prediction_id)
        args = (pid, actor, outcome, reason_code, reason_text, idempotency_key, started_at)
        try:
            return self._decide(*args)
        except IntegrityError:
            # PostgreSQL only: a concurrent request with the same key (on another application) committed
            # first. Answer as a retry: the same decision, or KEY_REUSED.
            return self._decide(*args)

    def _decide(self, pid: uuid.UUID, actor: DecisionActor, outcome: str, reason_code: str | None,
                reason_text: str | None, key: str, started_at: datetime | None) -> DecisionView:
        now = self.clock.now()
        seconds = elapsed_seconds(started_at, now)
        with self.db.transaction() as s:
            repo = DecisionRepository(s)
            user = self._user(repo, actor, Perm.DECIDE, NOT_ALLOWED)
            found = repo.prediction(pid)
            if found is None or not self._may_see(user, found[1]):
                raise DecisionNotFound(NOT_FOUND)
            pred, app = found
            repo.lock_application(app.id)
            previous = repo.by_key(key)
            if previous is not None:
                same = (previous.prediction_id, previous.decided_by, previous.outcome,
                        previous.override_reason_code, previous.override_reason_text) == \
                       (pid, user.id, outcome, reason_code, reason_text)
                if not same:
                    raise DecisionError(KEY_REUSED)
                return self._view(repo, previous, replayed=True)
            is_override = check_request(outcome=outcome, recommendation=pred.recommendation,
                                        reason_code=reason_code, reason_text=reason_text)
            standing = repo.open_for_application(app.id)
            if standing is not None:
                raise DecisionError(ALREADY_DECIDED.format(status=standing.status.replace("_", " "),
                                                           outcome=standing.outcome))
            if repo.has_newer_prediction(pred):
                raise DecisionError(STALE_PREDICTION)
            why = materiality(outcome=outcome, recommendation=pred.recommendation, risk_class=pred.risk_class,
                              loan_amount=float(app.loan_amount), cap=self.cap) if is_override else []
            d = repo.add(Decision(
                application_id=app.id, prediction_id=pred.id, outcome=outcome,
                status="pending_approval" if why else "final", decided_by=user.id, decided_at=now,
                is_override=is_override, override_reason_code=reason_code if is_override else None,
                override_reason_text=reason_text if is_override else None, decision_seconds=seconds,
                idempotency_key=key))
            action = "override_submitted" if why else ("decision_overridden" if is_override else "decision_accepted")
            AuditRepository(s).append(
                actor=user.username, role=user.role, action=action, entity_type="decision", entity_id=str(d.id),
                at=now, payload={"application_id": str(app.id), "prediction_id": str(pred.id),
                                 "recommendation": pred.recommendation, "risk_class": pred.risk_class,
                                 "outcome": outcome, "status": d.status, "is_override": is_override,
                                 "reason_code": d.override_reason_code, "reason_text": d.override_reason_text,
                                 "materiality": why, "loan_amount": float(app.loan_amount),
                                 "loan_amount_cap": self.cap, "decision_seconds": seconds,
                                 "idempotency_key": key})
            return self._view(repo, d)

    def approve(self, decision_id: str | uuid.UUID, *, approver: DecisionActor, approve: bool,
                note: str | None = None) -> DecisionView:
        """Four-eyes: a second manager makes a pending override final, or rejects it.

        A rejection needs a note (for the officer) and leaves the application undecided: it goes
        back to manual review and may be decided again. The note is kept in the audit row. Repeating
        the same verdict by the same manager (a double click) returns the decision unchanged.
        """
        did = _uuid(decision_id)
        note = note or None
        if note is not None:
            check_text(note, required=not approve, max_len=MAX_NOTE, too_long=NOTE_TOO_LONG,
                       too_short=REJECT_NOTE_REQUIRED)
        elif not approve:
            raise DecisionError(REJECT_NOTE_REQUIRED.format(min=MIN_TEXT))
        now = self.clock.now()
        with self.db.transaction() as s:
            repo = DecisionRepository(s)
            user = self._user(repo, approver, Perm.APPROVE_OVERRIDES, NOT_A_MANAGER)
            d = repo.get(did, for_update=True)
            if d is None:
                raise DecisionNotFound(NOT_FOUND)
            if d.decided_by == user.id:
                raise DecisionError(SAME_PERSON)
            verdict = "final" if approve else "rejected"
            if d.status != "pending_approval":
                if d.status == verdict and d.approved_by == user.id:
                    return self._view(repo, d, replayed=True)
                raise DecisionError(NOT_PENDING.format(status=d.status.replace("_", " ")))
            d.status, d.approved_by, d.approved_at = verdict, user.id, now
            s.flush()
            AuditRepository(s).append(
                actor=user.username, role=user.role, action="override_approved" if approve else "override_rejected",
                entity_type="decision", entity_id=str(d.id), at=now,
                payload={"application_id": str(d.application_id), "outcome": d.outcome, "status": verdict,
                         "decided_by": str(d.decided_by), "note": note})
            return self._view(repo, d)

    # -- reads -------------------------------------------------------------------------------------
    def review_queue(self, *, actor: DecisionActor, limit: int = 50) -> list[DecisionView]:
        """Overrides awaiting a second person, oldest first (managers only)."""
        with self.db.read() as s:
            repo = DecisionRepository(s)
            self._user(repo, actor, Perm.APPROVE_OVERRIDES, NOT_A_MANAGER)
            rows = repo.pending(max(1, min(limit, MAX_LIST)))
            names = repo.usernames([x for d, _p, a in rows for x in (d.decided_by, d.approved_by, a.officer_id)])
            return [decision_view(d, p, a, names, cap=self.cap) for d, p, a in rows]

    def decisions_for(self, actor: DecisionActor, limit: int = 100) -> list[CaseRow]:
        """Newest applications with their latest score and decision: an officer's own; managers see all."""
        with self.db.read() as s:
            repo = DecisionRepository(s)
            user = self._user(repo, actor, None, NOT_ALLOWED)
            everyone = allowed(user.role, Perm.VIEW_ALL_DECISIONS)
            if not everyone and not allowed(user.role, Perm.DECIDE):
                raise DecisionError(NOT_ALLOWED)
            apps = repo.applications(officer_id=None if everyone else user.id, limit=max(1, min(limit, MAX_LIST)))
            ids = [a.id for a in apps]
            preds, decs = repo.latest_predictions(ids), repo.latest_decisions(ids)
            names = repo.usernames([a.officer_id for a in apps])
            return [case_row(a, preds.get(a.id), decs.get(a.id), names) for a in apps]

    def current(self, application_id: str | uuid.UUID, *, actor: DecisionActor) -> DecisionView | None:
        """The application's latest decision (any status), None if undecided; NOT_FOUND if not theirs."""
        aid = _uuid(application_id)
        with self.db.read() as s:
            repo = DecisionRepository(s)
            user = self._user(repo, actor, None, NOT_ALLOWED)
            app = s.get(Application, aid)
            if app is None or not self._may_see(user, app):
                raise DecisionNotFound(NOT_FOUND)
            d = repo.latest_decisions([aid]).get(aid)
            return self._view(repo, d) if d is not None else None

    # -- helpers -----------------------------------------------------------------------------------
    @staticmethod
    def _user(repo: DecisionRepository, actor: DecisionActor, perm: Perm | None, refused: str) -> User:
        user = repo.user(actor.id)
        if user is None or user.disabled or (perm is not None and not allowed(user.role, perm)):
            raise DecisionError(refused)
        return user

    @staticmethod
    def _may_see(user: User, app: Application) -> bool:
        return allowed(user.role, Perm.VIEW_ALL_DECISIONS) or app.officer_id == user.id

    def _view(self, repo: DecisionRepository, d: Decision, *, replayed: bool = False) -> DecisionView:
        found = repo.prediction(d.prediction_id) if d.prediction_id else None
        pred = found[0] if found else None
        app = found[1] if found else repo.s.get(Application, d.application_id)
        assert app is not None  # foreign key
        names = repo.usernames([d.decided_by, d.approved_by, app.officer_id])
        return decision_view(d, pred, app, names, cap=self.cap, replayed=replayed)
