"""User administration (console admin page and `creditrisk users`). Each change is one
transaction with its audit row; disabling a user or changing a password ends their sessions."""

from __future__ import annotations

import re

from backend.compliance import AuditRepository
from backend.domain import ROLES, Actor
from backend.identity.auth import normalize_username
from backend.identity.config import AuthSettings
from backend.identity.mfa_queries import MfaRepository
from backend.identity.passwords import check_policy, generate_password, hash_password
from backend.identity.queries import SessionRepository, UserRepository
from backend.platform.clock import SystemClock
from backend.platform.db.engine import Database
from backend.platform.ports import Clock

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{2,63}$")
BAD_USERNAME = "Username must be 3-64 characters: lowercase letters, digits, '.', '_' or '-'."
BAD_ROLE = "Unknown role {role!r}; choose one of: " + ", ".join(ROLES) + "."
USER_EXISTS = "User {username!r} already exists."
NO_SUCH_USER = "No user {username!r}."
MFA_SELF_RESET = ("You cannot reset your own second factor: another administrator must do it "
                  "(a stolen password plus your session must not be enough to move your factor).")
MFA_NOTHING = "{username} has no second factor to reset."


class UserError(ValueError):
    """A user-administration request was refused; the message says why."""


class UserService:
    def __init__(self, db: Database, settings: AuthSettings, clock: Clock | None = None) -> None:
        self.db = db
        self.cfg = settings
        self.clock = clock or SystemClock()

    def add(self, username: str, *, role: str, display_name: str = "", password: str | None = None,
            senior: bool = False, actor: Actor | None = None, exist_ok: bool = False,
            rounds: int | None = None) -> tuple[Actor, str | None]:
        """Create a user. Returns the user and the generated password (None if one was given,
        or if the user already existed and ``exist_ok``). ``rounds``: bcrypt cost for an account
        whose random password is never told to anyone (simulated people); default from settings."""
        name = normalize_username(username)
        if not USERNAME_RE.match(name):
            raise UserError(BAD_USERNAME)
        if role not in ROLES:
            raise UserError(BAD_ROLE.format(role=role))
        generated = None
        if password is None:
            password = generated = generate_password()
        try:
            check_policy(password)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        actor = actor or Actor.system()
        with self.db.transaction() as s:
            users = UserRepository(s)
            existing = users.by_username(name)
            if existing is not None:
                if exist_ok:
                    return Actor.of(existing), None
                raise UserError(USER_EXISTS.format(username=name))
            user = users.create(username=name, display_name=display_name or name, role=role, senior=senior,
                                password_hash=hash_password(password, rounds or self.cfg.bcrypt_rounds))
            AuditRepository(s).append(actor=actor.username, role=actor.role, action="user_created",
                                      entity_type="user", entity_id=str(user.id),
                                      payload={"username": name, "role": role, "senior": senior})
            return Actor.of(user), generated

    def set_disabled(self, username: str, disabled: bool, *, actor: Actor | None = None) -> Actor:
        actor = actor or Actor.system()
        name = normalize_username(username)
        with self.db.transaction() as s:
            user = UserRepository(s).by_username(name)
            if user is None:
                raise UserError(NO_SUCH_USER.format(username=name))
            user.disabled = disabled
            ended = 0
            if disabled:
                ended = SessionRepository(s).revoke_for_user(user.id, at=self.clock.now(), reason="user_disabled")
            AuditRepository(s).append(actor=actor.username, role=actor.role,
                                      action="user_disabled" if disabled else "user_enabled",
                                      entity_type="user", entity_id=str(user.id),
                                      payload={"username": name, "sessions_ended": ended})
            return Actor.of(user)

    def set_password(self, username: str, password: str, *, actor: Actor | None = None) -> None:
        actor = actor or Actor.system()
        try:
            check_policy(password)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        name = normalize_username(username)
        with self.db.transaction() as s:
            user = UserRepository(s).by_username(name)
            if user is None:
                raise UserError(NO_SUCH_USER.format(username=name))
            user.password_hash = hash_password(password, self.cfg.bcrypt_rounds)
            ended = SessionRepository(s).revoke_for_user(user.id, at=self.clock.now(), reason="password_changed")
            AuditRepository(s).append(actor=actor.username, role=actor.role, action="password_changed",
                                      entity_type="user", entity_id=str(user.id),
                                      payload={"username": name, "sessions_ended": ended})

    def reset_mfa(self, username: str, *, actor: Actor) -> dict[str, object]:
        """Forget a user's second factor and recovery codes (they enrol again at their next console sign-in)
        and end their sessions and CLI tokens; one transaction with its audit row. Never one's own."""
        name = normalize_username(username)
        if actor.username == name:
            raise UserError(MFA_SELF_RESET)
        with self.db.transaction() as s:
            user = UserRepository(s).by_username(name)
            if user is None:
                raise UserError(NO_SUCH_USER.format(username=name))
            had, codes = MfaRepository(s).remove(user.id)
            if not had and not codes:
                raise UserError(MFA_NOTHING.format(username=name))
            ended = SessionRepository(s).revoke_for_user(user.id, at=self.clock.now(), reason="mfa_reset")
            payload: dict[str, object] = {"username": name, "had_factor": had, "recovery_codes_removed": codes,
                                          "sessions_ended": ended}
            AuditRepository(s).append(actor=actor.username, role=actor.role, action="mfa_reset",
                                      entity_type="user", entity_id=str(user.id), payload=payload)
            return payload

    def list(self) -> list[dict[str, object]]:
        with self.db.read() as s:
            enrolled = MfaRepository(s).enrolled_ids()
            return [{"username": u.username, "name": u.display_name, "role": u.role, "senior": u.senior,
                     "disabled": u.disabled, "second_factor": "TOTP" if u.id in enrolled else "",
                     "created_at": u.created_at} for u in UserRepository(s).list()]

    @staticmethod
    def normalize(username: str) -> str:
        """How usernames compare (see :func:`backend.identity.auth.normalize_username`)."""
        return normalize_username(username)

    def has_admin(self) -> bool:
        """Whether an enabled administrator exists (before the first one, the command line bootstraps)."""
        with self.db.read() as s:
            return UserRepository(s).count_active(["admin"]) > 0

    def get(self, username: str) -> Actor | None:
        with self.db.read() as s:
            u = UserRepository(s).by_username(normalize_username(username))
            return Actor.of(u) if u else None
