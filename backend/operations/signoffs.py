"""Named release sign-offs for the current champion model, by area (the readiness checklist's last items).

Who may sign which area (the role is read from the users table; the signer must be an active user):

- ``pm`` (product): a product lead;
- ``engineering``: an ML engineer;
- ``compliance``: a risk manager;
- ``legal``: legal counsel has no console account, so an administrator or a risk manager *records* the
  sign-off and names the counsel who gave it. Both are stored: ``username`` is the recorder, ``display_name``
  the counsel.

A new sign-off for an area supersedes the active one of the same area for the same model version (it is
marked revoked, ``revoked_by`` saying by whom). Revoking needs the same role as signing that area. Every
change is one transaction with its audit row. Sign-offs for an earlier champion stay in the table but do
not count for the current one.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import Any

from backend.compliance import AuditRepository, OpsRepository, SignOffRecord
from backend.identity import UserRepository, normalize_username
from backend.platform.db.engine import Database
from backend.platform.ports import Clock

AREAS = ("pm", "engineering", "compliance", "legal")
AREA_LABELS = {"pm": "Product (PM)", "engineering": "Engineering", "compliance": "Compliance", "legal": "Legal"}
AREA_ROLES: dict[str, tuple[str, ...]] = {"pm": ("product_lead",), "engineering": ("ml_engineer",),
                                          "compliance": ("risk_manager",), "legal": ("admin", "risk_manager")}
MAX_NOTE = 2000
MAX_COUNSEL = 128

MSG_BAD_AREA = "unknown sign-off area {area!r}: expected one of pm, engineering, compliance, legal"
MSG_NOT_USER = "{username!r} is not an active console user: a sign-off is given by a named person with an account"
MSG_ROLE = "{role} may not sign off for {area}: that needs {needs}"
MSG_ROLE_REVOKE = "{role} may not revoke a {area} sign-off: that needs {needs}"
MSG_COUNSEL_REQUIRED = ("a legal sign-off needs the name of the legal counsel who gave it (counsel has no console "
                        "account: you record it on their behalf)")
MSG_COUNSEL_NOT_LEGAL = "a counsel name belongs to a legal sign-off only (area {area!r} is signed by the user)"
MSG_COUNSEL_BAD = f"the counsel's name must be 2 to {MAX_COUNSEL} printable characters"
MSG_NOTE_LONG = f"the note is too long (at most {MAX_NOTE} characters)"
MSG_NO_CHAMPION = "there is no champion model to sign off (train and promote one first)"
MSG_NOT_FOUND = "no sign-off {ref!r} (give its id, or the first 8 or more characters of it)"
MSG_AMBIGUOUS = "{ref!r} matches {n} sign-offs: give more characters of the id"
MSG_ALREADY_REVOKED = "sign-off {id} was already revoked ({by}, {at:%Y-%m-%d %H:%M} UTC)"
MIN_PREFIX = 8


class SignOffError(ValueError):
    """A sign-off request was refused; nothing was written. The message says why."""


ROLE_TEXT = {"loan_officer": "a loan officer", "risk_manager": "a risk manager", "product_lead": "a product lead",
             "ml_engineer": "an ML engineer", "admin": "an administrator"}


def _needs(area: str) -> str:
    return " or ".join(ROLE_TEXT[r] for r in AREA_ROLES[area])


def _role(role: str) -> str:
    return ROLE_TEXT.get(role, f"a {role.replace('_', ' ')}")


def _printable(text: str) -> bool:
    return all(unicodedata.category(c)[0] != "C" for c in text)


def areas_for(role: str | None) -> list[str]:
    """The areas a role may sign (and revoke)."""
    return [a for a in AREAS if role in AREA_ROLES[a]]


class SignOffService:
    def __init__(self, db: Database, clock: Clock, champion: Callable[[], str | None]) -> None:
        """``champion``: the current champion's version, or None when there is none."""
        self.db = db
        self.clock = clock
        self.champion = champion

    # -- writes ------------------------------------------------------------------------------------
    def add(self, username: str, area: str, *, note: str = "", counsel: str = "") -> SignOffRecord:
        """``username`` signs ``area`` for the current champion (for legal: records ``counsel``'s sign-off)."""
        if area not in AREAS:
            raise SignOffError(MSG_BAD_AREA.format(area=str(area)[:32]))
        counsel = (counsel or "").strip()
        if area == "legal" and not counsel:
            raise SignOffError(MSG_COUNSEL_REQUIRED)
        if area != "legal" and counsel:
            raise SignOffError(MSG_COUNSEL_NOT_LEGAL.format(area=area))
        if counsel and (len(counsel) < 2 or len(counsel) > MAX_COUNSEL or not _printable(counsel)):
            raise SignOffError(MSG_COUNSEL_BAD)
        if len(note or "") > MAX_NOTE:
            raise SignOffError(MSG_NOTE_LONG)
        version = self.champion()
        if not version:
            raise SignOffError(MSG_NO_CHAMPION)
        at = self.clock.now()
        with self.db.transaction() as s:
            user, role = self._user(s, username)
            if role not in AREA_ROLES[area]:
                raise SignOffError(MSG_ROLE.format(role=_role(role), area=area, needs=_needs(area)))
            repo = OpsRepository(s)
            old = [r.id for r in repo.signoff_records(model_version=version, area=area, active_only=True)]
            repo.revoke_signoffs(old, by=f"superseded by {user.username}", at=at)
            rec = repo.add_signoff(area=area, model_version=version, username=user.username,
                                   display_name=counsel or user.display_name, note=note or "", at=at)
            AuditRepository(s).append(
                actor=user.username, role=role, action="signoff_recorded", entity_type="signoff", entity_id=rec.id,
                at=at, payload={"area": area, "model_version": version, "signed_by": rec.display_name,
                                "recorded_by": user.username, **({"counsel": counsel} if counsel else {}),
                                **({"superseded": old} if old else {}), **({"note": note} if note else {})})
        return rec

    def revoke(self, username: str, ref: str, *, note: str = "") -> SignOffRecord:
        """Revoke one active sign-off (``ref``: its id or an unambiguous prefix of 8+ characters)."""
        if len(note or "") > MAX_NOTE:
            raise SignOffError(MSG_NOTE_LONG)
        at = self.clock.now()
        with self.db.transaction() as s:
            user, role = self._user(s, username)
            repo = OpsRepository(s)
            rec = self._find(repo, ref)
            if rec.revoked_at is not None:
                raise SignOffError(MSG_ALREADY_REVOKED.format(id=rec.id, by=rec.revoked_by, at=rec.revoked_at))
            if role not in AREA_ROLES[rec.area]:
                raise SignOffError(MSG_ROLE_REVOKE.format(role=_role(role), area=rec.area,
                                                          needs=_needs(rec.area)))
            repo.revoke_signoffs([rec.id], by=user.username, at=at)
            AuditRepository(s).append(
                actor=user.username, role=role, action="signoff_revoked", entity_type="signoff", entity_id=rec.id,
                at=at, payload={"area": rec.area, "model_version": rec.model_version, "signed_by": rec.display_name,
                                "recorded_by": rec.username, **({"note": note} if note else {})})
            return next(r for r in repo.signoff_records(model_version=rec.model_version, area=rec.area)
                        if r.id == rec.id)

    # -- reads -------------------------------------------------------------------------------------
    def records(self, *, version: str | None = None, include_revoked: bool = True,
                limit: int = 500) -> list[SignOffRecord]:
        with self.db.read() as s:
            return OpsRepository(s).signoff_records(model_version=version, active_only=not include_revoked,
                                                    limit=limit)

    def current(self, version: str | None = None) -> dict[str, SignOffRecord | None]:
        """The active sign-off of each area for ``version`` (default: the champion)."""
        version = version or self.champion()
        active = self.records(version=version, include_revoked=False) if version else []
        return {a: next((r for r in active if r.area == a), None) for a in AREAS}

    # -- helpers -----------------------------------------------------------------------------------
    @staticmethod
    def _user(s: Any, username: str) -> tuple[Any, str]:
        user = UserRepository(s).by_username(normalize_username(username))
        if user is None or user.disabled:
            raise SignOffError(MSG_NOT_USER.format(username=str(username)[:64]))
        return user, str(user.role)

    @staticmethod
    def _find(repo: OpsRepository, ref: str) -> SignOffRecord:
        ref = (ref or "").strip().lower()
        if len(ref) < MIN_PREFIX:
            raise SignOffError(MSG_NOT_FOUND.format(ref=ref[:40]))
        found = [r for r in repo.signoff_records(limit=100_000) if r.id.lower().startswith(ref)]
        if not found:
            raise SignOffError(MSG_NOT_FOUND.format(ref=ref[:40]))
        if len(found) > 1:
            raise SignOffError(MSG_AMBIGUOUS.format(ref=ref[:40], n=len(found)))
        return found[0]


def describe(rec: SignOffRecord) -> str:
    """Who signed, in words (legal: the counsel, recorded by the console user)."""
    if rec.area == "legal":
        return f"{rec.display_name} (legal counsel, recorded by {rec.username})"
    return f"{rec.display_name} ({rec.username})" if rec.display_name else rec.username
