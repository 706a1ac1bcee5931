"""In-process cache adapter: a thread-safe TTL cache with LRU eviction.

The embedded default for :class:`backend.platform.ports.Cache`. Streamlit and FastAPI serve requests from
several threads, so every operation holds one lock; operations are O(1) except
``delete_prefix`` and ``stats`` (O(n) scans, both rare).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

DEFAULT_TTL_SECONDS: float = 300.0
DEFAULT_MAX_ENTRIES: int = 10_000

ERR_BAD_TTL = "ttl_seconds must be a finite number > 0 (or None for the cache's default TTL)"
ERR_BAD_DEFAULT_TTL = "default_ttl must be a finite number > 0, or None for no expiry"
ERR_BAD_VALUE = "cache values must be bytes; serialise before caching"
ERR_BAD_KEY = "cache keys must be str"
ERR_BAD_MAX_ENTRIES = "max_entries must be an integer >= 1"


def check_ttl(ttl: float | None, message: str = ERR_BAD_TTL) -> float | None:
    """Return ``ttl`` if it is ``None`` or finite and positive, else raise ``ValueError``.

    A non-positive or non-finite TTL is a caller bug, not a cache failure, so it is reported
    rather than swallowed. Shared with the Redis adapter so both behave the same.
    """
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not math.isfinite(ttl) or ttl <= 0:
        raise ValueError(message)
    return float(ttl)


def check_key_value(key: object, value: object) -> bytes:
    """Validate a key and a value; return the value as immutable ``bytes``."""
    if not isinstance(key, str):
        raise TypeError(ERR_BAD_KEY)
    if not isinstance(value, bytes | bytearray | memoryview):
        raise TypeError(ERR_BAD_VALUE)
    return bytes(value)


class MemoryCache:
    """Thread-safe in-process TTL cache with least-recently-used eviction.

    Parameters
    ----------
    max_entries:
        Capacity; inserting beyond it evicts the least recently used entry.
    default_ttl:
        Seconds an entry lives when ``set`` gets no ``ttl_seconds``; ``None`` means no expiry.
    clock:
        Monotonic seconds; inject a fake in tests to expire entries without sleeping.
    """

    backend = "memory"

    def __init__(
        self,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        default_ttl: float | None = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ValueError(ERR_BAD_MAX_ENTRIES)
        self.max_entries = max_entries
        self.default_ttl = check_ttl(default_ttl, ERR_BAD_DEFAULT_TTL)
        self._clock = clock
        self._lock = threading.Lock()
        # key -> (value, expires_at or None); order = recency, most recent last.
        self._data: OrderedDict[str, tuple[bytes, float | None]] = OrderedDict()
        self._hits = self._misses = self._sets = self._evictions = 0

    def get(self, key: str) -> bytes | None:
        """Return the value, or ``None`` if absent or expired."""
        with self._lock:
            entry = self._data.get(key)
            if entry is not None:
                value, expires_at = entry
                if expires_at is None or self._clock() < expires_at:
                    self._data.move_to_end(key)
                    self._hits += 1
                    return value
                del self._data[key]
            self._misses += 1
            return None

    def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> bool:
        """Store ``value`` for ``ttl_seconds`` (default: the cache's ``default_ttl``)."""
        data = check_key_value(key, value)
        ttl = check_ttl(ttl_seconds)
        if ttl is None:
            ttl = self.default_ttl
        with self._lock:
            expires_at = None if ttl is None else self._clock() + ttl
            self._data[key] = (data, expires_at)
            self._data.move_to_end(key)
            self._sets += 1
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)
                self._evictions += 1
        return True

    def delete(self, key: str) -> bool:
        """Remove ``key``; ``True`` if it was present (expired or not)."""
        with self._lock:
            return self._data.pop(key, None) is not None

    def delete_prefix(self, prefix: str) -> int:
        """Remove every key starting with ``prefix`` (``""`` clears the cache); return the count."""
        with self._lock:
            doomed = [k for k in self._data if k.startswith(prefix)]
            for k in doomed:
                del self._data[k]
            return len(doomed)

    def clear(self) -> None:
        """Drop every entry (statistics are kept)."""
        with self._lock:
            self._data.clear()

    def close(self) -> None:
        """Release memory; the cache stays usable."""
        self.clear()

    def _purge_expired(self) -> None:
        """Drop expired entries; caller holds the lock."""
        now = self._clock()
        expired = [k for k, (_, exp) in self._data.items() if exp is not None and now >= exp]
        for k in expired:
            del self._data[k]

    def stats(self) -> dict[str, Any]:
        """Counters since construction plus the number of live entries."""
        with self._lock:
            self._purge_expired()
            return {
                "backend": self.backend,
                "hits": self._hits,
                "misses": self._misses,
                "sets": self._sets,
                "evictions": self._evictions,
                "errors": 0,
                "size": len(self._data),
            }

    def health(self) -> Mapping[str, Any]:
        """Always healthy; reports the entry count. Never raises."""
        start = time.perf_counter()
        with self._lock:
            size = len(self._data)
        return {
            "ok": True,
            "backend": self.backend,
            "detail": f"in-process cache, {size}/{self.max_entries} entries",
            "latency_ms": (time.perf_counter() - start) * 1000.0,
        }

    def __repr__(self) -> str:
        return f"MemoryCache(max_entries={self.max_entries}, default_ttl={self.default_ttl})"
