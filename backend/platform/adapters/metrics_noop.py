"""Metrics that go nowhere (``CREDITRISK_METRICS__BACKEND=none``): names and labels are still checked."""

from __future__ import annotations

from collections.abc import Mapping

from backend.platform.metrics_catalog import check


class NoopMetrics:
    backend = "none"

    def inc(self, name: str, labels: Mapping[str, str], value: float = 1.0) -> None:
        check(name, dict(labels))

    def observe(self, name: str, value: float, labels: Mapping[str, str]) -> None:
        check(name, dict(labels))

    def flush(self) -> None:
        return None

    def exposition(self) -> tuple[bytes, str] | None:
        return None
