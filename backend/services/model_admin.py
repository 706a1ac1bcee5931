"""Model lifecycle actions with their audit rows: register (train), promote, rollback.

The registry files are the source of truth for artifacts and aliases; every change also writes an
audit row, and promotion/rollback purge cached scores of the versions that stopped serving.
"""

from __future__ import annotations

from typing import Any

from backend.container import Services
from backend.services.users import Actor


class ModelAdmin:
    def __init__(self, services: Services) -> None:
        self.svc = services

    def registry(self) -> Any:
        return self.svc.models.registry()

    def _audit(self, actor: Actor, action: str, version: str, payload: dict[str, Any]) -> None:
        self.svc.audit.record(actor=actor.username, role=actor.role, action=action, entity_type="model",
                              entity_id=version, payload=payload)

    def registered(self, report: dict[str, Any], actor: Actor) -> None:
        gates = report.get("gates", [])
        self._audit(actor, "model_registered", str(report.get("version")),
                    {"gates_passed": all(g.get("passed") for g in gates) if gates else None,
                     "data_sha256": (report.get("data") or {}).get("sha256")})

    def promote(self, ref: str, actor: Actor, *, force: bool = False) -> dict[str, Any]:
        result = self.registry().promote(ref, gates_required=not force)
        if result.get("changed"):
            self._after_switch(result.get("previous"))
            self._audit(actor, "model_promoted", result["version"],
                        {"previous": result.get("previous"), "forced": force,
                         "gates": [{"name": g.get("name"), "passed": g.get("passed")} for g in result.get("gates", [])]})
        return result

    def rollback(self, actor: Actor) -> str:
        reg = self.registry()
        previous = reg.aliases().get("champion")
        target = reg.rollback()
        self._after_switch(previous)
        self._audit(actor, "model_rolled_back", target, {"previous": previous})
        return str(target)

    def _after_switch(self, old_version: str | None) -> None:
        self.svc.models.invalidate()
        if old_version:
            self.svc.cache.delete_prefix(f"score:{self.svc.settings.model.name}:{old_version}:")
