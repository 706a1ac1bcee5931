"""A cache that counts its reads: every ``get`` is a hit or a miss in ``CACHE_LOOKUPS`` (by backend and keyspace)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from backend.platform.metrics_catalog import CACHE_LOOKUPS
from backend.platform.ports import Cache, Metrics

_KEYSPACE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def keyspace(key: str) -> str:
    """The key's prefix before the first ``:`` when it is a short code word (``score``), else ``other``:
    a label never carries a key's variable part."""
    head = key.split(":", 1)[0]
    return head if ":" in key and _KEYSPACE.match(head) else "other"


class MeteredCache:
    """A :class:`~backend.platform.ports.Cache` that counts ``get`` hits and misses (a backend error reads as a
    miss, as the port's contract says); everything else passes through."""

    def __init__(self, inner: Cache, metrics: Metrics) -> None:
        self.inner = inner
        self.metrics = metrics
        self.backend = inner.backend

    def get(self, key: str) -> bytes | None:
        value = self.inner.get(key)
        try:
            self.metrics.inc(CACHE_LOOKUPS, {"backend": self.backend, "keyspace": keyspace(key),
                                             "result": "miss" if value is None else "hit"})
        except Exception:  # noqa: BLE001, S110 - counting never fails a read
            pass
        return value

    def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> bool:
        return self.inner.set(key, value, ttl_seconds)

    def delete(self, key: str) -> bool:
        return self.inner.delete(key)

    def delete_prefix(self, prefix: str) -> int:
        return self.inner.delete_prefix(prefix)

    def health(self) -> Mapping[str, Any]:
        return self.inner.health()

    def __getattr__(self, name: str) -> Any:  # adapter-specific extras (close, ...) of the wrapped cache
        return getattr(self.inner, name)


def metered_cache(cache: Cache, metrics: Metrics) -> Cache:
    """``cache`` counted by ``metrics`` (a cache that is already counted is returned as it is)."""
    return cache if isinstance(cache, MeteredCache) else MeteredCache(cache, metrics)
