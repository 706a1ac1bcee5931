"""Who may see an applicant's personal data in clear, and the audit row that records each look.

Policy (:attr:`Perm.REVEAL_PII`):

* **risk managers and administrators** may reveal the applicant id and direct PII (name, address,
  SSN, email, phone) of any application;
* **loan officers** only of the applications they submitted themselves (they took the application
  from the applicant and need the details to contact them or address a notice); another
  officer's application is refused exactly like a missing one (:data:`NOT_FOUND`);
* every other role (product lead, ML engineer) is refused (:data:`REVEAL_NOT_ALLOWED`).

A reveal decrypts, then writes one audit row ``pii_revealed`` (who, which application, which
fields, never the values) in the same transaction: no audit row, no clear text. A refused attempt
on an existing application is recorded too (``pii_reveal_refused``). Everything else in the
system shows the mask (:func:`backend.compliance.pii.mask_identifier`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from backend.compliance.audit_queries import AuditRepository
from backend.compliance.pii import APPLICANT_FIELD, applicant_masked, reveal_details
from backend.compliance.pii_keys import PiiKeyRing, is_token, token_kid
from backend.compliance.pii_queries import PiiRepository
from backend.domain import NOT_FOUND, Actor, DecisionError, DecisionNotFound, Perm, allowed, may_see, parse_id
from backend.platform.db.engine import Database
from backend.platform.ports import Clock

REVEAL_NOT_ALLOWED = "Your role may not reveal applicants' personal data."
LOOKUP_NOT_ALLOWED = "Your role may not look applications up by applicant."
UNREADABLE = ("The personal data of this application cannot be decrypted with the configured keys "
              "(key {kid!r}); nothing was revealed.")
MAX_FIND = 100


class RevealRefused(DecisionError):
    """The actor's role may not reveal personal data."""


class PiiUnreadable(DecisionError):
    """The stored tokens cannot be decrypted (a key missing from the ring, or altered data)."""


@dataclass(frozen=True)
class ApplicantSummary:
    """What any viewer of an application sees: the mask, and whether more is on file."""

    application_id: str
    applicant_masked: str
    has_details: bool  # name/address/SSN/email/phone were given (encrypted)
    encrypted: bool  # False: a row written before encryption (still plaintext until `creditrisk pii rotate`)
    may_reveal: bool  # the viewer's role and ownership allow a reveal


@dataclass(frozen=True)
class RevealedApplicant:
    application_id: str
    applicant_id: str
    details: dict[str, str] = field(default_factory=dict)  # name, address, ssn, email, phone (as given)

    @property
    def fields(self) -> list[str]:
        return ["applicant_id", *sorted(self.details)]


class PiiService:
    def __init__(self, db: Database, clock: Clock, ring: PiiKeyRing) -> None:
        self.db = db
        self.clock = clock
        self.ring = ring

    def _role(self, repo: PiiRepository, actor: Actor) -> str:
        """The actor's current role (from the users table; a system actor keeps its stated role)."""
        user = repo.user(actor.id) if isinstance(actor.id, uuid.UUID) else None
        if user is None:
            return actor.role
        if user.disabled:
            raise DecisionNotFound(NOT_FOUND)
        return user.role

    def summary(self, application_id: str | uuid.UUID, *, actor: Actor) -> ApplicantSummary:
        aid = parse_id(application_id)
        with self.db.read() as s:
            repo = PiiRepository(s)
            role = self._role(repo, actor)
            app = repo.application(aid)
            if app is None or not may_see(role, actor.id, app.officer_id):
                raise DecisionNotFound(NOT_FOUND)
            return ApplicantSummary(str(app.id), applicant_masked(app), app.pii is not None,
                                    is_token(app.applicant_id), allowed(role, Perm.REVEAL_PII))

    def reveal(self, application_id: str | uuid.UUID, *, actor: Actor) -> RevealedApplicant:
        """The applicant id and direct PII in clear, recorded as ``pii_revealed`` in the same transaction."""
        aid = parse_id(application_id)
        refusal: Exception | None = None
        out: RevealedApplicant | None = None
        with self.db.transaction() as s:
            repo = PiiRepository(s)
            role = self._role(repo, actor)
            app = repo.application(aid)
            if app is None:
                raise DecisionNotFound(NOT_FOUND)
            audit = AuditRepository(s)
            if not allowed(role, Perm.REVEAL_PII) or not may_see(role, actor.id, app.officer_id):
                why = "role" if not allowed(role, Perm.REVEAL_PII) else "not_own_application"
                audit.append(actor=actor.username[:64], role=role, action="pii_reveal_refused",
                             entity_type="application", entity_id=str(aid), payload={"reason": why},
                             at=self.clock.now())
                refusal = RevealRefused(REVEAL_NOT_ALLOWED) if why == "role" else DecisionNotFound(NOT_FOUND)
            else:
                try:
                    out = RevealedApplicant(
                        str(aid), self.ring.reveal(app.applicant_id, field=APPLICANT_FIELD, row=str(aid)),
                        reveal_details(self.ring, str(aid), app.pii))
                except ValueError:  # PiiDecryptError, or a details blob that is not JSON
                    kid = token_kid(app.applicant_id) or token_kid(app.pii) or "?"
                    raise PiiUnreadable(UNREADABLE.format(kid=kid)) from None
                audit.append(actor=actor.username[:64], role=role, action="pii_revealed", entity_type="application",
                             entity_id=str(aid), at=self.clock.now(),
                             payload={"fields": out.fields, "own_application": app.officer_id == actor.id})
        if refusal is not None or out is None:
            raise refusal or DecisionNotFound(NOT_FOUND)
        return out

    def find(self, applicant_id: str, *, actor: Actor, limit: int = MAX_FIND) -> list[str]:
        """Application ids of one applicant (blind-index lookup; officers: their own applications only)."""
        with self.db.read() as s:
            repo = PiiRepository(s)
            role = self._role(repo, actor)
            if not allowed(role, Perm.VIEW_DECISIONS):
                raise RevealRefused(LOOKUP_NOT_ALLOWED)
            own = None if allowed(role, Perm.VIEW_ALL_DECISIONS) else actor.id
            ids = repo.find(self.ring.blind_indexes(applicant_id), applicant_id, officer_id=own,
                            limit=max(1, min(limit, MAX_FIND)))
            return [str(i) for i in ids]
