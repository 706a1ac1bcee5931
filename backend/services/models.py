"""Which model versions exist and which one serves (a thin view over the registry)."""

from __future__ import annotations

from typing import Any

from backend.config import ModelSettings


class ModelCatalog:
    def __init__(self, settings: ModelSettings) -> None:
        self.settings = settings

    def registry(self) -> Any:
        from backend.model.registry import Registry

        return Registry(self.settings.registry_dir, name=self.settings.name)

    def health(self) -> dict[str, Any]:
        try:
            reg = self.registry()
            versions = reg.list()
        except Exception as exc:  # noqa: BLE001
            return {"ok": False, "backend": self.settings.server, "detail": f"registry unavailable: {exc}"[:300]}
        champion = next((v for v in versions if v.get("alias") == "champion" or v.get("status") == "champion"), None)
        if champion is None:
            return {"ok": False, "backend": self.settings.server,
                    "detail": "no champion model: run `creditrisk train` then `creditrisk models promote`"}
        return {"ok": True, "backend": self.settings.server,
                "detail": f"{self.settings.name} {champion.get('version')} ({self.settings.engine} engine)"}
