"""One circuit breaker for every adapter that must not wait on a dependency that is down.

States (``state``):

* ``closed``: every call goes through.
* ``open``: a call failed; for ``cooldown`` seconds :meth:`CircuitBreaker.allow` says no (each refusal
  is counted in ``skipped``) and the caller answers without the dependency (a cache miss, an
  in-process count, ...).
* ``half_open``: the cooldown is over. The next :meth:`allow` lets exactly one caller probe, and
  re-arms the cooldown so the others keep skipping while it does; :meth:`record_success` closes the
  circuit, :meth:`record_failure` keeps it open for another cooldown.

:meth:`record_failure` and :meth:`record_success` return whether the state changed (closed -> open,
open -> closed), so a caller logs an outage once and its end once, never per call. Thread-safe.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
ERR_BAD_COOLDOWN = "the circuit breaker's cooldown must be a finite number of seconds >= 0 (got {value!r})"


class CircuitBreaker:
    """``cooldown``: seconds to skip the dependency after a failure; ``clock``: monotonic seconds."""

    def __init__(self, cooldown: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if isinstance(cooldown, bool) or not isinstance(cooldown, int | float) or not math.isfinite(cooldown) \
                or cooldown < 0:
            raise ValueError(ERR_BAD_COOLDOWN.format(value=cooldown))
        self.cooldown = float(cooldown)
        self._clock = clock
        self._lock = threading.Lock()
        self._open_until: float | None = None  # None: closed
        self.skipped = 0  # calls refused while open

    def allow(self) -> bool:
        """May this call use the dependency? While open: no (counted); once the cooldown is over, yes
        for this one caller (the probe), and the cooldown starts again for everybody else."""
        with self._lock:
            if self._open_until is None:
                return True
            now = self._clock()
            if now < self._open_until:
                self.skipped += 1
                return False
            self._open_until = now + self.cooldown
            return True

    def record_success(self) -> bool:
        """The dependency answered: close. True when the circuit was open (it just recovered)."""
        if self._open_until is None:  # the hot path: no lock when nothing changes
            return False
        with self._lock:
            was_open, self._open_until = self._open_until is not None, None
        return was_open

    def record_failure(self) -> bool:
        """The dependency failed: open for ``cooldown`` seconds from now. True when it was closed."""
        with self._lock:
            was_closed = self._open_until is None
            self._open_until = self._clock() + self.cooldown
        return was_closed

    @property
    def state(self) -> str:
        with self._lock:
            if self._open_until is None:
                return CLOSED
            return OPEN if self._clock() < self._open_until else HALF_OPEN

    @property
    def is_open(self) -> bool:
        """Calls are being skipped right now."""
        return self.state == OPEN

    @property
    def tripped(self) -> bool:
        """Not closed: the last call failed and none has succeeded since (open or half-open)."""
        with self._lock:
            return self._open_until is not None

    def __repr__(self) -> str:
        return f"CircuitBreaker(cooldown={self.cooldown:g}, state={self.state!r}, skipped={self.skipped})"
