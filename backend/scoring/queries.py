"""The scoring write path's SQL: which submitted application ids are already in the book, and the
multi-row INSERTs of applications and predictions. Every SQL statement of the scoring feature lives here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import String, Table, any_, bindparam, insert, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from backend.platform.db.tables_book import Application, Prediction

LOOKUP_CHUNK = 5000  # ids per IN (...) lookup
_APPLICATIONS, _PREDICTIONS = cast(Table, Application.__table__), cast(Table, Prediction.__table__)


def _text_array(values: list[str]) -> Any:
    """``values`` as one PostgreSQL ``text[]`` parameter."""
    return bindparam("ids", values, type_=ARRAY(String))


class ScoringRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def known_applications(self, external_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The stored applications among ``external_ids``: external id -> its ``id``, ``features``,
        ``arm``, ``phase`` and ``ai_visible`` (a re-submission keeps them)."""
        out: dict[str, dict[str, Any]] = {}
        query = select(Application.id, Application.external_id, Application.features, Application.arm,
                       Application.phase, Application.ai_visible)
        if self.s.get_bind().dialect.name == "postgresql":  # one array parameter, not one parameter per id
            # (expanding 16,384 ids into IN (...) cost 25 us per id in SQLAlchemy's compiler)
            ids = _text_array(list(dict.fromkeys(external_ids)))
            lookups = [query.where(Application.external_id == any_(ids))] if external_ids else []
        else:
            lookups = [query.where(Application.external_id.in_(external_ids[chunk:chunk + LOOKUP_CHUNK]))
                       for chunk in range(0, len(external_ids), LOOKUP_CHUNK)]
        for lookup in lookups:
            for row in self.s.execute(lookup):
                out[row.external_id] = {"id": row.id, "features": row.features, "arm": row.arm,
                                        "phase": row.phase, "ai_visible": row.ai_visible}
        return out

    def insert_applications(self, rows: list[dict[str, Any]]) -> None:
        """Core multi-row INSERT (the ORM's bulk path adds per-row work and nothing else here)."""
        if rows:
            self.s.execute(insert(_APPLICATIONS), rows)

    def insert_predictions(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.s.execute(insert(_PREDICTIONS), rows)
