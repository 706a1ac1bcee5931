"""Ports: one Protocol per external system.

Services receive these in their constructor; ``backend.container.build_services`` picks the
adapter for each from settings. Adapters live in ``backend/adapters/<port>_<backend>.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Cache(Protocol):
    """A best-effort key/value cache with TTLs.

    Contract: a cache failure never fails the caller. ``get`` returns ``None`` on a miss *or* on
    any backend error; ``set``/``delete`` swallow backend errors and return ``False``.
    Values are bytes; callers serialise.
    """

    backend: str

    def get(self, key: str) -> bytes | None: ...

    def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> bool: ...

    def delete(self, key: str) -> bool: ...

    def delete_prefix(self, prefix: str) -> int: ...

    def health(self) -> Mapping[str, Any]:
        """``{"ok": bool, "backend": str, "detail": str, "latency_ms": float}``; never raises."""
        ...


class Clock(Protocol):
    def now(self) -> datetime:
        """Timezone-aware UTC now."""
        ...


@runtime_checkable
class Metrics(Protocol):
    """Counters and histograms with labels; the names and label sets are in ``backend/metrics_catalog.py``.

    Contract: an unknown name or a wrong label set is a programming error (``ValueError``); a sink
    failure (a closed stream) is logged and dropped, never raised. Label values must be bounded
    (route templates, enumerations, configured names) and never identify an applicant.
    """

    backend: str

    def inc(self, name: str, labels: Mapping[str, str], value: float = 1.0) -> None: ...

    def observe(self, name: str, value: float, labels: Mapping[str, str]) -> None: ...

    def flush(self) -> None:
        """Push buffered values out (EMF); no-op for pull-based backends."""
        ...

    def exposition(self) -> tuple[bytes, str] | None:
        """``(body, content type)`` of the Prometheus text format, or ``None`` when not scrapeable."""
        ...
