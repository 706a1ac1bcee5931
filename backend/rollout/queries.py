"""Rollout configuration versions (``rollout_configs``). Every SQL statement for them lives here."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.platform.db.tables_governance import RolloutConfig


class RolloutRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def newest_first(self) -> list[RolloutConfig]:
        """Every version, the newest first."""
        return list(self.s.execute(select(RolloutConfig).order_by(RolloutConfig.version.desc())).scalars())

    def latest(self) -> RolloutConfig | None:
        return self.s.execute(select(RolloutConfig).order_by(RolloutConfig.version.desc()).limit(1)).scalar()

    def by_version(self, version: int) -> RolloutConfig | None:
        return self.s.execute(select(RolloutConfig).where(RolloutConfig.version == int(version))).scalar()

    def create(self, *, version: int, phase: str, ai_share: float, eligible_roles: list[str], senior_only: bool,
               eligible_officers: list[str], loan_amount_cap: float, confidence_threshold: float,
               features: dict[str, bool], salt: str, starts_at: datetime, rationale: str, proposed_by: str,
               proposed_at: datetime) -> RolloutConfig:
        """A new version in status ``proposed`` (flushed)."""
        row = RolloutConfig(
            version=version, phase=phase, ai_share=ai_share, eligible_roles=eligible_roles, senior_only=senior_only,
            eligible_officers=eligible_officers, loan_amount_cap=loan_amount_cap,
            confidence_threshold=confidence_threshold, features=features, salt=salt, starts_at=starts_at,
            status="proposed", rationale=rationale, proposed_by=proposed_by, proposed_at=proposed_at)
        self.s.add(row)
        self.s.flush()
        return row
