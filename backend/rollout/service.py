"""Rollout phases and arm assignment (shadow → pilot → scaled → full).

* **Configuration** is versioned in ``rollout_configs``. A product lead *proposes* a version; a risk
  manager, never the same person, *approves* or *rejects* it (four-eyes). Every step writes its row
  and one audit row in one transaction. The version in force at time *t* is the approved version
  with the latest ``starts_at <= t`` (so a phase can be scheduled ahead, and history is exact); its
  ``ends_at`` is the next approved version's start. With no approved version, :data:`DEFAULT_PHASE`
  applies (full production with the settings' policy) so a fresh install scores as before.
* **Assignment** (:func:`assign`) is a pure function of the phase, the applicant and the officer:
  ineligible applications (officer not eligible for the phase, loan above the phase's cap) are
  ``excluded`` (the usual manual process, outside the comparison); eligible ones go to the ``ai``
  arm when ``bucket(salt, applicant_id) < ai_share``, else to ``control``. The bucket is a keyed
  hash, so the same applicant always lands in the same place, and because the salt is kept across
  versions, an applicant in the AI arm at 10% stays there at 50%. In shadow mode every application
  is ``control``: the model scores silently and humans decide.
* **Visibility**: the officer sees the AI card only in the ``ai`` arm outside shadow mode
  (``ai_visible``); everywhere else the prediction is stored for measurement and never shown.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from backend.compliance import AuditRepository
from backend.domain import Actor, Perm, PolicySettings, Role, allowed
from backend.identity import UserRepository
from backend.platform.db.engine import Database
from backend.platform.ports import Clock
from backend.rollout.queries import RolloutRepository

if TYPE_CHECKING:
    from backend.platform.db.tables_governance import RolloutConfig

PHASES = ("shadow", "pilot", "scaled", "full")
PHASE_LABELS = {"shadow": "Shadow mode", "pilot": "Pilot", "scaled": "Scaled rollout", "full": "Full production"}
FEATURES = ("explanations", "qa", "letters")
FEATURE_LABELS = {"explanations": "GenAI explanations", "qa": "Decision Q&A", "letters": "Adverse action letters"}
ARMS = ("ai", "control", "excluded")
AI, CONTROL, EXCLUDED = ARMS
DEFAULT_ROLES = (Role.LOAN_OFFICER.value, Role.RISK_MANAGER.value)
STATUSES = ("proposed", "approved", "rejected", "withdrawn")
MAX_NOTE = 2000
CACHE_SECONDS = 2.0


class RolloutError(ValueError):
    """A refused rollout request; the message says why and what to do (nothing was written)."""


@dataclass(frozen=True)
class Phase:
    """One rollout version (or the built-in default, version 0)."""

    version: int
    phase: str
    ai_share: float
    loan_amount_cap: float
    confidence_threshold: float
    eligible_roles: tuple[str, ...] = DEFAULT_ROLES
    senior_only: bool = False
    eligible_officers: tuple[str, ...] = ()
    features: dict[str, bool] = field(default_factory=lambda: dict.fromkeys(FEATURES, True))
    salt: str = "default"
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    status: str = "approved"
    rationale: str = ""
    proposed_by: str = "system"
    proposed_at: datetime | None = None
    reviewed_by: str | None = None
    reviewed_at: datetime | None = None
    review_note: str | None = None
    id: str | None = None

    @property
    def label(self) -> str:
        return PHASE_LABELS.get(self.phase, self.phase)

    def enabled(self, feature: str) -> bool:
        return bool(self.features.get(feature, True))

    def describe(self) -> str:
        who = "senior officers" if self.senior_only else "officers"
        if self.eligible_officers:
            who = f"{len(self.eligible_officers)} named officers"
        if self.phase == "shadow":
            return "The model scores every application silently; officers decide without it."
        if self.phase == "full":  # eligibility does not apply in full production (see eligibility())
            return (f"Every application in the AI arm; loans above ${self.loan_amount_cap:,.0f} go to manual "
                    f"review with the AI card; confidence threshold {self.confidence_threshold:.2f}.")
        return (f"{self.ai_share:.0%} of eligible applications in the AI arm; {who}; loans up to "
                f"${self.loan_amount_cap:,.0f}; confidence threshold {self.confidence_threshold:.2f}.")


@dataclass(frozen=True)
class Assignment:
    arm: str  # ai | control | excluded
    phase: str
    version: int
    ai_visible: bool
    bucket: float
    reason: str


@dataclass(frozen=True)
class OfficerInfo:
    username: str
    role: str
    senior: bool = False


def default_phase(policy: PolicySettings) -> Phase:
    return Phase(version=0, phase="full", ai_share=1.0, loan_amount_cap=policy.loan_amount_cap,
                 confidence_threshold=policy.confidence_threshold, rationale="built-in default: no rollout "
                 "configured", salt="default")


def bucket(salt: str, applicant_id: str) -> float:
    """A uniform number in [0, 1) fixed by the salt and the applicant (keyed BLAKE2b)."""
    digest = hashlib.blake2b(str(applicant_id).encode("utf-8", "surrogatepass"), digest_size=8,
                             key=salt.encode()[:64]).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def eligibility(phase: Phase, officer: OfficerInfo, loan_amount: float) -> str | None:
    """Why the application is outside the phase's experiment, or None when it is eligible.

    In full production everyone uses the AI: loans above the cap are sent to manual review by the
    decision policy (with the AI card), not taken out of the process."""
    if phase.phase == "full":
        return None
    if phase.eligible_roles and officer.role not in phase.eligible_roles:
        return f"role {officer.role} is not in this phase"
    if phase.senior_only and not officer.senior:
        return "this phase is for senior officers only"
    if phase.eligible_officers and officer.username not in phase.eligible_officers:
        return "officer is not named for this phase"
    if loan_amount > phase.loan_amount_cap:
        return f"loan amount above the phase's ${phase.loan_amount_cap:,.0f} cap"
    return None


def assign(phase: Phase, *, applicant_id: str, officer: OfficerInfo, loan_amount: float) -> Assignment:
    b = bucket(phase.salt, applicant_id)
    if phase.phase == "shadow":
        return Assignment(CONTROL, phase.phase, phase.version, False, b, "shadow mode: the model scores silently")
    why = eligibility(phase, officer, loan_amount)
    if why is not None:
        return Assignment(EXCLUDED, phase.phase, phase.version, False, b, why)
    if b < phase.ai_share:
        return Assignment(AI, phase.phase, phase.version, True, b, f"hash bucket {b:.3f} < {phase.ai_share:.2f}")
    return Assignment(CONTROL, phase.phase, phase.version, False, b, f"hash bucket {b:.3f} >= {phase.ai_share:.2f}")


def _phase(row: RolloutConfig, ends_at: datetime | None = None) -> Phase:
    return Phase(version=row.version, phase=row.phase, ai_share=float(row.ai_share),
                 loan_amount_cap=float(row.loan_amount_cap), confidence_threshold=float(row.confidence_threshold),
                 eligible_roles=tuple(row.eligible_roles or ()), senior_only=bool(row.senior_only),
                 eligible_officers=tuple(row.eligible_officers or ()),
                 features={f: bool((row.features or {}).get(f, True)) for f in FEATURES}, salt=row.salt,
                 starts_at=row.starts_at, ends_at=ends_at if ends_at is not None else row.ends_at, status=row.status,
                 rationale=row.rationale or "", proposed_by=row.proposed_by, proposed_at=row.proposed_at,
                 reviewed_by=row.reviewed_by, reviewed_at=row.reviewed_at, review_note=row.review_note,
                 id=str(row.id))


def _note(text: str | None, what: str, *, required: bool = False) -> str:
    text = (text or "").strip()
    if required and len(text) < 10:
        raise RolloutError(f"{what}: write at least 10 characters so the decision can be followed later.")
    if len(text) > MAX_NOTE:
        raise RolloutError(f"{what}: at most {MAX_NOTE:,} characters (it has {len(text):,}).")
    if "\x00" in text:
        raise RolloutError(f"{what}: contains a NUL character; remove it.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise RolloutError(f"{what}: contains an invalid character (a lone surrogate); remove it.") from None
    return text


class RolloutService:
    def __init__(self, db: Database, clock: Clock, policy: PolicySettings) -> None:
        self.db = db
        self.clock = clock
        self.policy = policy
        self._lock = threading.Lock()
        self._cached: tuple[float, list[Phase]] | None = None

    # -- reads -------------------------------------------------------------------------------------
    def history(self) -> list[Phase]:
        """Every version, newest first; approved versions carry their computed ``ends_at``."""
        with self.db.read() as s:
            rows = RolloutRepository(s).newest_first()
        approved = sorted((r for r in rows if r.status == "approved"), key=lambda r: (r.starts_at, r.version))
        ends = {r.version: nxt.starts_at for r, nxt in zip(approved, approved[1:], strict=False)}
        return [_phase(r, ends.get(r.version)) for r in rows]

    def _approved(self) -> list[Phase]:
        """Approved versions in start order (cached for a moment: the scoring path asks every time)."""
        now = time.monotonic()
        with self._lock:
            if self._cached is not None and now - self._cached[0] < CACHE_SECONDS:
                return self._cached[1]
        phases = sorted((p for p in self.history() if p.status == "approved"),
                        key=lambda p: (p.starts_at or datetime.min, p.version))
        with self._lock:
            self._cached = (now, phases)
        return phases

    def invalidate(self) -> None:
        with self._lock:
            self._cached = None

    def active(self, at: datetime | None = None) -> Phase:
        """The version in force at ``at`` (default: now)."""
        at = at or self.clock.now()
        current = None
        for p in self._approved():
            if p.starts_at is not None and p.starts_at <= at:
                current = p
        return current or default_phase(self.policy)

    def pending(self) -> list[Phase]:
        return [p for p in self.history() if p.status == "proposed"]

    def assign(self, *, applicant_id: str, officer: OfficerInfo, loan_amount: float,
               at: datetime | None = None) -> Assignment:
        return assign(self.active(at), applicant_id=applicant_id, officer=officer, loan_amount=loan_amount)

    # -- writes (four-eyes) ------------------------------------------------------------------------
    def propose(self, actor: Actor, *, phase: str, ai_share: float, loan_amount_cap: float,
                confidence_threshold: float, starts_at: datetime | None = None,
                eligible_roles: tuple[str, ...] | list[str] = DEFAULT_ROLES, senior_only: bool = False,
                eligible_officers: tuple[str, ...] | list[str] = (), features: dict[str, bool] | None = None,
                rationale: str = "", salt: str | None = None) -> Phase:
        """Record a proposed version (it changes nothing until a risk manager approves it)."""
        role = self._role(actor, Perm.PROPOSE_ROLLOUT, "propose a rollout change")
        if phase not in PHASES:
            raise RolloutError(f"phase must be one of {', '.join(PHASES)} (got {phase!r}).")
        if not 0.0 <= float(ai_share) <= 1.0:
            raise RolloutError(f"the AI share is a fraction between 0 and 1 (got {ai_share}).")
        if phase == "shadow" and ai_share:
            raise RolloutError("shadow mode shows the AI to nobody: its AI share must be 0.")
        if phase != "shadow" and not ai_share:
            raise RolloutError(f"the {phase} phase needs an AI share above 0 (use shadow mode for 0).")
        if phase == "full" and ai_share != 1.0:
            raise RolloutError("full production means an AI share of 1.0; use the scaled phase for less.")
        if not float(loan_amount_cap) > 0:
            raise RolloutError("the loan-amount cap must be above $0.")
        if not 0.5 <= float(confidence_threshold) <= 1.0:
            raise RolloutError("the confidence threshold is the ensemble agreement required: between 0.5 and 1.0.")
        bad = [r for r in eligible_roles if r not in (Role.LOAN_OFFICER.value, Role.RISK_MANAGER.value)]
        if bad:
            raise RolloutError(f"only loan officers and risk managers decide applications (not {', '.join(bad)}).")
        if features is not None and (unknown := set(features) - set(FEATURES)):
            raise RolloutError(f"unknown features {sorted(unknown)}: expected {', '.join(FEATURES)}.")
        rationale = _note(rationale, "The rationale", required=True)
        if starts_at is not None and starts_at.tzinfo is None:
            raise RolloutError("the start date-time needs a time zone (e.g. 2026-02-01T09:00:00+00:00).")
        now = self.clock.now()
        starts_at = starts_at or now
        with self.db.transaction() as s:
            if phase != "shadow" and not eligible_officers and UserRepository(s).count_active(eligible_roles) == 0:
                raise RolloutError("no active user can decide in this phase: check the eligible roles.")
            repo = RolloutRepository(s)
            last = repo.latest()
            # the first version picks the assignment key (random unless given, e.g. by a reproducible
            # simulation); every later version keeps it, so assignment stays sticky
            salt = last.salt if last is not None else (salt or secrets.token_hex(8))[:32]
            row = repo.create(
                version=(last.version + 1) if last is not None else 1, phase=phase, ai_share=float(ai_share),
                eligible_roles=list(eligible_roles), senior_only=bool(senior_only),
                eligible_officers=[str(o)[:64] for o in eligible_officers], loan_amount_cap=float(loan_amount_cap),
                confidence_threshold=float(confidence_threshold),
                features={f: bool((features or {}).get(f, True)) for f in FEATURES}, salt=salt,
                starts_at=starts_at, rationale=rationale, proposed_by=actor.username[:64], proposed_at=now)
            AuditRepository(s).append(actor=actor.username, role=role, action="rollout_proposed",
                                      entity_type="rollout", entity_id=str(row.version), at=now,
                                      payload=self._payload(row))
            return _phase(row)

    def approve(self, version: int, actor: Actor, *, note: str = "") -> Phase:
        return self._review(version, actor, approve=True, note=note)

    def reject(self, version: int, actor: Actor, *, note: str) -> Phase:
        return self._review(version, actor, approve=False, note=note)

    def withdraw(self, version: int, actor: Actor) -> Phase:
        """The proposer takes back a proposal that is still waiting."""
        role = self._role(actor, Perm.PROPOSE_ROLLOUT, "withdraw a rollout proposal")
        now = self.clock.now()
        with self.db.transaction() as s:
            row = self._proposed(RolloutRepository(s), version)
            if row.proposed_by != actor.username:
                raise RolloutError("only the person who proposed a change can withdraw it.")
            row.status, row.reviewed_by, row.reviewed_at = "withdrawn", actor.username[:64], now
            AuditRepository(s).append(actor=actor.username, role=role, action="rollout_withdrawn",
                                      entity_type="rollout", entity_id=str(version), at=now,
                                      payload={"version": version})
            out = _phase(row)
        self.invalidate()
        return out

    def _review(self, version: int, actor: Actor, *, approve: bool, note: str) -> Phase:
        role = self._role(actor, Perm.APPROVE_ROLLOUT, "approve or reject a rollout change")
        note = _note(note, "The review note", required=not approve)
        now = self.clock.now()
        with self.db.transaction() as s:
            row = self._proposed(RolloutRepository(s), version)
            if row.proposed_by == actor.username:
                raise RolloutError("four-eyes: the person who proposed a change cannot approve or reject it.")
            row.status = "approved" if approve else "rejected"
            row.reviewed_by, row.reviewed_at, row.review_note = actor.username[:64], now, note or None
            if approve and row.starts_at < now:
                row.starts_at = now  # a change applies to new applications from its approval on
            AuditRepository(s).append(actor=actor.username, role=role,
                                      action="rollout_approved" if approve else "rollout_rejected",
                                      entity_type="rollout", entity_id=str(version), at=now,
                                      payload={**self._payload(row), "note": note})
            out = _phase(row)
        self.invalidate()
        return out

    # -- helpers -----------------------------------------------------------------------------------
    def _role(self, actor: Actor, perm: Perm, what: str) -> str:
        """The actor's role from the users table (refused when unknown, disabled or not allowed)."""
        with self.db.read() as s:
            user = UserRepository(s).by_username(actor.username)
        if user is None or user.disabled:
            raise RolloutError(f"{actor.username!r} is not an active user; a named person must {what}.")
        if not allowed(user.role, perm):
            raise RolloutError(f"a {user.role.replace('_', ' ')} may not {what}.")
        return user.role

    @staticmethod
    def _proposed(repo: RolloutRepository, version: int) -> RolloutConfig:
        row = repo.by_version(version)
        if row is None:
            raise RolloutError(f"there is no rollout version {version}.")
        if row.status != "proposed":
            raise RolloutError(f"version {version} is {row.status}, not waiting for review.")
        return row

    @staticmethod
    def _payload(row: RolloutConfig) -> dict[str, Any]:
        return {"version": row.version, "phase": row.phase, "ai_share": row.ai_share,
                "eligible_roles": list(row.eligible_roles or []), "senior_only": row.senior_only,
                "eligible_officers": list(row.eligible_officers or []), "loan_amount_cap": row.loan_amount_cap,
                "confidence_threshold": row.confidence_threshold, "features": dict(row.features or {}),
                "starts_at": row.starts_at.isoformat() if row.starts_at else None, "rationale": row.rationale}


def with_policy(phase: Phase, policy: Any) -> Any:
    """The model's decision policy with the phase's confidence threshold and loan-amount cap."""
    return replace(policy, confidence_threshold=phase.confidence_threshold, loan_amount_cap=phase.loan_amount_cap)


__all__ = ["AI", "ARMS", "CONTROL", "EXCLUDED", "FEATURES", "PHASES", "Assignment", "OfficerInfo", "Phase",
           "RolloutError", "RolloutService", "assign", "bucket", "default_phase", "eligibility", "with_policy"]

