"""Queries over the decision book (applications, predictions, decisions). Aggregations run in SQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from backend.platform.db.tables_book import Application, Decision, Prediction
from backend.platform.db.timesql import month_key


class BookRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def totals(self) -> dict[str, Any]:
        apps = self.s.execute(select(func.count(), func.min(Application.applied_at), func.max(Application.applied_at),
                                     func.sum(case((Application.source == "simulated", 1), else_=0)))
                              .select_from(Application)).one()
        preds = self.s.execute(select(func.count(), func.avg(Prediction.pd)).select_from(Prediction)).one()
        recs = dict(self.s.execute(select(Prediction.recommendation, func.count())
                                   .group_by(Prediction.recommendation)).all())
        decs = dict(self.s.execute(select(Decision.outcome, func.count()).where(Decision.status == "final")
                                   .group_by(Decision.outcome)).all())
        overrides = self.s.execute(select(func.count()).select_from(Decision)
                                   .where(Decision.is_override.is_(True), Decision.status == "final")).scalar_one()
        pending = self.s.execute(select(func.count()).select_from(Decision)
                                 .where(Decision.status == "pending_approval")).scalar_one()
        return {
            "applications": int(apps[0] or 0), "first_applied": apps[1], "last_applied": apps[2],
            "simulated": int(apps[3] or 0), "predictions": int(preds[0] or 0),
            "mean_pd": float(preds[1]) if preds[1] is not None else None,
            "recommendations": {k: int(v) for k, v in recs.items()},
            "decisions": {k: int(v) for k, v in decs.items()},
            "overrides": int(overrides), "pending_approval": int(pending),
        }

    def simulated_count(self) -> int:
        return int(self.s.execute(select(func.count()).select_from(Application)
                                  .where(Application.source == "simulated")).scalar_one())

    def monthly(self, since: datetime | None = None) -> list[dict[str, Any]]:
        """Applications and model recommendations per calendar month of application."""
        month = month_key(Application.applied_at, self.s.get_bind().dialect.name)
        q = (select(month.label("month"), Prediction.recommendation, func.count())
             .join(Prediction, Prediction.application_id == Application.id)
             .group_by("month", Prediction.recommendation).order_by("month"))
        if since is not None:
            q = q.where(Application.applied_at >= since)
        return [{"month": m, "recommendation": r, "count": int(c)} for m, r, c in self.s.execute(q).all()]
