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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError

from backend.compliance import AuditEntry, AuditRepository, append_many
from backend.decisioning.queries import DecisionRepository
from backend.decisioning.views import CaseRow, DecisionView, case_row, decision_view
from backend.domain import (
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
    Actor,
    DecisionError,
    DecisionNotFound,
    Perm,
    PolicySettings,
    allowed,
    check_key,
    check_notice_reasons,
    check_text,
    classify,
    elapsed_seconds,
    may_see,
    parse_id,
)
from backend.platform.db.engine import Database
from backend.platform.ports import Clock

if TYPE_CHECKING:
    from backend.platform.db.tables_access import User
    from backend.platform.db.tables_book import Decision

__all__ = ["OVERRIDE_REASONS", "CaseRow", "DecisionError", "DecisionNotFound", "DecisionService", "DecisionView"]
MAX_LIST = 500


@dataclass(frozen=True)
class BulkReview:
    """The second person's verdict on a material override (four-eyes)."""

    user_id: uuid.UUID
    username: str
    role: str
    approve: bool
    at: datetime
    note: str | None = None


@dataclass(frozen=True)
class BulkDecision:
    """One decision for :meth:`DecisionService.record_many` (facts of the prediction included)."""

    application_id: uuid.UUID
    prediction_id: uuid.UUID
    recommendation: str
    risk_class: str
    loan_amount: float
    ai_visible: bool
    user_id: uuid.UUID
    username: str
    role: str
    outcome: str
    decided_at: datetime
    decision_seconds: float | None = None
    reason_code: str | None = None
    reason_text: str | None = None
    reviewer: BulkReview | None = None


class DecisionService:
    def __init__(self, db: Database, clock: Clock, policy_settings: PolicySettings) -> None:
        self.db = db
        self.clock = clock
        self.cap = float(policy_settings.loan_amount_cap)

    # -- writes ------------------------------------------------------------------------------------
    def decide(self, prediction_id: str | uuid.UUID, *, actor: Actor, outcome: str,
               reason_code: str | None = None, reason_text: str | None = None, idempotency_key: str,
               started_at: datetime | None = None, notice_reasons: list[str] | None = None) -> DecisionView:
        """Accept (``outcome`` == recommendation) or override one scored application. ``notice_reasons``:
        for a denial, the C-1 reasons its adverse action notice states (see ``check_notice_reasons``)."""
        check_key(idempotency_key)
        pid = parse_id(prediction_id)
        picked = check_notice_reasons(outcome, notice_reasons)
        args = (pid, actor, outcome, reason_code, reason_text, idempotency_key, started_at, picked)
        try:
            return self._decide(*args)
        except IntegrityError:
            # PostgreSQL only: a concurrent request with the same key (on another application) committed
            # first. Answer as a retry: the same decision, or KEY_REUSED.
            return self._decide(*args)

    def _decide(self, pid: uuid.UUID, actor: Actor, outcome: str, reason_code: str | None,
                reason_text: str | None, key: str, started_at: datetime | None,
                notice_reasons: tuple[str, ...] | None = None) -> DecisionView:
        now = self.clock.now()
        seconds = elapsed_seconds(started_at, now)
        with self.db.transaction() as s:
            repo = DecisionRepository(s)
            user = self._user(repo, actor, Perm.DECIDE, NOT_ALLOWED)
            found = repo.prediction(pid)
            if found is None or not may_see(user.role, user.id, found[1].officer_id):
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
                return self._view(repo, previous, replayed=True,
                                  hide_model=not allowed(user.role, Perm.VIEW_ALL_DECISIONS))
            c = classify(outcome=outcome, recommendation=pred.recommendation, risk_class=pred.risk_class,
                         loan_amount=float(app.loan_amount), cap=self.cap, ai_visible=app.ai_visible is not False,
                         reason_code=reason_code, reason_text=reason_text, notice_reasons=notice_reasons)
            standing = repo.open_for_application(app.id)
            if standing is not None:
                raise DecisionError(ALREADY_DECIDED.format(status=standing.status.replace("_", " "),
                                                           outcome=standing.outcome))
            if repo.has_newer_prediction(pred):
                raise DecisionError(STALE_PREDICTION)
            why = list(c.materiality)
            d = repo.create(
                application_id=app.id, prediction_id=pred.id, outcome=outcome,
                status="pending_approval" if why else "final", decided_by=user.id, decided_at=now,
                is_override=c.is_override, override_reason_code=reason_code if c.keeps_reason else None,
                override_reason_text=reason_text if c.keeps_reason else None, decision_seconds=seconds,
                idempotency_key=key, notice_reasons=list(notice_reasons) if notice_reasons else None)
            AuditRepository(s).append(
                actor=user.username, role=user.role, action=c.action, entity_type="decision", entity_id=str(d.id),
                at=now, payload={"application_id": str(app.id), "prediction_id": str(pred.id),
                                 "recommendation": pred.recommendation, "risk_class": pred.risk_class,
                                 "outcome": outcome, "status": d.status, "is_override": c.is_override,
                                 "reason_code": d.override_reason_code, "reason_text": d.override_reason_text,
                                 "notice_reasons": d.notice_reasons,
                                 "materiality": why, "loan_amount": float(app.loan_amount),
                                 "loan_amount_cap": self.cap, "decision_seconds": seconds,
                                 "idempotency_key": key, "arm": app.arm, "phase": app.phase,
                                 "ai_visible": not c.manual})
            return self._view(repo, d, hide_model=not allowed(user.role, Perm.VIEW_ALL_DECISIONS))

    def approve(self, decision_id: str | uuid.UUID, *, approver: Actor, approve: bool,
                note: str | None = None) -> DecisionView:
        """Four-eyes: a second manager makes a pending override final, or rejects it.

        A rejection needs a note (for the officer) and leaves the application undecided: it goes
        back to manual review and may be decided again. The note is kept in the audit row. Repeating
        the same verdict by the same manager (a double click) returns the decision unchanged.
        """
        did = parse_id(decision_id)
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

    def record_many(self, items: Sequence[BulkDecision]) -> int:
        """Record many decisions (and their four-eyes reviews) in one transaction: the operations
        simulator and batch clients. The same rules as :meth:`decide` (override reasons, manual-arm
        denials, review resolutions, materiality → a second person who is not the first); each
        decision and each review writes its audit row at its own time. The caller vouches for
        ownership (it is a system path); applications already decided are skipped. Returns the
        number of decisions written."""
        if not items:
            return 0
        rows: list[dict[str, Any]] = []
        audits: list[AuditEntry] = []
        with self.db.transaction() as s:
            repo = DecisionRepository(s)
            decided = repo.decided_applications([it.application_id for it in items])
            for it in items:
                if it.application_id in decided:
                    continue
                c = classify(outcome=it.outcome, recommendation=it.recommendation, risk_class=it.risk_class,
                             loan_amount=it.loan_amount, cap=self.cap, ai_visible=it.ai_visible,
                             reason_code=it.reason_code, reason_text=it.reason_text)
                why = list(c.materiality)
                if why and it.reviewer is None:
                    raise DecisionError(f"application {it.application_id}: a material override needs its review")
                if why and it.reviewer is not None and it.reviewer.user_id == it.user_id:
                    raise DecisionError(SAME_PERSON)
                did = uuid.uuid4()
                status = "final"
                if why:
                    assert it.reviewer is not None
                    status = "final" if it.reviewer.approve else "rejected"
                reason_kept = c.keeps_reason
                if status != "rejected":
                    decided.add(it.application_id)
                rows.append({"id": did, "application_id": it.application_id, "prediction_id": it.prediction_id,
                             "outcome": it.outcome, "status": status, "decided_by": it.user_id,
                             "decided_at": it.decided_at, "is_override": c.is_override,
                             "override_reason_code": it.reason_code if reason_kept else None,
                             "override_reason_text": it.reason_text if reason_kept else None,
                             "approved_by": it.reviewer.user_id if why and it.reviewer else None,
                             "approved_at": it.reviewer.at if why and it.reviewer else None,
                             "decision_seconds": it.decision_seconds, "idempotency_key": None})
                audits.append(AuditEntry(
                    actor=it.username, role=it.role, action=c.action, entity_type="decision", entity_id=str(did),
                    at=it.decided_at,
                    payload={"application_id": str(it.application_id), "prediction_id": str(it.prediction_id),
                             "recommendation": it.recommendation, "risk_class": it.risk_class, "outcome": it.outcome,
                             "status": "pending_approval" if why else "final", "is_override": c.is_override,
                             "reason_code": it.reason_code if reason_kept else None,
                             "reason_text": it.reason_text if reason_kept else None, "materiality": why,
                             "loan_amount": it.loan_amount, "loan_amount_cap": self.cap,
                             "decision_seconds": it.decision_seconds, "ai_visible": not c.manual}))
                if why and it.reviewer is not None:
                    r = it.reviewer
                    audits.append(AuditEntry(
                        actor=r.username, role=r.role, action="override_approved" if r.approve else "override_rejected",
                        entity_type="decision", entity_id=str(did), at=r.at,
                        payload={"application_id": str(it.application_id), "outcome": it.outcome, "status": status,
                                 "decided_by": str(it.user_id), "note": r.note}))
            repo.insert_many(rows)
            audits.sort(key=lambda a: a.at or datetime.min)
            append_many(s, audits)
        return len(rows)

    # -- reads -------------------------------------------------------------------------------------
    def review_queue(self, *, actor: Actor, limit: int = 50) -> list[DecisionView]:
        """Overrides awaiting a second person, oldest first (managers only)."""
        with self.db.read() as s:
            repo = DecisionRepository(s)
            self._user(repo, actor, Perm.APPROVE_OVERRIDES, NOT_A_MANAGER)
            rows = repo.pending(max(1, min(limit, MAX_LIST)))
            names = repo.usernames([x for d, _p, a in rows for x in (d.decided_by, d.approved_by, a.officer_id)])
            return [decision_view(d, p, a, names, cap=self.cap) for d, p, a in rows]

    def decisions_for(self, actor: Actor, limit: int = 100) -> list[CaseRow]:
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
            return [case_row(a, preds.get(a.id), decs.get(a.id), names, hide_model=not everyone) for a in apps]

    def search(self, actor: Actor, *, text: str = "", application_ids: Sequence[str] = (), page: int = 0,
               per_page: int = 50) -> tuple[list[CaseRow], int]:
        """One page of the applications ``actor`` may see (newest first) and how many match in all.
        ``text``: an application id or the start of one (external id or UUID); ``application_ids``: more
        applications to include (an applicant's, found by blind index). Officers: their own only."""
        text = " ".join(str(text).split())[:96]
        ids = [u for u in (_uuid_or_none(i) for i in application_ids) if u is not None]
        with self.db.read() as s:
            repo = DecisionRepository(s)
            user = self._user(repo, actor, None, NOT_ALLOWED)
            everyone = allowed(user.role, Perm.VIEW_ALL_DECISIONS)
            if not everyone and not allowed(user.role, Perm.DECIDE):
                raise DecisionError(NOT_ALLOWED)
            per_page = max(1, min(int(per_page), MAX_LIST))
            apps, total = repo.applications_page(officer_id=None if everyone else user.id, text=text, ids=ids,
                                                 offset=max(0, int(page)) * per_page, limit=per_page)
            keys = [a.id for a in apps]
            preds, decs = repo.latest_predictions(keys), repo.latest_decisions(keys)
            names = repo.usernames([a.officer_id for a in apps])
            return [case_row(a, preds.get(a.id), decs.get(a.id), names, hide_model=not everyone) for a in apps], total

    def current(self, application_id: str | uuid.UUID, *, actor: Actor) -> DecisionView | None:
        """The application's latest decision (any status), None if undecided; NOT_FOUND if not theirs."""
        aid = parse_id(application_id)
        with self.db.read() as s:
            repo = DecisionRepository(s)
            user = self._user(repo, actor, None, NOT_ALLOWED)
            app = repo.application(aid)
            if app is None or not may_see(user.role, user.id, app.officer_id):
                raise DecisionNotFound(NOT_FOUND)
            d = repo.latest_decisions([aid]).get(aid)
            hide = not allowed(user.role, Perm.VIEW_ALL_DECISIONS)
            return self._view(repo, d, hide_model=hide) if d is not None else None

    # -- helpers -----------------------------------------------------------------------------------
    @staticmethod
    def _user(repo: DecisionRepository, actor: Actor, perm: Perm | None, refused: str) -> User:
        user = repo.user(actor.id) if actor.id is not None else None  # only console users decide
        if user is None or user.disabled or (perm is not None and not allowed(user.role, perm)):
            raise DecisionError(refused)
        return user

    def _view(self, repo: DecisionRepository, d: Decision, *, replayed: bool = False,
              hide_model: bool = False) -> DecisionView:
        found = repo.prediction(d.prediction_id) if d.prediction_id else None
        pred = found[0] if found else None
        app = found[1] if found else repo.application(d.application_id)
        assert app is not None  # foreign key
        names = repo.usernames([d.decided_by, d.approved_by, app.officer_id])
        return decision_view(d, pred, app, names, cap=self.cap, replayed=replayed, hide_model=hide_model)


def _uuid_or_none(value: object) -> uuid.UUID | None:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        return None
