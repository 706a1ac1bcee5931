"""Users, server-side sessions and the login throttle. Every SQL statement for them lives here."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from backend.platform.db.tables_access import AuthSession, LoginThrottle, User


class UserRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def get(self, user_id: uuid.UUID) -> User | None:
        return self.s.get(User, user_id)

    def by_username(self, username: str) -> User | None:
        return self.s.execute(select(User).where(User.username == username)).scalar_one_or_none()

    def list(self, *, include_disabled: bool = True) -> list[User]:
        q = select(User).order_by(User.role, User.username)
        if not include_disabled:
            q = q.where(User.disabled.is_(False))
        return list(self.s.execute(q).scalars())

    def count_active(self, roles: Collection[str]) -> int:
        """Enabled users holding one of ``roles``."""
        return int(self.s.execute(select(func.count()).select_from(User)
                                  .where(User.role.in_(list(roles)), User.disabled.is_(False))).scalar_one())

    def create(self, *, username: str, display_name: str, role: str, senior: bool, password_hash: str,
               at: datetime | None = None) -> User:
        """A new user (flushed, so its id is set). ``at``: its created/updated time (default: now)."""
        stamps = {} if at is None else {"created_at": at, "updated_at": at}
        user = User(username=username, display_name=display_name, role=role, senior=senior,
                    password_hash=password_hash, **stamps)
        self.s.add(user)
        self.s.flush()
        return user


class SessionRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def start(self, *, token_hash: str, user_id: uuid.UUID | None, at: datetime, expires_at: datetime,
              client: str) -> AuthSession:
        """A new session (flushed, so its id is set), seen last at its start."""
        row = AuthSession(token_hash=token_hash, user_id=user_id, created_at=at, last_seen_at=at,
                          expires_at=expires_at, client=client)
        self.s.add(row)
        self.s.flush()
        return row

    def touch(self, session_id: uuid.UUID, at: datetime) -> None:
        """Record that the session was used at ``at`` (nothing if it is gone)."""
        row = self.s.get(AuthSession, session_id)
        if row is not None:
            row.last_seen_at = at

    def by_token_hash(self, token_hash: str) -> AuthSession | None:
        return self.s.execute(select(AuthSession).where(AuthSession.token_hash == token_hash)).scalar_one_or_none()

    def revoke_for_user(self, user_id: uuid.UUID, *, at: datetime, reason: str) -> int:
        res = self.s.execute(update(AuthSession)
                             .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
                             .values(revoked_at=at, revoked_reason=reason))
        return int(res.rowcount or 0)  # type: ignore[attr-defined]

    def revoke_client_kind(self, user_id: uuid.UUID, prefix: str, *, at: datetime, reason: str) -> int:
        """Revoke the user's live sessions whose ``client`` starts with ``prefix`` (their CLI tokens)."""
        res = self.s.execute(update(AuthSession)
                             .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None),
                                    AuthSession.client.startswith(prefix, autoescape=True))
                             .values(revoked_at=at, revoked_reason=reason))
        return int(res.rowcount or 0)  # type: ignore[attr-defined]

    def active_count(self, *, now: datetime) -> int:
        rows = self.s.execute(select(AuthSession.id).where(AuthSession.revoked_at.is_(None),
                                                           AuthSession.expires_at > now)).all()
        return len(rows)


class ThrottleRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def get(self, key: str, *, for_update: bool = False) -> LoginThrottle | None:
        q = select(LoginThrottle).where(LoginThrottle.key == key)
        if for_update and self.s.get_bind().dialect.name == "postgresql":
            q = q.with_for_update()
        return self.s.execute(q).scalar_one_or_none()

    def create(self, key: str, at: datetime) -> LoginThrottle:
        """A new, clean score for ``key`` (flushed)."""
        row = LoginThrottle(key=key, score=0.0, updated_at=at)
        self.s.add(row)
        self.s.flush()
        return row
