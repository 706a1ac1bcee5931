"""The registry's listing: one summary per version with its live status, aliases, lifecycle state, cause,
override and readable label (what `creditrisk models list` and the Model registry page show)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from backend.models import states
from backend.models.artifacts import ArtifactIntegrityError

if TYPE_CHECKING:
    from backend.models.registry import Registry


def version_summaries(reg: Registry) -> list[dict[str, Any]]:
    """One summary per version, oldest first, with live status and aliases, its lifecycle ``state``
    (:mod:`backend.models.states`), ``cause`` and ``override`` when any, and a readable ``label``."""
    doc = reg.aliases()
    rows = []
    for version in reg.versions():
        row: dict[str, Any] = {"version": version, "status": doc["status"].get(version, "candidate"),
                               "aliases": [a for a in ("champion", "challenger") if doc[a] == version]
                               + (["canary"] if (doc["canary"] or {}).get("version") == version else [])}
        try:
            m = reg.manifest(version)
            row.update(created_at=m["created_at"], metrics=m["metrics"], gates_passed=m["gates_passed"],
                       gates=m["gates"], data=m["data"], data_sha256=m["data"]["sha256"],
                       lineage=m.get("lineage", {}), gates_context=m.get("gates_context", {}),
                       intact=not reg.verify(version))
        except (ArtifactIntegrityError, KeyError, ValueError) as exc:
            row.update(intact=False, error=str(exc))
        row.update(state=states.state(doc, version), cause=states.cause(doc, version),
                   override=(doc.get(states.OVERRIDES) or {}).get(version), label=states.label(row, reg.name))
        rows.append(row)
    return rows
