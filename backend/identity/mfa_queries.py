"""The TOTP second factor and recovery codes. Every SQL statement for them lives here."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from backend.platform.db.tables_access import MfaRecoveryCode, UserMfa


class MfaRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def get(self, user_id: uuid.UUID, *, for_update: bool = False) -> UserMfa | None:
        q = select(UserMfa).where(UserMfa.user_id == user_id)
        if for_update and self.s.get_bind().dialect.name == "postgresql":
            q = q.with_for_update()  # two logins with the same code: the second waits and sees last_step
        return self.s.execute(q).scalar_one_or_none()

    def enrolled_ids(self) -> set[uuid.UUID]:
        return set(self.s.execute(select(UserMfa.user_id).where(UserMfa.enrolled_at.is_not(None))).scalars())

    def put_pending(self, user_id: uuid.UUID, secret: str, at: datetime) -> UserMfa:
        """A new (unconfirmed) secret for ``user_id``, replacing an unconfirmed one."""
        row = self.get(user_id, for_update=True)
        if row is None:
            row = UserMfa(user_id=user_id, secret=secret, enrolled_at=None, last_step=0, created_at=at)
            self.s.add(row)
        else:
            row.secret, row.enrolled_at, row.last_step, row.created_at = secret, None, 0, at
        self.s.flush()
        return row

    def remove(self, user_id: uuid.UUID) -> tuple[bool, int]:
        """Forget the user's factor and recovery codes: (had an enrolled factor, recovery codes removed)."""
        row = self.get(user_id, for_update=True)
        had = row is not None and row.enrolled_at is not None
        n = self.s.execute(delete(MfaRecoveryCode).where(MfaRecoveryCode.user_id == user_id)).rowcount  # type: ignore[attr-defined]
        if row is not None:
            self.s.delete(row)
        self.s.flush()
        return had, int(n or 0)

    def add_recovery(self, user_id: uuid.UUID, hashes: list[str], at: datetime) -> None:
        self.s.execute(delete(MfaRecoveryCode).where(MfaRecoveryCode.user_id == user_id))
        self.s.add_all(MfaRecoveryCode(user_id=user_id, code_hash=h, created_at=at) for h in hashes)
        self.s.flush()

    def recovery(self, user_id: uuid.UUID, code_hash: str) -> MfaRecoveryCode | None:
        q = select(MfaRecoveryCode).where(MfaRecoveryCode.user_id == user_id, MfaRecoveryCode.code_hash == code_hash)
        if self.s.get_bind().dialect.name == "postgresql":
            q = q.with_for_update()
        return self.s.execute(q).scalar_one_or_none()

    def recovery_left(self, user_id: uuid.UUID) -> int:
        return int(self.s.execute(select(func.count()).select_from(MfaRecoveryCode)
                                  .where(MfaRecoveryCode.user_id == user_id,
                                         MfaRecoveryCode.used_at.is_(None))).scalar_one())
