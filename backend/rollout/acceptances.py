"""Accepting an adverse difference between the arms (the phase verdict's one way past it).

The phase verdict (:mod:`backend.analytics.phase_verdict`) blocks when the AI arm is significantly worse
than the control arm in approval, default or fairness. Only a named, active person allowed to approve
rollout changes (a risk manager) may accept such a finding, with a written reason of at least 20
characters; the acceptance row and its audit row are written in one transaction. The newest acceptance
of a phase and metric is the one that counts, and it names who, when and why wherever the verdict is shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from backend.compliance import AuditRepository
from backend.domain import Actor, Perm, allowed
from backend.identity import UserRepository
from backend.platform.db.engine import Database
from backend.platform.ports import Clock
from backend.rollout import acceptance_queries as q
from backend.rollout.service import PHASES, RolloutError, _note

METRICS = ("approval", "default", "fairness")
MIN_REASON = 20


@dataclass(frozen=True)
class Acceptance:
    phase: str
    metric: str
    finding: str
    reason: str
    accepted_by: str
    role: str
    accepted_at: datetime


class AcceptanceService:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db, self.clock = db, clock

    def accept(self, actor: Actor, *, phase: str, metric: str, finding: str, reason: str) -> Acceptance:
        """Record that ``actor`` accepts ``finding`` (the verdict's sentence) for ``phase`` and ``metric``."""
        if phase not in PHASES:
            raise RolloutError(f"unknown phase {phase!r}; one of {', '.join(PHASES)}.")
        if metric not in METRICS:
            raise RolloutError(f"unknown difference {metric!r}; one of {', '.join(METRICS)}.")
        reason = _note(reason, "The reason")
        if len(reason) < MIN_REASON:
            raise RolloutError(f"The reason: write at least {MIN_REASON} characters saying why this difference "
                               "is acceptable, so the decision can be followed later.")
        finding = _note(finding, "The finding")
        now = self.clock.now()
        with self.db.transaction() as s:
            user = UserRepository(s).by_username(actor.username)
            if user is None or user.disabled:
                raise RolloutError(f"{actor.username!r} is not an active user; a named person must accept it.")
            if not allowed(user.role, Perm.APPROVE_ROLLOUT):
                raise RolloutError(f"a {user.role.replace('_', ' ')} may not accept an adverse difference "
                                   "(a risk manager may).")
            q.add(s, phase=phase, metric=metric, finding=finding, reason=reason, accepted_by=user.username,
                  role=user.role, at=now)
            AuditRepository(s).append(actor=user.username, role=user.role, action="verdict_difference_accepted",
                                      entity_type="rollout_phase", entity_id=phase, at=now,
                                      payload={"metric": metric, "finding": finding, "reason": reason})
        return Acceptance(phase, metric, finding, reason, user.username, user.role, now)

    def current(self) -> dict[tuple[str, str], Acceptance]:
        """The acceptance in force for each (phase, metric): the newest."""
        out: dict[tuple[str, str], Acceptance] = {}
        with self.db.read() as s:
            for r in q.newest_first(s):
                out.setdefault((r.phase, r.metric), Acceptance(r.phase, r.metric, r.finding, r.reason,
                                                               r.accepted_by, r.role, r.accepted_at))
        return out
