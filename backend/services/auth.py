"""Login, lockout and server-side sessions.

Closes the known gaps of cookie-only login:

* every check runs bcrypt, also for unknown, disabled or locked users (no timing oracle), and every
  failure returns the same message (no username enumeration);
* failed attempts are scored per (username, client) with exponential decay; past the threshold the
  pair is locked for ``base * 2**excess`` seconds, capped at ``lockout_max_seconds`` — nobody can
  lock an account forever, and an attacker's client does not lock the owner's;
* sessions live in the database; the cookie carries only a random token whose SHA-256 is stored.
  Logout, disabling a user and password changes revoke sessions, so a copied cookie stops working.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from backend.clock import SystemClock
from backend.config import AuthSettings
from backend.db.engine import Database
from backend.db.repo_audit import AuditRepository
from backend.db.repo_users import SessionRepository, ThrottleRepository, UserRepository
from backend.db.tables import AuthSession, LoginThrottle, User
from backend.ports import Clock
from backend.services.passwords import hash_password, verify_password

LOGIN_FAILED = ("Login failed: check the username and password. "
                "After repeated failures, wait a few minutes before trying again.")
SESSION_TOUCH_SECONDS = 60


@dataclass(frozen=True)
class UserInfo:
    id: uuid.UUID
    username: str
    display_name: str
    role: str
    senior: bool = False

    @classmethod
    def of(cls, u: User) -> UserInfo:
        return cls(u.id, u.username, u.display_name, u.role, u.senior)


@dataclass(frozen=True)
class LoginResult:
    ok: bool
    user: UserInfo | None
    message: str
    reason: str  # internal only (audit): ok | unknown_user | bad_password | locked | disabled


def normalize_username(username: str) -> str:
    return (username or "").strip().lower()[:64]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class AuthService:
    def __init__(self, db: Database, settings: AuthSettings, clock: Clock | None = None) -> None:
        self.db = db
        self.cfg = settings
        self.clock = clock or SystemClock()
        self._dummy_hash = hash_password(secrets.token_urlsafe(16), settings.bcrypt_rounds)

    # -- login -------------------------------------------------------------------------------
    def authenticate(self, username: str, password: str, *, client: str = "unknown") -> LoginResult:
        name = normalize_username(username)
        now = self.clock.now()
        key = f"{name}|{client}"[:200]
        with self.db.transaction() as s:
            user = UserRepository(s).by_username(name) if name else None
            throttles = ThrottleRepository(s)
            thr = throttles.get(key, for_update=True)
            locked = bool(thr and thr.locked_until and thr.locked_until > now)
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
            if reason == "ok":
                if thr is not None:
                    thr.score, thr.locked_until, thr.updated_at = 0.0, None, now
            elif reason != "locked":
                thr = thr or throttles.add(LoginThrottle(key=key, score=0.0, updated_at=now))
                thr.score = self._decayed(thr.score, (now - thr.updated_at).total_seconds()) + 1.0
                thr.updated_at = now
                if thr.score >= self.cfg.lockout_threshold:
                    excess = thr.score - self.cfg.lockout_threshold
                    secs = min(self.cfg.lockout_base_seconds * 2 ** min(excess, 30), self.cfg.lockout_max_seconds)
                    thr.locked_until = now + timedelta(seconds=secs)
            AuditRepository(s).append(
                actor=name or "(blank)", role=user.role if user else "", entity_type="user",
                entity_id=str(user.id) if user else name or "(blank)",
                action="login_succeeded" if reason == "ok" else "login_failed",
                payload={"client": client, "reason": reason}, at=now)
            if reason == "ok" and user is not None:
                return LoginResult(True, UserInfo.of(user), "", reason)
            return LoginResult(False, None, LOGIN_FAILED, reason)

    def _decayed(self, score: float, elapsed: float) -> float:
        return score * math.pow(0.5, max(elapsed, 0.0) / self.cfg.failure_half_life_seconds)

    # -- sessions ----------------------------------------------------------------------------
    def start_session(self, user: UserInfo, *, client: str = "console") -> str:
        """Create a server-side session and return its token (only its hash is stored)."""
        token = secrets.token_urlsafe(32)
        now = self.clock.now()
        with self.db.transaction() as s:
            row = SessionRepository(s).add(AuthSession(
                token_hash=token_hash(token), user_id=user.id, created_at=now, last_seen_at=now,
                expires_at=now + timedelta(hours=self.cfg.session_ttl_hours), client=client[:128]))
            AuditRepository(s).append(actor=user.username, role=user.role, action="session_started",
                                      entity_type="session", entity_id=str(row.id), payload={"client": client}, at=now)
        return token

    def validate(self, token: str | None) -> UserInfo | None:
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
            info = UserInfo.of(user)
            stale = (now - row.last_seen_at).total_seconds() > SESSION_TOUCH_SECONDS
            sid = row.id
        if stale:
            with self.db.transaction() as s:
                live = s.get(AuthSession, sid)
                if live is not None:
                    live.last_seen_at = now
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
