"""Per-client rate limiting: fixed windows counted in-process, or in Redis when configured.

A fixed window (``limit`` requests per ``window`` seconds, windows aligned on the wall clock) is
exact and cheap: request N of a window is allowed, request N+1 is refused with the seconds left
until the window ends (``Retry-After``). With ``rate_limit_url`` set, counters live in Redis
(``INCR`` + ``EXPIRE`` in one transaction) so every worker and replica shares them. Redis gets
short socket timeouts and no retries; when it fails, the limiter logs it once, counts in-process
for ``failure_cooldown`` seconds (per-process limits instead of shared ones: a documented
degradation, never an outage) and then tries Redis again.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from backend.adapters.cache_redis import redact_url

log = logging.getLogger("creditrisk.api")
KEY_PREFIX = "creditrisk:ratelimit:"
MAX_MEMORY_KEYS = 100_000


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    retry_after: int  # seconds until the window ends (0 when allowed)


class RateLimiter(Protocol):
    backend: str

    def hit(self, key: str, limit: int) -> Verdict: ...

    def describe(self) -> str: ...

    def close(self) -> None: ...


def _verdict(count: int, limit: int, now: float, window: int) -> Verdict:
    left = max(1, math.ceil((math.floor(now / window) + 1) * window - now))
    if count > limit:
        return Verdict(False, limit, 0, left)
    return Verdict(True, limit, limit - count, 0)


class MemoryLimiter:
    backend = "memory"

    def __init__(self, *, window: int = 60, clock: Callable[[], float] = time.time) -> None:
        self.window = window
        self.clock = clock
        self._counts: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, limit: int) -> Verdict:
        now = self.clock()
        slot = math.floor(now / self.window)
        with self._lock:
            seen_slot, count = self._counts.get(key, (slot, 0))
            count = count + 1 if seen_slot == slot else 1
            self._counts[key] = (slot, count)
            if len(self._counts) > MAX_MEMORY_KEYS:  # drop finished windows
                self._counts = {k: v for k, v in self._counts.items() if v[0] == slot}
        return _verdict(count, limit, now, self.window)

    def describe(self) -> str:
        return "in-process"

    def close(self) -> None:
        return None


class RedisLimiter:
    backend = "redis"

    def __init__(self, url: str, *, window: int = 60, clock: Callable[[], float] = time.time,
                 socket_timeout: float = 0.05, failure_cooldown: float = 5.0, client: Any = None) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.url = url
        self.window = window
        self.clock = clock
        self.failure_cooldown = failure_cooldown
        self.fallback = MemoryLimiter(window=window, clock=clock)
        self._errors = (redis.exceptions.RedisError, OSError)
        self._client = client if client is not None else redis.Redis.from_url(
            url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout,
            retry=Retry(NoBackoff(), 0), health_check_interval=0)
        self._lock = threading.Lock()
        self._down_until = 0.0  # monotonic; 0 = Redis in use

    def hit(self, key: str, limit: int) -> Verdict:
        now = self.clock()
        if self._skipping():
            return self.fallback.hit(key, limit)
        slot = math.floor(now / self.window)
        name = f"{KEY_PREFIX}{key}:{slot}"
        try:
            pipe = self._client.pipeline(transaction=True)
            pipe.incr(name)
            pipe.expire(name, self.window * 2)
            count = int(pipe.execute()[0])
        except self._errors as exc:
            self._failed(exc)
            return self.fallback.hit(key, limit)
        self._recovered()
        return _verdict(count, limit, now, self.window)

    def _skipping(self) -> bool:
        with self._lock:
            if self._down_until == 0.0:
                return False
            if time.monotonic() < self._down_until:
                return True
            self._down_until = time.monotonic() + self.failure_cooldown  # half-open: this caller probes
            return False

    def _failed(self, exc: BaseException) -> None:
        with self._lock:
            first = self._down_until == 0.0
            self._down_until = time.monotonic() + self.failure_cooldown
        if first:
            log.warning("rate limiter: Redis %s unavailable (%s); counting in-process for %.0f s",
                        redact_url(self.url), type(exc).__name__, self.failure_cooldown)

    def _recovered(self) -> None:
        if self._down_until != 0.0:
            with self._lock:
                self._down_until = 0.0
            log.info("rate limiter: Redis %s reachable again", redact_url(self.url))

    @property
    def degraded(self) -> bool:
        with self._lock:
            return self._down_until != 0.0

    def describe(self) -> str:
        return f"redis {redact_url(self.url)}" + (" (unavailable: counting in-process)" if self.degraded else "")

    def close(self) -> None:
        try:
            self._client.close()
        except Exception:  # noqa: BLE001, S110 - closing is best effort
            pass


def build_limiter(url: str, *, socket_timeout: float, failure_cooldown: float,
                  clock: Callable[[], float] = time.time) -> RateLimiter:
    if not url:
        return MemoryLimiter(clock=clock)
    return RedisLimiter(url, clock=clock, socket_timeout=socket_timeout, failure_cooldown=failure_cooldown)
