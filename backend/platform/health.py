"""Health of every configured backend, for the home page, `creditrisk doctor` and /health/ready."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Check = Callable[[], Mapping[str, Any]]


class HealthService:
    def __init__(self, checks: Mapping[str, Check]) -> None:
        self.checks = dict(checks)

    def report(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for name, check in self.checks.items():
            try:
                out[name] = dict(check())
            except Exception as exc:  # noqa: BLE001 - a failing check is a result, not a crash
                out[name] = {"ok": False, "backend": "?", "detail": f"{type(exc).__name__}: {exc}"[:300]}
        return out

    def ready(self) -> bool:
        return all(r.get("ok") for r in self.report().values())
