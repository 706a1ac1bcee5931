"""Ports: one Protocol per external system.

Services receive these in their constructor; ``backend.container.build_services`` picks the
adapter for each from settings. Adapters live in ``backend/platform/adapters/<port>_<backend>.py`` (or, for a
feature's own port, ``backend/<feature>/adapters/``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

#: How a long use case reports progress: ``progress(step, done, total)`` after each step (``step`` names
#: what was just done). Services only call it; the CLI renders it with rich
#: (:func:`backend.platform.cli.progress_bar`), the console with ``st.progress``.
ProgressCallback = Callable[[str, int, int], None]


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
    """Counters and histograms with labels; the names and label sets are in ``backend/platform/metrics_catalog.py``.

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


class Notifier(Protocol):
    """Sends one alert event to people (a log line, a chat or paging webhook); returns what happened."""

    channel: str

    def send(self, event: Mapping[str, Any]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    retry_after: int  # seconds until the window ends (0 when allowed)


class RateLimiter(Protocol):
    """Fixed-window request counting per caller: in-process (default) or shared through Redis."""

    backend: str

    def hit(self, key: str, limit: int, cost: int = 1) -> Verdict:
        """Count ``cost`` requests (a batch counts as its applications) against ``limit`` per window."""
        ...

    def describe(self) -> str: ...

    def close(self) -> None: ...
