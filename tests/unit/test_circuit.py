"""The one circuit breaker (backend/platform/circuit.py): its states, the single half-open probe, what
it reports for logging, its refusals of bad cooldowns, and the probe under a crowd of threads."""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable

import pytest

from backend.platform.circuit import CLOSED, ERR_BAD_COOLDOWN, HALF_OPEN, OPEN, CircuitBreaker


class FakeClock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_closed_lets_every_call_through(clock: FakeClock) -> None:
    b = CircuitBreaker(5, clock=clock)
    assert b.state == CLOSED and not b.is_open and not b.tripped
    assert all(b.allow() for _ in range(1000))
    assert b.skipped == 0
    assert b.record_success() is False  # nothing changed: nothing to log


def test_a_failure_opens_for_the_cooldown_and_counts_what_it_skips(clock: FakeClock) -> None:
    b = CircuitBreaker(5, clock=clock)
    assert b.record_failure() is True  # closed -> open: the caller logs the outage once
    assert b.state == OPEN and b.is_open and b.tripped
    assert [b.allow() for _ in range(7)] == [False] * 7
    assert b.skipped == 7
    clock.now = 4.999_999
    assert b.allow() is False and b.state == OPEN
    assert b.record_failure() is False  # already open: nothing new to log
    assert b.skipped == 8


def test_after_the_cooldown_exactly_one_caller_probes(clock: FakeClock) -> None:
    b = CircuitBreaker(5, clock=clock)
    b.record_failure()
    clock.now = 5.0  # the cooldown is over (the deadline itself counts as over)
    assert b.state == HALF_OPEN and not b.is_open and b.tripped
    assert b.allow() is True  # the probe
    assert b.state == OPEN  # re-armed: the others keep skipping while it runs
    assert [b.allow() for _ in range(3)] == [False] * 3
    assert b.skipped == 3


def test_a_successful_probe_closes(clock: FakeClock) -> None:
    b = CircuitBreaker(5, clock=clock)
    b.record_failure()
    clock.now = 6
    assert b.allow()
    assert b.record_success() is True  # open -> closed: the caller logs the recovery once
    assert b.state == CLOSED and not b.tripped
    assert b.record_success() is False
    assert all(b.allow() for _ in range(10))


def test_a_failed_probe_opens_for_a_new_cooldown_from_the_failure(clock: FakeClock) -> None:
    b = CircuitBreaker(5, clock=clock)
    b.record_failure()
    clock.now = 6
    assert b.allow()
    clock.now = 6.5  # the probe took half a second to fail
    assert b.record_failure() is False
    clock.now = 11.4
    assert b.allow() is False
    clock.now = 11.5
    assert b.state == HALF_OPEN and b.allow() is True


def test_a_success_while_open_closes_at_once(clock: FakeClock) -> None:
    """An answer that arrives during the cooldown (e.g. a health check that bypasses the breaker)."""
    b = CircuitBreaker(60, clock=clock)
    b.record_failure()
    assert b.record_success() is True
    assert b.state == CLOSED and b.allow()


def test_zero_cooldown_probes_on_every_call_after_a_failure(clock: FakeClock) -> None:
    b = CircuitBreaker(0, clock=clock)
    assert b.record_failure() is True
    assert b.state == HALF_OPEN and b.tripped
    assert b.allow() is True and b.allow() is True
    assert b.skipped == 0


def test_a_clock_at_zero_is_a_real_time(clock: FakeClock) -> None:
    """A deadline of 0.0 is a time like any other, not "closed" (the old adapters' sentinel)."""
    b = CircuitBreaker(0, clock=clock)
    clock.now = 0.0
    b.record_failure()
    assert b.tripped and b.state == HALF_OPEN


@pytest.mark.parametrize("bad", [-1, -0.001, math.nan, math.inf, -math.inf, True, "5", None])
def test_bad_cooldowns_are_refused_with_the_value(bad: object) -> None:
    with pytest.raises(ValueError, match=re.escape(ERR_BAD_COOLDOWN.format(value=bad))):
        CircuitBreaker(bad)  # type: ignore[arg-type]


def test_the_default_clock_is_monotonic_seconds() -> None:
    b = CircuitBreaker(3600)
    b.record_failure()
    assert b.is_open and not b.allow()


def _at_once(n: int, call: Callable[[], bool]) -> list[bool]:
    """``call()`` from ``n`` threads released together; their answers."""
    start = threading.Barrier(n)
    answers: list[bool] = []
    lock = threading.Lock()

    def run() -> None:
        start.wait()
        got = call()
        with lock:
            answers.append(got)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def test_one_probe_among_many_threads(clock: FakeClock) -> None:
    """Sixteen threads ask at the same moment once the cooldown is over: one probes, fifteen skip."""
    b = CircuitBreaker(5, clock=clock)
    b.record_failure()
    clock.now = 10
    assert sorted(_at_once(16, b.allow)) == [False] * 15 + [True]
    assert b.skipped == 15


def test_an_outage_seen_by_many_threads_is_reported_once(clock: FakeClock) -> None:
    b = CircuitBreaker(5, clock=clock)
    assert _at_once(32, b.record_failure).count(True) == 1  # whoever fails first reports it
    assert b.state == OPEN
    clock.now = 5
    assert _at_once(8, b.record_success).count(True) == 1  # and its end once


def test_repr_names_the_state(clock: FakeClock) -> None:
    b = CircuitBreaker(2.5, clock=clock)
    b.record_failure()
    b.allow()
    assert repr(b) == "CircuitBreaker(cooldown=2.5, state='open', skipped=1)"
