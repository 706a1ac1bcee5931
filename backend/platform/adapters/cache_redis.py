"""Redis cache adapter with short timeouts, no retries and a circuit breaker.

A cache must never slow the caller down more than it speeds it up. redis-py's defaults
(5 s socket timeouts and up to 10 retries with backoff in redis-py 8) can turn a hung Redis into
a minute-long stall, so this adapter:

* sets socket and connect timeouts of tens of milliseconds and disables retries;
* opens a circuit (:class:`backend.platform.circuit.CircuitBreaker`) after a connection or timeout
  error: for ``failure_cooldown`` seconds every call returns the miss/failure value without touching
  the network, then a single caller probes Redis again (half-open) while the others keep skipping;
* catches every redis error and honours the :class:`backend.platform.ports.Cache` contract.

``redis`` is imported lazily, so the package is only needed when this adapter is selected.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from backend.platform.adapters.cache_memory import (
    DEFAULT_TTL_SECONDS,
    ERR_BAD_DEFAULT_TTL,
    check_key_value,
    check_ttl,
)
from backend.platform.circuit import CircuitBreaker

log = logging.getLogger(__name__)

ERR_REDIS_MISSING = (
    "The Redis cache needs the 'redis' package (pip install 'redis>=5'); "
    "or set CREDITRISK_CACHE__URL=memory:// to use the in-process cache."
)
ERR_BAD_NAMESPACE = "namespace must be a non-empty string (it scopes every key and delete_prefix)"
SCAN_BATCH = 500
_GLOB_SPECIALS = frozenset("*?[]\\")

T = TypeVar("T")


def redact_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***`` (for logs and health details)."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        user = parts.username or ""
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))
    except ValueError:
        return "<unparseable url>"


def glob_escape(text: str) -> str:
    """Escape Redis glob metacharacters so ``text`` matches literally in ``SCAN MATCH``."""
    return "".join("\\" + c if c in _GLOB_SPECIALS else c for c in text)


def _import_redis() -> Any:
    try:
        import redis
    except ImportError as exc:  # pragma: no cover - exercised only without the package
        raise ImportError(ERR_REDIS_MISSING) from exc
    return redis


class RedisCache:
    """A :class:`backend.platform.ports.Cache` on Redis; keys are stored as ``namespace + key``.

    Parameters
    ----------
    url:
        ``redis://``, ``rediss://`` or ``unix://`` URL (query options such as ``?db=`` apply).
    namespace:
        Prefix of every stored key; ``delete_prefix`` never reaches outside it.
    default_ttl:
        Seconds an entry lives when ``set`` gets no ``ttl_seconds``; ``None`` means no expiry.
    socket_timeout, connect_timeout:
        Seconds to wait for a reply / a TCP connection before giving up.
    failure_cooldown:
        Seconds to skip Redis after a connection or timeout error.
    client:
        A ready ``redis.Redis`` (tests, shared pools); built from ``url`` when ``None``.
    clock:
        Monotonic seconds for the circuit breaker; inject a fake in tests.
    """

    backend = "redis"

    def __init__(
        self,
        url: str,
        *,
        namespace: str = "creditrisk:",
        default_ttl: float | None = DEFAULT_TTL_SECONDS,
        socket_timeout: float = 0.05,
        connect_timeout: float = 0.05,
        failure_cooldown: float = 5.0,
        client: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not isinstance(namespace, str) or not namespace:
            raise ValueError(ERR_BAD_NAMESPACE)
        self._breaker = CircuitBreaker(failure_cooldown, clock=clock)
        self._redis = _import_redis()
        self.url = url
        self.namespace = namespace
        self.default_ttl = check_ttl(default_ttl, ERR_BAD_DEFAULT_TTL)
        self.failure_cooldown = self._breaker.cooldown
        self._client = (
            client if client is not None else self._build_client(url, socket_timeout, connect_timeout)
        )
        # Transport failures open the circuit; other redis errors (WRONGTYPE, OOM...) do not.
        self._transport_errors: tuple[type[BaseException], ...] = (
            self._redis.exceptions.ConnectionError,
            self._redis.exceptions.TimeoutError,
            OSError,
        )
        self._errors: tuple[type[BaseException], ...] = (self._redis.exceptions.RedisError, OSError)
        self._lock = threading.Lock()  # the counters
        self._hits = self._misses = self._sets = self._error_count = 0

    def _build_client(self, url: str, socket_timeout: float, connect_timeout: float) -> Any:
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        scheme, sep, rest = url.strip().partition("://")
        return self._redis.Redis.from_url(
            scheme.lower() + sep + rest,  # redis-py only accepts lower-case schemes
            socket_timeout=socket_timeout,
            socket_connect_timeout=connect_timeout,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )

    # -- circuit breaker -------------------------------------------------------------------

    def _record_success(self) -> None:
        if self._breaker.record_success():
            log.info("redis cache %s reachable again; circuit closed", redact_url(self.url))

    def _record_failure(self, op: str, exc: BaseException) -> None:
        with self._lock:
            self._error_count += 1
        if not isinstance(exc, self._transport_errors):
            # Redis answered (WRONGTYPE, OOM, READONLY...): reachable, so keep the circuit closed.
            self._breaker.record_success()
            log.warning("redis cache %s failed: %s: %s", op, type(exc).__name__, exc)
            return
        if self._breaker.record_failure():
            log.warning(
                "redis cache %s unavailable (%s: %s); skipping it for %.1f s",
                redact_url(self.url),
                type(exc).__name__,
                exc,
                self.failure_cooldown,
            )

    def _call(self, op: str, fn: Callable[[], T], fallback: T) -> T:
        """Run ``fn`` behind the breaker; on any redis error return ``fallback``."""
        if not self._breaker.allow():
            return fallback
        try:
            result = fn()
        except self._errors as exc:
            self._record_failure(op, exc)
            return fallback
        self._record_success()
        return result

    # -- Cache protocol --------------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        """Return the value, or ``None`` on a miss, an error or while the circuit is open."""
        full_key = self.namespace + key
        value: bytes | None = self._call("get", lambda: self._client.get(full_key), None)
        with self._lock:
            if value is None:
                self._misses += 1
            else:
                self._hits += 1
        return value

    def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> bool:
        """Store ``value``; ``False`` if Redis failed or was skipped."""
        data = check_key_value(key, value)
        ttl = check_ttl(ttl_seconds)
        if ttl is None:
            ttl = self.default_ttl
        px = None if ttl is None else max(1, math.ceil(ttl * 1000))
        full_key = self.namespace + key
        ok = bool(self._call("set", lambda: self._client.set(full_key, data, px=px), False))
        if ok:
            with self._lock:
                self._sets += 1
        return ok

    def delete(self, key: str) -> bool:
        """Remove ``key``; ``True`` only if Redis confirmed it existed."""
        full_key = self.namespace + key
        return bool(self._call("delete", lambda: self._client.unlink(full_key), 0))

    def delete_prefix(self, prefix: str) -> int:
        """UNLINK every key of this namespace starting with ``prefix`` (SCAN, never KEYS).

        Returns how many keys were removed; 0 if Redis is unavailable. If Redis fails part-way,
        the keys already removed are counted and the error is recorded.
        """
        pattern = glob_escape(self.namespace + prefix) + "*"
        removed = 0

        def run() -> int:
            nonlocal removed
            for batch in self._batches(self._client.scan_iter(match=pattern, count=SCAN_BATCH)):
                removed += int(self._client.unlink(*batch))
            return removed

        self._call("delete_prefix", run, 0)
        return removed

    @staticmethod
    def _batches(keys: Iterator[bytes]) -> Iterator[list[bytes]]:
        batch: list[bytes] = []
        for k in keys:
            batch.append(k)
            if len(batch) >= SCAN_BATCH:
                yield batch
                batch = []
        if batch:
            yield batch

    def health(self) -> Mapping[str, Any]:
        """PING Redis (bypassing the breaker) and report latency. Never raises."""
        start = time.perf_counter()
        try:
            self._client.ping()
        except Exception as exc:  # health must never raise
            latency = (time.perf_counter() - start) * 1000.0
            if isinstance(exc, self._errors):
                self._record_failure("ping", exc)
            detail = f"{redact_url(self.url)}: {type(exc).__name__}: {exc}"
            return {"ok": False, "backend": self.backend, "detail": detail, "latency_ms": latency}
        latency = (time.perf_counter() - start) * 1000.0
        self._record_success()
        return {
            "ok": True,
            "backend": self.backend,
            "detail": f"PONG from {redact_url(self.url)}",
            "latency_ms": latency,
        }

    # -- extras ----------------------------------------------------------------------------

    @property
    def circuit_open(self) -> bool:
        """``True`` while calls are being skipped after a failure."""
        return self._breaker.is_open

    def stats(self) -> dict[str, Any]:
        """Counters since construction, as :meth:`MemoryCache.stats` plus breaker state.

        ``evictions`` and ``size`` are ``None``: Redis evicts server-wide and counting a namespace
        would need a full SCAN. ``skipped`` counts calls answered by the open circuit.
        """
        circuit_open = self.circuit_open
        with self._lock:
            return {
                "backend": self.backend,
                "hits": self._hits,
                "misses": self._misses,
                "sets": self._sets,
                "evictions": None,
                "errors": self._error_count,
                "size": None,
                "circuit_open": circuit_open,
                "skipped": self._breaker.skipped,
            }

    def close(self) -> None:
        """Close the connection pool. Never raises."""
        try:
            self._client.close()
        except Exception:  # noqa: S110 - closing is best effort
            pass

    def __repr__(self) -> str:
        return f"RedisCache({redact_url(self.url)!r}, namespace={self.namespace!r})"
