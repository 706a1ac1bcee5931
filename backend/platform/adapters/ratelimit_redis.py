"""Per-client rate limiting with counters in Redis (``INCRBY`` + ``EXPIRE`` in one transaction), shared by every
worker and replica. Redis gets short socket timeouts and no retries; when it fails, the limiter logs it once,
counts in-process for ``failure_cooldown`` seconds (per-process limits instead of shared ones: a documented
degradation, never an outage) and then tries Redis again.

The in-process count runs all the time, not only while Redis is away: every hit is counted locally too and
the verdict takes the larger of the two counts. So a process never lets more than ``limit`` through in one
window, whether Redis is down, comes back empty after a restart (its counters lost), or flaps: across an
outage the bound is the configured limit per process per window (the shared limit again once Redis holds
the window's count).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

from backend.platform.adapters.cache_redis import redact_url
from backend.platform.adapters.ratelimit_memory import MemoryLimiter, window_verdict
from backend.platform.circuit import CircuitBreaker
from backend.platform.ports import Verdict

log = logging.getLogger("creditrisk.api")
KEY_PREFIX = "creditrisk:ratelimit:"


class RedisLimiter:
    backend = "redis"

    def __init__(self, url: str, *, window: int = 60, clock: Callable[[], float] = time.time,
                 socket_timeout: float = 0.05, failure_cooldown: float = 5.0, client: Any = None) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.url = url
        self.window = window
        self.clock = clock  # wall time: the counting windows
        self.failure_cooldown = failure_cooldown
        self._breaker = CircuitBreaker(failure_cooldown)  # monotonic time: the cooldown after a failure
        self.fallback = MemoryLimiter(window=window, clock=clock)
        self._errors = (redis.exceptions.RedisError, OSError)
        self._client = client if client is not None else redis.Redis.from_url(
            url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout,
            retry=Retry(NoBackoff(), 0), health_check_interval=0)

    def hit(self, key: str, limit: int, cost: int = 1) -> Verdict:
        now = self.clock()
        cost = max(int(cost), 1)
        local = self.fallback.hit(key, limit, cost)  # this process's own count, always kept
        if not self._breaker.allow():
            return local
        slot = math.floor(now / self.window)
        name = f"{KEY_PREFIX}{key}:{slot}"
        try:
            pipe = self._client.pipeline(transaction=True)
            pipe.incrby(name, cost)
            pipe.expire(name, self.window * 2)
            count = int(pipe.execute()[0])
        except self._errors as exc:
            self._failed(exc)
            return local
        self._recovered()
        if not local.allowed:  # Redis lost the window's count (a restart): this process's count holds
            return local
        return window_verdict(count, limit, now, self.window)

    def _failed(self, exc: BaseException) -> None:
        if self._breaker.record_failure():
            log.warning("rate limiter: Redis %s unavailable (%s); counting in-process for %.0f s",
                        redact_url(self.url), type(exc).__name__, self.failure_cooldown)

    def _recovered(self) -> None:
        if self._breaker.record_success():
            log.info("rate limiter: Redis %s reachable again", redact_url(self.url))

    @property
    def degraded(self) -> bool:
        return self._breaker.tripped

    def describe(self) -> str:
        return f"redis {redact_url(self.url)}" + (" (unavailable: counting in-process)" if self.degraded else "")

    def close(self) -> None:
        try:
            self._client.close()
        except Exception:  # noqa: BLE001, S110 - closing is best effort
            pass
