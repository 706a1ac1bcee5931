"""Deployments halted: while an alert whose action is ``halt_deployments`` is open or acknowledged
(not resolved), no model promotion, canary step or rollout advance may happen.

The alert rules (:mod:`backend.alerts.service`) raise such alerts (disparate impact below the
screening threshold); the model admin and the rollout service ask :func:`active_halts` first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from backend.models.queries import unresolved_alerts
from backend.platform.db.engine import Database

HALT_ACTION = "halt_deployments"
MSG_HALTED = ("Deployments are halted by {n} unresolved alert(s): {rules}. Resolve them on the Alerts page "
              "(or `creditrisk monitor resolve`) before promoting.")


class DeploymentsHalted(RuntimeError):
    """A promotion or canary step refused because deployments are halted."""


@dataclass(frozen=True)
class Halt:
    alert_id: str
    rule: str
    message: str
    opened_at: datetime
    status: str


def active_halts(db: Database) -> list[Halt]:
    with db.read() as s:
        return [Halt(str(r.id), r.rule, r.message, r.opened_at, r.status) for r in unresolved_alerts(s, HALT_ACTION)]


def ensure_not_halted(db: Database) -> None:
    """Raise :class:`DeploymentsHalted` while any halting alert is unresolved."""
    halts = active_halts(db)
    if halts:
        raise DeploymentsHalted(MSG_HALTED.format(n=len(halts), rules=", ".join(sorted({h.rule for h in halts}))))
