"""Model health for the home page and readiness checks."""

from __future__ import annotations

from typing import Any

from backend.models.provider import ModelProvider


def model_health(provider: ModelProvider) -> dict[str, Any]:
    backend = f"{provider.settings.server} / {provider.settings.engine}"
    try:
        model = provider.get("champion")
    except Exception as exc:  # noqa: BLE001 - health reports, never raises
        return {"ok": False, "backend": backend, "detail": str(exc)[:300]}
    return {"ok": True, "backend": backend,
            "detail": f"champion {model.name} {model.version} ({len(model.columns)} features)"}
