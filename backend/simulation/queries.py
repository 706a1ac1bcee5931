"""Every statement the simulator and the demo book loader run themselves. Everything else they write
goes through the services real traffic uses (scoring, decisions, feedback, outcomes, rollout, models)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import pandas as pd
from sqlalchemy import Table, insert, select

from backend.compliance import AuditEntry, append_many
from backend.platform.db.engine import Database
from backend.platform.db.tables_book import (
    Application,
    Decision,
    ExplanationRow,
    LLMUsageRow,
    Outcome,
    SurveyResponse,
)

ID_CHUNK = 5000  # generator ids per IN (...) list
USAGE_CHUNK = 2000  # LLM usage rows per INSERT


def existing_external_ids(db: Database, ids: Sequence[str]) -> set[str]:
    """Those of ``ids`` (generator ids, stored as ``external_id``) already in the book."""
    found: set[str] = set()
    with db.read() as s:
        for i in range(0, len(ids), ID_CHUNK):
            found.update(x for x in s.execute(select(Application.external_id)
                                              .where(Application.external_id.in_(ids[i:i + ID_CHUNK]))).scalars()
                         if x is not None)
    return found


def insert_explanations(db: Database, rows: list[dict[str, Any]], usage: list[dict[str, Any]],
                        audits: list[AuditEntry]) -> None:
    """Explanations, their LLM usage and their audit rows, in one transaction."""
    with db.transaction() as s:
        if rows:
            s.execute(insert(cast(Table, ExplanationRow.__table__)), rows)  # Core: no per-row ORM work
        for k in range(0, len(usage), USAGE_CHUNK):
            s.execute(insert(cast(Table, LLMUsageRow.__table__)), usage[k:k + USAGE_CHUNK])
        append_many(s, audits)


def survey_answers(db: Database) -> set[tuple[Any, str]]:
    """(user id, period) of every survey answer recorded."""
    with db.read() as s:
        return {(uid, period) for uid, period in s.execute(select(SurveyResponse.user_id, SurveyResponse.period))}


def ai_users_by_month(db: Database, source: str) -> set[tuple[str, str]]:
    """(officer id as text, "YYYY-MM") of the officers who saw AI cards on ``source`` applications that month."""
    with db.read() as s:
        rows = s.execute(select(Application.officer_id, Application.applied_at)
                         .where(Application.source == source, Application.ai_visible.is_(True))).all()
    return {(str(uid), f"{at:%Y-%m}") for uid, at in rows}


def final_decisions(db: Database, source: str) -> pd.DataFrame:
    """The final decision on each ``source`` application: application_id (the generator id), outcome, decided_at."""
    with db.read() as s:
        rows = s.execute(select(Application.external_id, Decision.outcome, Decision.decided_at)
                         .join(Decision, Decision.application_id == Application.id)
                         .where(Application.source == source, Decision.status == "final")).all()
    return pd.DataFrame(rows, columns=["application_id", "outcome", "decided_at"])


def has_outcomes(db: Database, source: str) -> bool:
    """Whether any ``source`` application has an imported outcome (a finished history imported them)."""
    with db.read() as s:
        return s.execute(select(Outcome.id).join(Application, Application.id == Outcome.application_id)
                         .where(Application.source == source).limit(1)).first() is not None
