"""Queries behind personal-data protection: the reveal, blind-index lookups, status and rotation."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import and_, case, func, not_, or_, select, update
from sqlalchemy.orm import Session

from backend.compliance.pii_keys import TOKEN_PREFIX
from backend.platform.db.tables_access import User
from backend.platform.db.tables_book import Application

_ANY_TOKEN = f"{TOKEN_PREFIX}:%"


def _under(column: Any, kid: str) -> Any:
    return column.like(f"{TOKEN_PREFIX}:{kid}:%")  # kids hold no '_' or '%' (KID_PATTERN)


class PiiRepository:
    def __init__(self, s: Session) -> None:
        self.s = s

    # -- reads for one application ----------------------------------------------------------------
    def application(self, application_id: uuid.UUID) -> Application | None:
        return self.s.get(Application, application_id)

    def user(self, user_id: uuid.UUID) -> User | None:
        return self.s.get(User, user_id)

    def find(self, refs: Sequence[str], plaintext: str, *, officer_id: uuid.UUID | None = None,
             limit: int = 100) -> list[uuid.UUID]:
        """Applications of one applicant: by blind index, or by the plaintext id on pre-0007 rows."""
        q = (select(Application.id)
             .where(or_(Application.applicant_ref.in_(list(refs)), Application.applicant_id == plaintext))
             .order_by(Application.applied_at.desc()).limit(limit))
        if officer_id is not None:
            q = q.where(Application.officer_id == officer_id)
        return list(self.s.execute(q).scalars())

    # -- status -----------------------------------------------------------------------------------
    def counts(self, kids: Iterable[str]) -> dict[str, int]:
        """Rows in total, with a plaintext applicant id, with direct PII, and per key id (``id:<kid>`` for
        applicant ids, ``pii:<kid>`` for direct PII) for the given kids; ``other`` tokens under other keys."""
        kids = list(kids)
        cols: dict[str, Any] = {
            "total": func.count(),
            "plaintext": func.sum(_flag(not_(Application.applicant_id.like(_ANY_TOKEN)))),
            "with_pii": func.sum(_flag(Application.pii.is_not(None))),
            "no_ref": func.sum(_flag(and_(Application.applicant_id.like(_ANY_TOKEN),
                                          Application.applicant_ref.is_(None)))),
        }
        for kid in kids:
            cols[f"id:{kid}"] = func.sum(_flag(_under(Application.applicant_id, kid)))
            cols[f"pii:{kid}"] = func.sum(_flag(_under(Application.pii, kid)))
        row = self.s.execute(select(*[c.label(f"c{i}") for i, c in enumerate(cols.values())])).one()
        return {name: int(v or 0) for name, v in zip(cols, row, strict=True)}

    def foreign_kids(self, kids: Iterable[str], limit: int = 10_000) -> dict[str, int]:
        """Key ids found in the table but not among ``kids`` (rows no key of the ring can read)."""
        known = list(kids)
        out: dict[str, int] = {}
        for col in (Application.applicant_id, Application.pii):
            q = select(func.substr(col, 1, 48)).where(col.like(_ANY_TOKEN))
            for kid in known:
                q = q.where(not_(_under(col, kid)))
            for head in self.s.execute(q.limit(limit)).scalars():
                kid = str(head).split(":", 2)[1] if head and head.count(":") >= 2 else "?"
                out[kid] = out.get(kid, 0) + 1
        return out

    # -- rotation ---------------------------------------------------------------------------------
    def pending(self, active: str, *, limit: int, plaintext_only: bool = False,
                after: uuid.UUID | None = None) -> list[Any]:
        """Rows whose applicant id or PII is not under ``active`` (or plaintext only), in id order."""
        q = select(Application.id, Application.applicant_id, Application.pii).where(_pending(active, plaintext_only))
        if after is not None:
            q = q.where(Application.id > after)
        return list(self.s.execute(q.order_by(Application.id).limit(limit)).all())

    def count_pending(self, active: str, *, plaintext_only: bool = False) -> int:
        q = select(func.count()).select_from(Application).where(_pending(active, plaintext_only))
        return int(self.s.execute(q).scalar_one())

    def update_protected(self, rows: Sequence[dict[str, Any]]) -> None:
        """Bulk UPDATE by primary key of ``applicant_id``, ``applicant_ref``, ``applicant_mask``, ``pii``."""
        if rows:
            self.s.execute(update(Application), list(rows))


def _flag(cond: Any) -> Any:
    return case((cond, 1), else_=0)


def _pending(active: str, plaintext_only: bool) -> Any:
    if plaintext_only:
        return not_(Application.applicant_id.like(_ANY_TOKEN))
    return or_(not_(_under(Application.applicant_id, active)),
               and_(Application.pii.is_not(None), not_(_under(Application.pii, active))),
               Application.applicant_ref.is_(None))
