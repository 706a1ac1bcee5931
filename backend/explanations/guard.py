"""A fence around every LLM call: an overall deadline, a cap on the answer's size, a bounded pool of its own and a
circuit breaker per provider.

* **Deadline** (``deadline`` seconds, connect + first byte + the whole answer): a blocking call runs on the
  guard's pool and the caller stops waiting at the deadline (the SDK's own timeout is per read, so a provider
  dripping one byte a second would hold it for minutes); a stream is cut when a chunk arrives after it.
* **Size cap** (``max_chars``): a longer answer is refused before the fact-check reads it; a stream is cut as
  soon as it passes the cap.
* **Bounded pool** (``workers`` threads): explanation calls never run on the threads that score or read
  decisions; when every worker is busy (a hung provider) a new call is refused at once (``busy``) and the
  engine shows the template, instead of queueing behind the hung ones.
* **Circuit breaker** per provider (:class:`backend.platform.circuit.CircuitBreaker`, ``cooldown`` seconds):
  after a failure (timeout, error, oversized answer) the provider is skipped at once until the cooldown ends;
  one probe then decides.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from backend.explanations.providers import BAD_RESPONSE, TIMEOUT, Completion, ProviderError, ProviderStream
from backend.explanations.record import DecisionRecord
from backend.platform.circuit import CircuitBreaker

CIRCUIT_OPEN, BUSY, TOO_LARGE = "circuit_open", "busy", "too_large"
DEFAULT_DEADLINE, DEFAULT_MAX_CHARS, DEFAULT_WORKERS, DEFAULT_COOLDOWN = 20.0, 4000, 4, 30.0


class ProviderGuard:
    def __init__(self, *, deadline: float = DEFAULT_DEADLINE, max_chars: int = DEFAULT_MAX_CHARS,
                 workers: int = DEFAULT_WORKERS, cooldown: float = DEFAULT_COOLDOWN,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.deadline, self.max_chars, self.workers = deadline, max_chars, workers
        self.cooldown, self._clock = cooldown, clock
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="llm-explain")
        self._slots = threading.BoundedSemaphore(workers)
        self._breakers: dict[int, CircuitBreaker] = {}
        self._lock = threading.Lock()

    def breaker(self, p: Any) -> CircuitBreaker:
        """The breaker of one configured provider (primary and fallback have their own, even of one vendor)."""
        with self._lock:
            if id(p) not in self._breakers:
                self._breakers[id(p)] = CircuitBreaker(self.cooldown, clock=self._clock)
            return self._breakers[id(p)]

    def _admit(self, p: Any) -> CircuitBreaker:
        br = self.breaker(p)
        if not br.allow():
            raise ProviderError(CIRCUIT_OPEN, f"{p.provider} failed recently; skipped for {self.cooldown:g}s")
        return br

    def generate(self, p: Any, record: DecisionRecord) -> Completion:
        """``p.generate(record)`` on the pool, within the deadline and the size cap; raises :class:`ProviderError`."""
        br = self._admit(p)
        if not self._slots.acquire(blocking=False):
            raise ProviderError(BUSY, f"all {self.workers} explanation workers are busy")
        try:
            future = self._pool.submit(p.generate, record)
        except RuntimeError:
            self._slots.release()
            raise
        future.add_done_callback(lambda _: self._slots.release())
        try:
            c: Completion = future.result(timeout=self.deadline)
        except FutureTimeout:
            br.record_failure()
            raise ProviderError(TIMEOUT, f"no complete answer within {self.deadline:g}s") from None
        except Exception:
            br.record_failure()
            raise
        if len(c.text) > self.max_chars:
            br.record_failure()
            raise ProviderError(BAD_RESPONSE, f"{TOO_LARGE}: answer of {len(c.text)} characters (cap "
                                              f"{self.max_chars})")
        br.record_success()
        return c

    def stream(self, p: Any, record: DecisionRecord) -> ProviderStream:
        """``p.stream(record)`` cut at the deadline or the size cap (checked as each chunk arrives)."""
        br = self._admit(p)
        started = self._clock()
        inner = p.stream(record)

        def chunks() -> Iterator[str]:
            size = 0
            try:
                for chunk in inner:
                    size += len(chunk)
                    if self._clock() - started > self.deadline:
                        raise ProviderError(TIMEOUT, f"the stream ran past the {self.deadline:g}s deadline")
                    if size > self.max_chars:
                        raise ProviderError(BAD_RESPONSE, f"{TOO_LARGE}: the stream passed {self.max_chars} characters")
                    yield chunk
            except Exception:
                br.record_failure()
                inner.close()
                raise
            br.record_success()

        guarded = ProviderStream(chunks(), lambda text: _finish(inner, text))
        guarded.close = inner.close  # type: ignore[method-assign]
        return guarded


def _finish(inner: ProviderStream, text: str) -> Completion:
    c = inner.completion
    if c is None:
        raise ProviderError(BAD_RESPONSE, "the stream ended without an answer")
    return c
