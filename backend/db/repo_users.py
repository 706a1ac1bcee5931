"""Users, server-side sessions and the login throttle. Every SQL statement for them lives here."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from backend.db.tables import AuthSession, LoginThrottle, User


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

    def add(self, user: User) -> User:
        self.s.add(user)
        self.s.flush()
        return user


class SessionRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add(self, row: AuthSession) -> AuthSession:
        self.s.add(row)
        self.s.flush()
        return row

    def by_token_hash(self, token_hash: str) -> AuthSession | None:
        return self.s.execute(select(AuthSession).where(AuthSession.token_hash == token_hash)).scalar_one_or_none()

    def revoke_for_user(self, user_id: uuid.UUID, *, at: datetime, reason: str) -> int:
        res = self.s.execute(update(AuthSession)
                             .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
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

    def add(self, row: LoginThrottle) -> LoginThrottle:
        self.s.add(row)
        self.s.flush()
        return row
