"""Choose the cache adapter from the ``CREDITRISK_CACHE__URL`` setting.

``None``, ``""`` or ``memory://`` give the in-process :class:`MemoryCache`; ``redis://``,
``rediss://`` and ``unix://`` give :class:`RedisCache`. Options that only one backend uses
(``max_entries`` for memory, ``namespace`` and timeouts for Redis) are ignored by the other, so
the composition root can pass every cache setting without knowing which backend it gets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypedDict, Unpack, cast
from urllib.parse import urlsplit

from backend.adapters.cache_memory import MemoryCache
from backend.ports import Cache

MEMORY_SCHEMES = frozenset({"memory"})
REDIS_SCHEMES = frozenset({"redis", "rediss", "unix"})
ERR_BAD_CACHE_URL = (
    "Unsupported cache URL scheme {scheme!r} in setting CREDITRISK_CACHE__URL; accepted: "
    "empty or memory:// (in-process cache), redis://, rediss://, unix:// (Redis)."
)

_MEMORY_OPTS = frozenset({"max_entries", "default_ttl", "clock"})
_REDIS_OPTS = frozenset(
    {"namespace", "default_ttl", "socket_timeout", "connect_timeout", "failure_cooldown", "client", "clock"}
)


class CacheOptions(TypedDict, total=False):
    """Keyword options of :func:`build_cache`; each goes to the backend that uses it."""

    default_ttl: float | None
    clock: Callable[[], float]
    max_entries: int
    namespace: str
    socket_timeout: float
    connect_timeout: float
    failure_cooldown: float
    client: Any


def cache_scheme(url: str | None) -> str:
    """Return the lower-case scheme of a cache URL (``"memory"`` for ``None``/empty)."""
    text = (url or "").strip()
    if not text:
        return "memory"
    return urlsplit(text).scheme.lower()


def build_cache(url: str | None, **opts: Unpack[CacheOptions]) -> Cache:
    """Build the cache adapter for ``url``.

    Raises
    ------
    ValueError
        If the URL scheme is not one of the accepted ones (the message names the setting; the
        URL itself is left out because it may carry a password).
    TypeError
        If an option is unknown to every backend.
    """
    unknown = set(opts) - _MEMORY_OPTS - _REDIS_OPTS
    if unknown:
        raise TypeError(f"build_cache() got unknown options: {', '.join(sorted(unknown))}")
    scheme = cache_scheme(url)
    if scheme in MEMORY_SCHEMES:
        mem_opts = {k: v for k, v in opts.items() if k in _MEMORY_OPTS}
        return MemoryCache(**cast(Any, mem_opts))
    if scheme in REDIS_SCHEMES:
        from backend.adapters.cache_redis import RedisCache

        redis_opts = {k: v for k, v in opts.items() if k in _REDIS_OPTS}
        return RedisCache(cast(str, url).strip(), **cast(Any, redis_opts))
    raise ValueError(ERR_BAD_CACHE_URL.format(scheme=scheme))
