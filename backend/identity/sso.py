"""Single sign-on: from the claims of a verified ID token to one console user.

Streamlit's ``st.login`` (Authlib underneath) has already checked the token's signature, issuer,
audience, expiry and nonce; ``st.user`` holds its claims. Here they become a user of ours:

* the groups claim gives **exactly one** role through ``sso.group_roles``. Groups that are not in the
  mapping are ignored (a directory user belongs to many); no mapped group, or mapped groups that
  name two different roles, is a refusal: granting the "higher" role would let one person hold both
  sides of a four-eyes control (a product lead who proposes and a risk manager who approves);
* the user is created or updated just in time (username from ``preferred_username``, else ``email``,
  else ``sub``). Their ``password_hash`` is ``sso$<sha256(issuer|subject)>``: not a bcrypt hash, so
  password login can never succeed for them, and it ties the username to one identity, so a second
  identity with the same name (or a local password account) is refused instead of taken over;
* every outcome is audited in the same transaction as the write: ``sso_user_provisioned``,
  ``sso_role_changed``, ``sso_login``, or ``sso_login_refused`` with the reason.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from backend.compliance import AuditRepository
from backend.domain import ROLE_LABELS, Actor, Role
from backend.identity.config import SsoSettings
from backend.identity.queries import UserRepository
from backend.platform.clock import SystemClock
from backend.platform.db.engine import Database
from backend.platform.ports import Clock

SSO_HASH_PREFIX = "sso$"
MAX_AUDITED_GROUPS = 50

NO_SUBJECT = "Sign-in refused: the identity provider did not say who you are (no 'sub' claim)."
NO_USERNAME = "Sign-in refused: no usable username in your identity (preferred_username, email or sub)."
NO_MAPPED_GROUP = ("Sign-in refused: none of your groups gives access to this console. Ask your administrator "
                   "to add you to one of the groups mapped to a console role.")
AMBIGUOUS_GROUPS = ("Sign-in refused: your groups map to more than one console role ({roles}). Each person "
                    "holds exactly one role here (four-eyes controls depend on it); ask your administrator "
                    "to remove you from all but one of those groups.")
EMAIL_DOMAIN_REFUSED = "Sign-in refused: your email address is not in a domain allowed for this console."
EMAIL_UNVERIFIED = "Sign-in refused: the identity provider says your email address is not verified."
ACCOUNT_DISABLED = "Sign-in refused: your console account is disabled. Ask an administrator."
USERNAME_TAKEN = ("Sign-in refused: the console username {username!r} belongs to another account. "
                  "Ask an administrator.")
IDENTITY_EXPIRED = "Your single sign-on has expired. Sign in again."
MFA_MISSING = ("Sign-in refused: your identity provider says you signed in without a second factor; this console "
               "needs multi-factor authentication. Sign in again with it.")


@dataclass(frozen=True)
class SsoIdentity:
    issuer: str
    subject: str
    username: str
    display_name: str
    email: str
    groups: tuple[str, ...]
    issued_at: datetime | None


@dataclass(frozen=True)
class SsoOutcome:
    ok: bool
    user: Actor | None
    message: str
    reason: str  # ok | missing_subject | no_username | no_mapped_group | ambiguous_groups | email_domain |
    #              email_unverified | disabled | username_taken | local_account | identity_expired


class SsoRefused(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


# -- pure claim handling --------------------------------------------------------------------------
def claim(claims: Mapping[str, Any], path: str) -> Any:
    """A claim by name, or by dotted path into nested objects (``realm_access.roles``)."""
    if path in claims:
        return claims[path]
    node: Any = claims
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def groups_of(claims: Mapping[str, Any], groups_claim: str) -> tuple[str, ...]:
    """The groups claim as strings: a list, or one string (some providers send a single group so)."""
    value = claim(claims, groups_claim)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        return ()
    return tuple(dict.fromkeys(str(g).strip() for g in value if isinstance(g, str | int) and str(g).strip()))


def role_for_groups(groups: tuple[str, ...] | list[str], group_roles: Mapping[str, str]) -> str:
    """The one role the mapped groups give (matched case-insensitively); raises :class:`SsoRefused`."""
    mapping = {g.casefold(): r for g, r in group_roles.items()}
    roles = {mapping[g.casefold()] for g in groups if g.casefold() in mapping}
    if not roles:
        raise SsoRefused("no_mapped_group", NO_MAPPED_GROUP)
    if len(roles) > 1:
        labels = ", ".join(sorted(ROLE_LABELS.get(Role(r), r) for r in roles))
        raise SsoRefused("ambiguous_groups", AMBIGUOUS_GROUPS.format(roles=labels))
    return roles.pop()


USERNAME_OK = re.compile(r"^[a-z0-9][a-z0-9_.-]{2,63}$")


def username_from(claims: Mapping[str, Any]) -> str:
    """``preferred_username``, else ``email``, else ``sub``: lowercased; any character a console username
    cannot hold ('@' included) becomes '_'; at most 64 characters."""
    for key in ("preferred_username", "email", "sub"):
        raw = claims.get(key)
        if not isinstance(raw, str) or not raw.strip():
            continue
        name = re.sub(r"[^a-z0-9_.-]", "_", raw.strip().lower())[:64]
        if USERNAME_OK.match(name):
            return name
    raise SsoRefused("no_username", NO_USERNAME)


def _issued_at(claims: Mapping[str, Any]) -> datetime | None:
    iat = claims.get("iat")
    if isinstance(iat, bool) or not isinstance(iat, int | float):
        return None
    return datetime.fromtimestamp(float(iat), tz=UTC)


def multi_factor(claims: Mapping[str, Any], cfg: SsoSettings) -> bool | None:
    """Whether the ID token shows a second factor: True or False from ``amr`` / ``acr``, None when it says
    nothing about how the user signed in (an ``acr`` outside ``mfa_acr`` says nothing unless that list is set)."""
    amr, acr = claims.get("amr"), claims.get("acr")
    methods = [amr] if isinstance(amr, str) else list(amr) if isinstance(amr, list | tuple) else None
    if isinstance(acr, str) and acr in cfg.mfa_acr:
        return True
    if methods is not None:
        return any(isinstance(m, str) and m.strip().lower() in cfg.mfa_amr for m in methods)
    if isinstance(acr, str) and cfg.mfa_acr:
        return False
    return None


def identity_from_claims(claims: Mapping[str, Any], cfg: SsoSettings) -> SsoIdentity:
    """Check the claims against the settings (subject, multi-factor, email domain); raises :class:`SsoRefused`."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject.strip():
        raise SsoRefused("missing_subject", NO_SUBJECT)
    if cfg.mfa_required:
        shown = multi_factor(claims, cfg)
        if shown is False or (shown is None and cfg.mfa_claim_required):
            raise SsoRefused("mfa_missing", MFA_MISSING)
    email = claims.get("email") if isinstance(claims.get("email"), str) else ""
    if cfg.allowed_email_domains:
        domain = str(email).rsplit("@", 1)[-1].lower() if "@" in str(email) else ""
        if domain not in cfg.allowed_email_domains:
            raise SsoRefused("email_domain", EMAIL_DOMAIN_REFUSED)
        if claims.get("email_verified") is False:
            raise SsoRefused("email_unverified", EMAIL_UNVERIFIED)
    username = username_from(claims)
    name = claims.get("name")
    display = name.strip()[:128] if isinstance(name, str) and name.strip() else username
    return SsoIdentity(issuer=str(claims.get("iss") or ""), subject=subject, username=username,
                       display_name=display, email=str(email or "")[:254],
                       groups=groups_of(claims, cfg.groups_claim), issued_at=_issued_at(claims))


def sso_marker(issuer: str, subject: str) -> str:
    """The ``password_hash`` of an SSO account: never a valid bcrypt hash, and names its identity."""
    return SSO_HASH_PREFIX + hashlib.sha256(f"{issuer}|{subject}".encode("utf-8", "surrogatepass")).hexdigest()


def is_sso_account(password_hash: str) -> bool:
    return password_hash.startswith(SSO_HASH_PREFIX)


# -- the service ----------------------------------------------------------------------------------
class SsoService:
    def __init__(self, db: Database, settings: SsoSettings, clock: Clock | None = None) -> None:
        self.db = db
        self.cfg = settings
        self.clock = clock or SystemClock()

    def identity_expired(self, claims: Mapping[str, Any]) -> bool:
        """The ID token was issued longer ago than ``max_identity_age_hours`` (or carries no ``iat``)."""
        iat = _issued_at(claims)
        if iat is None:
            return True
        return (self.clock.now() - iat).total_seconds() > self.cfg.max_identity_age_hours * 3600

    def sign_in(self, claims: Mapping[str, Any], *, client: str = "unknown") -> SsoOutcome:
        """Map the claims to a role, provision or update the user, and audit it, in one transaction."""
        now = self.clock.now()
        base: dict[str, Any] = {"provider": self.cfg.provider, "client": client[:120]}
        candidate = _safe_username(claims)
        try:
            if self.identity_expired(claims):
                raise SsoRefused("identity_expired", IDENTITY_EXPIRED)
            ident = identity_from_claims(claims, self.cfg)
            base["groups"] = list(ident.groups[:MAX_AUDITED_GROUPS])
            role = role_for_groups(ident.groups, self.cfg.group_roles)
        except SsoRefused as exc:
            return self._refuse(exc, candidate, base, now)
        senior = any(g.casefold() in {s.casefold() for s in self.cfg.senior_groups} for g in ident.groups)
        marker = sso_marker(ident.issuer, ident.subject)
        with self.db.transaction() as s:
            users, audit = UserRepository(s), AuditRepository(s)
            user = users.by_username(ident.username)
            if user is not None and user.password_hash != marker:
                reason = "username_taken" if is_sso_account(user.password_hash) else "local_account"
                refused = SsoRefused(reason, USERNAME_TAKEN.format(username=ident.username))
                self._audit_refusal(audit, refused, ident.username, user.role, str(user.id), base, now)
                return SsoOutcome(False, None, refused.message, reason)
            if user is not None and user.disabled:
                refused = SsoRefused("disabled", ACCOUNT_DISABLED)
                self._audit_refusal(audit, refused, ident.username, user.role, str(user.id), base, now)
                return SsoOutcome(False, None, refused.message, "disabled")
            if user is None:
                user = users.create(username=ident.username, display_name=ident.display_name, role=role,
                                    senior=senior, password_hash=marker, at=now)
                audit.append(actor=ident.username, role=role, action="sso_user_provisioned", entity_type="user",
                             entity_id=str(user.id), at=now,
                             payload={**base, "username": ident.username, "role": role, "senior": senior,
                                      "email": ident.email})
            else:
                if user.role != role or user.senior != senior:
                    audit.append(actor=ident.username, role=role, action="sso_role_changed", entity_type="user",
                                 entity_id=str(user.id), at=now,
                                 payload={**base, "username": ident.username, "from_role": user.role, "to_role": role,
                                          "from_senior": user.senior, "to_senior": senior})
                    user.role, user.senior = role, senior
                if user.display_name != ident.display_name:
                    user.display_name = ident.display_name
                user.updated_at = now
            audit.append(actor=ident.username, role=role, action="sso_login", entity_type="user",
                         entity_id=str(user.id), at=now, payload={**base, "reason": "ok"})
            s.flush()
            return SsoOutcome(True, Actor.of(user), "", "ok")

    def _refuse(self, refused: SsoRefused, candidate: str, base: dict[str, Any], now: datetime) -> SsoOutcome:
        with self.db.transaction() as s:
            self._audit_refusal(AuditRepository(s), refused, candidate, "", candidate, base, now)
        return SsoOutcome(False, None, refused.message, refused.reason)

    @staticmethod
    def _audit_refusal(audit: AuditRepository, refused: SsoRefused, actor: str, role: str, entity_id: str,
                       base: dict[str, Any], now: datetime) -> None:
        audit.append(actor=actor or "(unknown)", role=role, action="sso_login_refused", entity_type="user",
                     entity_id=entity_id or "(unknown)", at=now, payload={**base, "reason": refused.reason})


def _safe_username(claims: Mapping[str, Any]) -> str:
    try:
        return username_from(claims)
    except SsoRefused:
        return ""
