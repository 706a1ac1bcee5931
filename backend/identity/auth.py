"""Login, lockout and server-side sessions.

Closes the known gaps of cookie-only login:

* every check runs bcrypt, also for unknown, disabled or locked users (no timing oracle), and every
  failure returns the same message (no username enumeration);
* failed attempts are scored per (username, client) with exponential decay; past the threshold the
  pair is locked for ``base * 2**excess`` seconds, capped at ``lockout_max_seconds`` — nobody can
  lock an account forever, and an attacker's client does not lock the owner's; the failures of one
  account are also summed over every client (key ``<username>|*``, threshold
  ``account_lockout_threshold``, same decay and cap), so rotating addresses does not buy more
  guesses: past that threshold every client of the account waits (a bounded lock, never permanent);
* a password account whose role approves, overrides, promotes or administers (or any account that enrolled)
  also proves a TOTP code or a recovery code (:mod:`backend.identity.mfa`): in the same request
  (``code=``: the API and scripts) or as a second step (``two_step=True``: the console and the CLI prompt get a
  ticket bound to the user, valid ``auth.mfa_pending_seconds``, and call :meth:`AuthService.second_factor`).
  A wrong, replayed or malformed code counts as a failure in the same throttle as a wrong password, and a
  correct password does not clear the throttle until the second factor passes;
* sessions live in the database; the cookie carries only a random token whose SHA-256 is stored.
  Logout, disabling a user and password changes revoke sessions, so a copied cookie stops working.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from backend.compliance import AuditRepository
from backend.domain import Actor
from backend.identity.config import AuthSettings
from backend.identity.mfa import Enrolment, MfaService
from backend.identity.passwords import hash_password, verify_password
from backend.identity.queries import SessionRepository, ThrottleRepository, UserRepository
from backend.platform.clock import SystemClock
from backend.platform.db.engine import Database
from backend.platform.ports import Clock

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from backend.compliance import PiiKeyRing
    from backend.platform.db.tables_access import LoginThrottle, User

CLI_TOKEN_CLIENT = "cli-token"  # noqa: S105 - the sessions.client of a CLI token
CLI_TOKEN_PREFIX = "crcli_"  # noqa: S105 - what a CLI token starts with (the rest is random)
LOGIN_FAILED = ("Login failed: check the username and password. "
                "After repeated failures, wait a few minutes before trying again.")
MFA_CODE_NEEDED = ("Login failed: this account also needs the one-time code from its authenticator app "
                   "(or one of its recovery codes).")
MFA_ENROL_FIRST = ("Login failed: this account must set up its second factor first: sign in to the console "
                   "once to enrol an authenticator app.")
MFA_CODE_FAILED = ("That code was not accepted: enter the current 6-digit code from your authenticator app, or "
                   "an unused recovery code. After repeated failures, wait a few minutes before trying again.")
MFA_TICKET_EXPIRED = "The sign-in took too long: enter your password again."
SESSION_TOUCH_SECONDS = 60
FACTOR_OK = ("totp", "recovery")


@dataclass(frozen=True)
class LoginResult:
    ok: bool
    user: Actor | None
    message: str
    # internal only (audit): ok | unknown_user | bad_password | locked | disabled | mfa_pending | mfa_<why>
    reason: str
    needs: str = ""  # two-step logins: "code" or "enrolment" (then ``ticket`` continues the login)
    ticket: str = ""
    recovery_codes: tuple[str, ...] = ()  # shown once, after an enrolment
    factor: str = ""  # totp | recovery, when one was used


def normalize_username(username: str) -> str:
    return (username or "").strip().lower()[:64]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class AuthService:
    def __init__(self, db: Database, settings: AuthSettings, clock: Clock | None = None,
                 ring: PiiKeyRing | None = None) -> None:
        self.db = db
        self.cfg = settings
        self.clock = clock or SystemClock()
        self.mfa = MfaService(settings, ring)
        self._dummy_hash = hash_password(secrets.token_urlsafe(16), settings.bcrypt_rounds)
        self._ticket_key = secrets.token_bytes(32)  # tickets live as long as this process's service

    # -- login -------------------------------------------------------------------------------
    def authenticate(self, username: str, password: str, *, client: str = "unknown", code: str | None = None,
                     two_step: bool = False) -> LoginResult:
        """Check a password (and the second factor: ``code`` now, or with ``two_step`` a ticket for
        :meth:`second_factor`). Every outcome is one audit row; failures feed the throttle."""
        name = normalize_username(username)
        now = self.clock.now()
        key, account_key = f"{name}|{client}"[:200], f"{name}|*"[:200]
        with self.db.transaction() as s:
            user = UserRepository(s).by_username(name) if name else None
            throttles = ThrottleRepository(s)
            account = throttles.get(account_key, for_update=True)
            thr = throttles.get(key, for_update=True) if key != account_key else account
            locked = any(t is not None and t.locked_until is not None and t.locked_until > now for t in (thr, account))
            stored = user.password_hash if user is not None else self._dummy_hash
            good = verify_password(password or "", stored)  # always pay the bcrypt cost
            if user is None:
                reason = "unknown_user"
            elif locked:
                reason = "locked"
            elif user.disabled:
                reason = "disabled"
            else:
                reason = "ok" if good else "bad_password"
            factor, needs = "", ""
            if reason == "ok" and user is not None:
                state = self.mfa.state(s, user.id)
                if state == "enrolled" or self.mfa.required(user.role):
                    if two_step:
                        needs = "code" if state == "enrolled" else "enrolment"
                    elif state != "enrolled":
                        reason = "mfa_not_enrolled"
                    else:
                        factor = self.mfa.verify(s, user.id, code, now)
                        reason = "ok" if factor in FACTOR_OK else f"mfa_{factor}"
            if needs and user is not None:  # the password is right; the throttle stays until the factor passes
                AuditRepository(s).append(actor=name, role=user.role, entity_type="user", entity_id=str(user.id),
                                          action="login_password_accepted", at=now,
                                          payload={"client": client, "second_factor": needs})
                return LoginResult(False, None, "", "mfa_pending", needs=needs, ticket=self._ticket(user.id, client))
            return self._finish(s, user, name, reason, factor, client=client, key=key, account_key=account_key,
                                thr=thr, account=account, now=now)

    def _finish(self, s: Session, user: User | None, name: str, reason: str, factor: str, *, client: str, key: str,
                account_key: str, thr: LoginThrottle | None, account: LoginThrottle | None, now: datetime,
                codes: tuple[str, ...] = ()) -> LoginResult:
        """Update the throttle, write the audit row and say how the login ended."""
        throttles = ThrottleRepository(s)
        if reason == "ok":
            if thr is not None:
                thr.score, thr.locked_until, thr.updated_at = 0.0, None, now
        elif reason != "locked":
            thr = thr or throttles.create(key, now)
            self._fail(thr, now, self.cfg.lockout_threshold)
            if name and key != account_key:  # the account's total over every client
                self._fail(account or throttles.create(account_key, now), now, self.cfg.account_lockout_threshold)
        payload: dict[str, object] = {"client": client, "reason": reason}
        if factor:
            payload["second_factor"] = factor
        if factor == "recovery" and user is not None:
            payload["recovery_codes_left"] = self.mfa.recovery_left(s, user.id)
        AuditRepository(s).append(
            actor=name or "(blank)", role=user.role if user else "", entity_type="user",
            entity_id=str(user.id) if user else name or "(blank)",
            action="login_succeeded" if reason == "ok" else "login_failed", payload=payload, at=now)
        if reason == "ok" and user is not None:
            return LoginResult(True, Actor.of(user), "", reason, recovery_codes=codes,
                               factor=factor if factor in FACTOR_OK else "")
        message = {"mfa_missing": MFA_CODE_NEEDED, "mfa_not_enrolled": MFA_ENROL_FIRST}.get(
            reason, MFA_CODE_FAILED if reason.startswith("mfa_") else LOGIN_FAILED)
        return LoginResult(False, None, message, reason)

    # -- the second step (console, CLI prompt) ---------------------------------------------------
    def _ticket(self, user_id: uuid.UUID, client: str) -> str:
        body = f"{user_id}.{int(time.time() + self.cfg.mfa_pending_seconds)}"
        mac = hmac.new(self._ticket_key, f"{body}|{client}".encode(), hashlib.sha256).hexdigest()
        return f"{body}.{mac}"

    def _ticket_user(self, ticket: str, client: str) -> uuid.UUID | None:
        """The user a ticket was issued to (by this service, for ``client``), while it is valid."""
        body, _, mac = (ticket or "").rpartition(".")
        want = hmac.new(self._ticket_key, f"{body}|{client}".encode(), hashlib.sha256).hexdigest()
        if not body or not hmac.compare_digest(mac, want):
            return None
        uid, _, exp = body.partition(".")
        try:
            return uuid.UUID(uid) if int(exp) >= time.time() else None
        except ValueError:
            return None

    def begin_enrolment(self, ticket: str, *, client: str) -> Enrolment | None:
        """A new secret and its QR code for the ticket's user (who has no confirmed factor); None when the
        ticket is invalid or expired. The first good code (:meth:`second_factor`) confirms it."""
        uid = self._ticket_user(ticket, client)
        if uid is None:
            return None
        now = self.clock.now()
        with self.db.transaction() as s:
            user = UserRepository(s).get(uid)
            if user is None or user.disabled:
                return None
            enrol = self.mfa.begin(s, Actor.of(user), now)
            AuditRepository(s).append(actor=user.username, role=user.role, entity_type="user", entity_id=str(uid),
                                      action="mfa_enrolment_started", payload={"client": client}, at=now)
        return enrol

    def provision_mfa(self, username: str, *, actor: Actor) -> tuple[Enrolment, list[str]]:
        """Enrol ``username`` without their first code (the demo set-up, which hands the secret over in a
        mode-600 file): the secret, its QR code and the recovery codes. Audited; refused when enrolled."""
        now = self.clock.now()
        with self.db.transaction() as s:
            user = UserRepository(s).by_username(normalize_username(username))
            if user is None:
                raise ValueError(f"no user {username!r}")
            enrol = self.mfa.begin(s, Actor.of(user), now)
            codes = self.mfa.confirm(s, user.id, now)
            AuditRepository(s).append(actor=actor.username, role=actor.role, entity_type="user",
                                      entity_id=str(user.id), action="mfa_provisioned", at=now,
                                      payload={"username": user.username, "recovery_codes": len(codes)})
        return enrol, codes

    def second_factor(self, ticket: str, code: str | None, *, client: str) -> LoginResult:
        """The second step of a two-step login: ``code`` for the ticket's user. A pending enrolment is
        confirmed by its first good code (the result then carries the recovery codes, shown once)."""
        uid = self._ticket_user(ticket, client)
        if uid is None:
            return LoginResult(False, None, MFA_TICKET_EXPIRED, "mfa_ticket")
        now = self.clock.now()
        with self.db.transaction() as s:
            user = UserRepository(s).get(uid)
            name = user.username if user is not None else str(uid)
            key, account_key = f"{name}|{client}"[:200], f"{name}|*"[:200]
            throttles = ThrottleRepository(s)
            account = throttles.get(account_key, for_update=True)
            thr = throttles.get(key, for_update=True)
            locked = any(t is not None and t.locked_until is not None and t.locked_until > now for t in (thr, account))
            codes: tuple[str, ...] = ()
            factor = ""
            if user is None or user.disabled:
                reason = "disabled"
            elif locked:
                reason = "locked"
            else:
                pending = self.mfa.state(s, user.id) == "pending"
                factor = self.mfa.verify(s, user.id, code, now)
                if factor == "totp" and pending:
                    codes = tuple(self.mfa.confirm(s, user.id, now))
                    AuditRepository(s).append(actor=name, role=user.role, entity_type="user",
                                              entity_id=str(user.id), action="mfa_enrolled", at=now,
                                              payload={"client": client, "recovery_codes": len(codes)})
                reason = "ok" if factor in FACTOR_OK else f"mfa_{factor}"
            result = self._finish(s, user, name, reason, factor, client=client, key=key, account_key=account_key,
                                  thr=thr, account=account, now=now, codes=codes)
        if result.reason == "locked":
            return LoginResult(False, None, LOGIN_FAILED, "locked")
        return result

    def _fail(self, thr: LoginThrottle, now: datetime, threshold: float) -> None:
        """One more failure on ``thr`` (decayed first); at ``threshold`` it locks, for a bounded time."""
        thr.score = self._decayed(thr.score, (now - thr.updated_at).total_seconds()) + 1.0
        thr.updated_at = now
        if thr.score >= threshold:
            excess = thr.score - threshold
            secs = min(self.cfg.lockout_base_seconds * 2 ** min(excess, 30), self.cfg.lockout_max_seconds)
            thr.locked_until = now + timedelta(seconds=secs)

    def _decayed(self, score: float, elapsed: float) -> float:
        return score * math.pow(0.5, max(elapsed, 0.0) / self.cfg.failure_half_life_seconds)

    # -- sessions ----------------------------------------------------------------------------
    def start_session(self, user: Actor, *, client: str = "console") -> str:
        """Create a server-side session and return its token (only its hash is stored)."""
        token = secrets.token_urlsafe(32)
        now = self.clock.now()
        with self.db.transaction() as s:
            row = SessionRepository(s).start(token_hash=token_hash(token), user_id=user.id, at=now,
                                             expires_at=now + timedelta(hours=self.cfg.session_ttl_hours),
                                             client=client[:128])
            AuditRepository(s).append(actor=user.username, role=user.role, action="session_started",
                                      entity_type="session", entity_id=str(row.id), payload={"client": client}, at=now)
        return token

    def issue_cli_token(self, user: Actor, *, days: float, issued_by: Actor) -> str:
        """A token that proves ``user`` to the command line for ``days`` (a server-side session: only its
        SHA-256 is stored; disabling the user, changing the password or :meth:`revoke_cli_tokens` ends it).
        The audit row names who issued it and for whom."""
        if user.id is None:
            raise ValueError("CLI tokens are for users of the users table")
        token = CLI_TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self.clock.now()
        with self.db.transaction() as s:
            row = SessionRepository(s).start(token_hash=token_hash(token), user_id=user.id, at=now,
                                             expires_at=now + timedelta(days=days),
                                             client=f"{CLI_TOKEN_CLIENT} issued by {issued_by.username}"[:128])
            AuditRepository(s).append(actor=issued_by.username, role=issued_by.role, action="cli_token_issued",
                                      entity_type="user", entity_id=str(user.id), at=now,
                                      payload={"username": user.username, "session": str(row.id), "days": days})
        return token

    def revoke_cli_tokens(self, user: Actor, *, revoked_by: Actor) -> int:
        """End every CLI token of ``user``; the number ended."""
        if user.id is None:
            return 0
        now = self.clock.now()
        with self.db.transaction() as s:
            n = SessionRepository(s).revoke_client_kind(user.id, CLI_TOKEN_CLIENT, at=now, reason="cli_token_revoked")
            AuditRepository(s).append(actor=revoked_by.username, role=revoked_by.role, action="cli_tokens_revoked",
                                      entity_type="user", entity_id=str(user.id), at=now,
                                      payload={"username": user.username, "revoked": n})
        return n

    def validate(self, token: str | None) -> Actor | None:
        """The session's user, or None when the token is unknown, revoked, expired or the user disabled."""
        if not token:
            return None
        now = self.clock.now()
        with self.db.read() as s:
            row = SessionRepository(s).by_token_hash(token_hash(token))
            if row is None or row.revoked_at is not None or row.expires_at <= now:
                return None
            user = UserRepository(s).get(row.user_id)
            if user is None or user.disabled:
                return None
            info = Actor.of(user)
            stale = (now - row.last_seen_at).total_seconds() > SESSION_TOUCH_SECONDS
            sid = row.id
        if stale:
            with self.db.transaction() as s:
                SessionRepository(s).touch(sid, now)
        return info

    def end_session(self, token: str | None, *, reason: str = "logout") -> bool:
        if not token:
            return False
        now = self.clock.now()
        with self.db.transaction() as s:
            row = SessionRepository(s).by_token_hash(token_hash(token))
            if row is None or row.revoked_at is not None:
                return False
            row.revoked_at, row.revoked_reason = now, reason
            user = UserRepository(s).get(row.user_id)
            AuditRepository(s).append(actor=user.username if user else "?", role=user.role if user else "",
                                      action="logout" if reason == "logout" else "session_revoked",
                                      entity_type="session", entity_id=str(row.id), payload={"reason": reason}, at=now)
        return True
