"""What a simulated history is asked for (:class:`SimConfig`) and what a run reports (:class:`SimReport`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pandas as pd

SOURCE = "simulated"  # the ``source`` of every application the simulator writes (the console labels them)
ID_PREFIX = "ops"  # generator ids (``external_id``): ops<seed>-<n>


@dataclass(frozen=True)
class SimConfig:
    volume: int = 20_000  # applications per month
    months: int = 6
    start: datetime = datetime(2025, 8, 1, tzinfo=UTC)
    seed: int = 11
    incident: bool = True
    override_rate: float = 0.07  # AI-arm officers who disagree with an approve/deny recommendation
    cache_share: float = 0.23  # explanation views served from the stored explanation (no LLM call)
    timeout_rate: float = 0.02  # primary LLM calls that time out (→ the fallback provider)
    factcheck_failure_rate: float = 0.008  # LLM answers the fact-check rejects (→ the template)
    funded_share: float = 0.88  # approved applicants who take the loan
    as_of: datetime | None = None  # outcomes observed as of (default: nine months after the last application)
    retrain: bool = True  # the incident's retrained model, promoted and rolled back
    retrain_rows: int = 8_000
    monitoring: bool = False  # run the monitors every Monday 06:00 of the history, and once after the outcomes
    monitor_process: bool = False  # the weekly runs in a second process, overlapping the day loop (see .monitors)
    incident_month: int = 1  # the month of the history (0-based) whose second to fifth weeks the incident corrupts
    #: when the history is prepared (the real clock): nothing is dated later. A decision, review or view that
    #: would come after it has not happened yet (the application is still waiting). None: no limit.
    prepared_at: datetime | None = None

    @classmethod
    def rolling(cls, today: datetime, *, months: int = 6, **kw: object) -> SimConfig:
        """A history that ends yesterday: ``months`` months up to ``today`` 00:00 UTC, the incident about
        three months back, outcomes observed as of yesterday (recent vintages still maturing, as they would
        be), nothing dated after ``today`` (the project's clock when the demo is prepared)."""
        now = today.astimezone(UTC)
        end = datetime(now.year, now.month, now.day, tzinfo=UTC)
        start = (pd.Timestamp(end) - pd.DateOffset(months=months)).to_pydatetime()
        kw.setdefault("incident_month", max(0, months - 3))
        kw.setdefault("as_of", end - timedelta(days=1))
        return cls(start=start, months=months, prepared_at=now, **kw)  # type: ignore[arg-type]

    def cap(self, at: datetime) -> datetime:
        """``at``, or the preparation time if ``at`` is later (a run never writes the future)."""
        return min(at, self.prepared_at) if self.prepared_at is not None else at

    def happened(self, at: datetime) -> bool:
        """Whether ``at`` is before the preparation time (always, for a history with no limit)."""
        return self.prepared_at is None or at < self.prepared_at

    @property
    def end(self) -> datetime:
        return (pd.Timestamp(self.start) + pd.DateOffset(months=self.months)).to_pydatetime()

    def month(self, k: int) -> datetime:
        return (pd.Timestamp(self.start) + pd.DateOffset(months=k)).to_pydatetime()

    @property
    def outcomes_as_of(self) -> datetime:
        """When the outcome feed was last read: by default nine months after the history ends, so the
        first vintages are 15 months old and the last 9 (the newest defaults are still to come)."""
        return self.as_of or (pd.Timestamp(self.end) + pd.DateOffset(months=9)).to_pydatetime()

    @property
    def incident_window(self) -> tuple[datetime, datetime]:
        m = self.month(self.incident_month)
        return m + timedelta(days=7), m + timedelta(days=28)


@dataclass
class SimReport:
    applications: int = 0
    decisions: int = 0
    explanations: int = 0
    usage_rows: int = 0
    feedback: int = 0
    surveys: int = 0
    outcomes: int = 0
    skipped_days: int = 0
    monitor_runs: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
