"""Decisions (accept / override / four-eyes approval). Every SQL statement for them lives here."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, func, insert, or_, select, text
from sqlalchemy.orm import Session

from backend.platform.db.base import uuid_text
from backend.platform.db.tables_access import User
from backend.platform.db.tables_book import Application, Decision, Prediction

OPEN_STATUSES = ("final", "pending_approval")  # a rejected override leaves the application undecided
LOOKUP_CHUNK = 5000  # ids per IN (...) lookup
INSERT_CHUNK = 2000  # rows per multi-row INSERT
_LOCK_NAMESPACE = 7_734_002  # two-int advisory-lock space: "one decision at a time per application"


class DecisionRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    @property
    def _pg(self) -> bool:
        return self.s.get_bind().dialect.name == "postgresql"

    def lock_application(self, application_id: uuid.UUID) -> None:
        """Serialise decisions on one application until the transaction ends.

        PostgreSQL: a transaction-scoped advisory lock (two int4 keys, so it never meets the audit
        chain's single-bigint lock). SQLite: writers already hold the database lock (BEGIN IMMEDIATE).
        """
        if self._pg:
            key = int.from_bytes(application_id.bytes[:4], "big", signed=True)
            self.s.execute(text("SELECT pg_advisory_xact_lock(:ns, :k)"), {"ns": _LOCK_NAMESPACE, "k": key})

    def user(self, user_id: uuid.UUID) -> User | None:
        return self.s.get(User, user_id)

    def usernames(self, ids: Sequence[uuid.UUID | None]) -> dict[uuid.UUID, str]:
        wanted = {i for i in ids if i is not None}
        if not wanted:
            return {}
        return dict(self.s.execute(select(User.id, User.username).where(User.id.in_(wanted))).tuples().all())

    def prediction(self, prediction_id: uuid.UUID) -> tuple[Prediction, Application] | None:
        row = self.s.execute(select(Prediction, Application).join(Application, Prediction.application_id == Application.id)
                             .where(Prediction.id == prediction_id)).tuples().first()
        return (row[0], row[1]) if row else None

    def has_newer_prediction(self, prediction: Prediction) -> bool:
        """True when the application was scored again after ``prediction``."""
        return self.s.execute(select(Prediction.id).where(Prediction.application_id == prediction.application_id,
                                                          Prediction.created_at > prediction.created_at)
                              .limit(1)).first() is not None

    def by_key(self, key: str) -> Decision | None:
        return self.s.execute(select(Decision).where(Decision.idempotency_key == key)).scalar_one_or_none()

    def get(self, decision_id: uuid.UUID, *, for_update: bool = False) -> Decision | None:
        q = select(Decision).where(Decision.id == decision_id)
        if for_update and self._pg:
            q = q.with_for_update()
        return self.s.execute(q).scalar_one_or_none()

    def open_for_application(self, application_id: uuid.UUID) -> Decision | None:
        """The application's standing decision (final or awaiting approval), if any."""
        return self.s.execute(select(Decision).where(Decision.application_id == application_id,
                                                     Decision.status.in_(OPEN_STATUSES))
                              .order_by(Decision.decided_at.desc()).limit(1)).scalar()

    def application(self, application_id: uuid.UUID) -> Application | None:
        return self.s.get(Application, application_id)

    def create(self, *, application_id: uuid.UUID, prediction_id: uuid.UUID, outcome: str, status: str,
               decided_by: uuid.UUID, decided_at: datetime, is_override: bool, override_reason_code: str | None,
               override_reason_text: str | None, decision_seconds: float | None,
               idempotency_key: str, notice_reasons: list[str] | None = None) -> Decision:
        """A new decision (flushed, so its id is set)."""
        d = Decision(application_id=application_id, prediction_id=prediction_id, outcome=outcome, status=status,
                     decided_by=decided_by, decided_at=decided_at, is_override=is_override,
                     override_reason_code=override_reason_code, override_reason_text=override_reason_text,
                     decision_seconds=decision_seconds, idempotency_key=idempotency_key,
                     notice_reasons=notice_reasons)
        self.s.add(d)
        self.s.flush()
        return d

    def decided_applications(self, application_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """The applications among ``application_ids`` with a decision that was not rejected."""
        out: set[uuid.UUID] = set()
        for i in range(0, len(application_ids), LOOKUP_CHUNK):
            out.update(self.s.execute(select(Decision.application_id).where(
                Decision.application_id.in_(application_ids[i:i + LOOKUP_CHUNK]),
                Decision.status != "rejected")).scalars())
        return out

    def insert_many(self, rows: list[dict[str, Any]]) -> None:
        """Decisions as multi-row INSERTs (ids and every column given), through Core: the ORM's bulk path sorts
        each row's keys into properties first, for rows that are the table's columns already."""
        table = cast(Table, Decision.__table__)
        for i in range(0, len(rows), INSERT_CHUNK):
            self.s.execute(insert(table), rows[i:i + INSERT_CHUNK])

    def pending(self, limit: int) -> list[tuple[Decision, Prediction | None, Application]]:
        """Overrides awaiting a second person, oldest first."""
        q = (select(Decision, Prediction, Application)
             .join(Application, Decision.application_id == Application.id)
             .outerjoin(Prediction, Decision.prediction_id == Prediction.id)
             .where(Decision.status == "pending_approval")
             .order_by(Decision.decided_at, Decision.id).limit(limit))
        return [(d, p, a) for d, p, a in self.s.execute(q).tuples()]

    def applications(self, *, officer_id: uuid.UUID | None, limit: int) -> list[Application]:
        """Newest applications first; ``officer_id=None`` means every officer's."""
        q = select(Application).order_by(Application.created_at.desc(), Application.id).limit(limit)
        if officer_id is not None:
            q = q.where(Application.officer_id == officer_id)
        return list(self.s.execute(q).scalars())

    def applications_page(self, *, officer_id: uuid.UUID | None, text: str, ids: Sequence[uuid.UUID] | None,
                          offset: int, limit: int) -> tuple[list[Application], int]:
        """One page of the book, newest first, and how many applications match in all: ``text`` matches the
        application's own id (a prefix of its UUID or of its external id), ``ids`` adds applications found
        another way (an applicant's, by blind index)."""
        conds: list[Any] = []
        if officer_id is not None:
            conds.append(Application.officer_id == officer_id)
        if text or ids:
            match: list[Any] = []
            if text:
                esc = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                as_text = uuid_text(Application.id, self.s.get_bind().dialect.name)  # 32 hex digits
                match += [Application.external_id.like(esc + "%", escape="\\"),
                          as_text.like(esc.lower().replace("-", "") + "%", escape="\\")]
                try:
                    match.append(Application.id == uuid.UUID(text))
                except ValueError:
                    pass
            if ids:
                match.append(Application.id.in_(list(ids)))
            conds.append(or_(*match))
        total = int(self.s.execute(select(func.count()).select_from(Application).where(*conds)).scalar() or 0)
        q = (select(Application).where(*conds).order_by(Application.created_at.desc(), Application.id)
             .offset(offset).limit(limit))
        return list(self.s.execute(q).scalars()), total

    def latest_predictions(self, application_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Prediction]:
        out: dict[uuid.UUID, Prediction] = {}
        if application_ids:
            for p in self.s.execute(select(Prediction).where(Prediction.application_id.in_(application_ids))
                                    .order_by(Prediction.created_at, Prediction.id)).scalars():
                out[p.application_id] = p  # ascending order: the last one written wins
        return out

    def latest_decisions(self, application_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Decision]:
        """Each application's standing decision, else its latest rejected one."""
        out: dict[uuid.UUID, Decision] = {}
        if application_ids:
            for d in self.s.execute(select(Decision).where(Decision.application_id.in_(application_ids))
                                    .order_by(Decision.decided_at, Decision.id)).scalars():
                cur = out.get(d.application_id)  # the standing (open) decision wins over rejected ones
                if cur is None or cur.status not in OPEN_STATUSES or d.status in OPEN_STATUSES:
                    out[d.application_id] = d
        return out
