"""Per-client rate limiting, counted in-process: fixed windows aligned on the wall clock.

The Redis variant (:mod:`.ratelimit_redis`) shares the counters; the composition root picks one.

A fixed window (``limit`` requests per ``window`` seconds, windows aligned on the wall clock) is
exact and cheap: request N of a window is allowed, request N+1 is refused with the seconds left
until the window ends (``Retry-After``). With ``rate_limit_url`` set, counters live in Redis
(``INCRBY`` + ``EXPIRE`` in one transaction) so every worker and replica shares them; each process
also keeps its own count of what it let through, so while Redis is away (or after a restart that
lost the counters) a process allows at most ``limit`` per window itself. A ``cost`` counts a batch
as its applications.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from backend.platform.ports import Verdict

MAX_MEMORY_KEYS = 100_000


def window_verdict(count: int, limit: int, now: float, window: int) -> Verdict:
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

    def hit(self, key: str, limit: int, cost: int = 1) -> Verdict:
        now = self.clock()
        slot = math.floor(now / self.window)
        cost = max(int(cost), 1)
        with self._lock:
            seen_slot, count = self._counts.get(key, (slot, 0))
            count = count + cost if seen_slot == slot else cost
            self._counts[key] = (slot, count)
            if len(self._counts) > MAX_MEMORY_KEYS:  # drop finished windows
                self._counts = {k: v for k, v in self._counts.items() if v[0] == slot}
        return window_verdict(count, limit, now, self.window)

    def describe(self) -> str:
        return "in-process"

    def close(self) -> None:
        return None
