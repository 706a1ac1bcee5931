"""Model lifecycle actions with their audit rows: register (train), promote, rollback.

The registry files are the source of truth for artifacts and aliases; every change also writes an
audit row, and promotion/rollback purge cached scores of the versions that stopped serving.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from backend.container import Services
from backend.db.repo_audit import AuditRepository
from backend.services.users import Actor


class ModelAdmin:
    def __init__(self, services: Services) -> None:
        self.svc = services

    def registry(self) -> Any:
        return self.svc.models.registry()

    def _audit(self, actor: Actor, action: str, version: str, payload: dict[str, Any],
               at: datetime | None = None) -> None:
        with self.svc.db.transaction() as s:
            AuditRepository(s).append(actor=actor.username, role=actor.role, action=action, entity_type="model",
                                      entity_id=version, payload=payload, at=at)

    def registered(self, report: dict[str, Any], actor: Actor) -> None:
        gates = report.get("gates", [])
        self._audit(actor, "model_registered", str(report.get("version")),
                    {"gates_passed": all(g.get("passed") for g in gates) if gates else None,
                     "data_sha256": (report.get("data") or {}).get("sha256")})

    def promote(self, ref: str, actor: Actor, *, force: bool = False, at: datetime | None = None,
                note: str | None = None) -> dict[str, Any]:
        """``at``/``note``: the operations simulator replays promotions at their historical time."""
        result = self.registry().promote(ref, gates_required=not force, at=at)
        if result.get("changed"):
            self._after_switch(result.get("previous"))
            self._audit(actor, "model_promoted", result["version"],
                        {"previous": result.get("previous"), "forced": force,
                         "gates": [{"name": g.get("name"), "passed": g.get("passed")} for g in result.get("gates", [])],
                         **({"note": note} if note else {})}, at=at)
        return result

    def rollback(self, actor: Actor, *, at: datetime | None = None, note: str | None = None) -> str:
        reg = self.registry()
        previous = reg.aliases().get("champion")
        target = reg.rollback(at=at)
        self._after_switch(previous)
        self._audit(actor, "model_rolled_back", target, {"previous": previous, **({"note": note} if note else {})},
                    at=at)
        return str(target)

    def _after_switch(self, old_version: str | None) -> None:
        self.svc.models.invalidate()
        if old_version:
            self.svc.cache.delete_prefix(f"score:{self.svc.settings.model.name}:{old_version}:")
