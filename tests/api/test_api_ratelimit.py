"""Per-client rate limits are exact, in-process and in Redis, and survive Redis being down."""

from __future__ import annotations

import logging

import pytest
from api_helpers import FakeTime, assert_problem, make_api, with_api

from backend.api import deps as D
from backend.platform.adapters.ratelimit_memory import MemoryLimiter
from backend.platform.adapters.ratelimit_redis import KEY_PREFIX, RedisLimiter

MISSING = "/v1/decisions/00000000-0000-0000-0000-000000000000"
LIMIT = 5


def _exact(a, limit: int, retry_after: str) -> None:
    h = a.auth("olivia")
    for _ in range(limit - 1):  # the first authenticated request below is number 1 of the window
        assert a.client.get(MISSING, headers=h).status_code == 404
    assert a.client.get(MISSING, headers=h).status_code == 404  # request N: allowed
    res = a.client.get(MISSING, headers=h)  # request N+1
    body = assert_problem(res, 429)
    assert res.headers["retry-after"] == retry_after
    assert body["detail"] == D.RATE_LIMITED.format(limit=limit, seconds=int(retry_after))
    assert a.client.get(MISSING, headers=a.auth("maria")).status_code == 404  # other callers are not affected


@pytest.fixture
def limited(sqlite_services):
    def make(limiter, **api):
        return make_api(with_api(sqlite_services, rate_limit_per_minute=LIMIT, **api), limiter=limiter)

    return make


def test_in_process_limit_is_exact(limited):
    t = FakeTime(1_000_040.0)  # 20 s into a minute: 40 s left
    for a in limited(MemoryLimiter(clock=t)):
        _exact(a, LIMIT, "40")
        t.t += 40  # next window
        assert a.client.get(MISSING, headers=a.auth("olivia")).status_code == 404


def test_redis_limit_is_exact_and_shared_between_workers(limited, redis_url):
    import redis

    url = redis_url
    client = redis.Redis.from_url(url)
    slot = 33_334
    t = FakeTime(slot * 60 + 35.5)  # 35.5 s into a minute: 25 s left (rounded up)
    limiter = RedisLimiter(url, clock=t, socket_timeout=0.5)
    try:
        for a in limited(limiter):
            _exact(a, LIMIT, "25")
            sub = f"user:{a.users['olivia'].id}"
            assert int(client.get(f"{KEY_PREFIX}sub:{sub}:{slot}")) == LIMIT + 1
            other_worker = RedisLimiter(url, clock=t, socket_timeout=0.5)
            assert not other_worker.hit(f"sub:{sub}", LIMIT).allowed  # the count is shared
            other_worker.close()
            assert client.ttl(f"{KEY_PREFIX}sub:{sub}:{slot}") > 0
    finally:
        for k in client.scan_iter(match=f"{KEY_PREFIX}*"):
            client.delete(k)
        limiter.close()
        client.close()


def test_redis_down_falls_back_to_in_process_and_says_so(limited, caplog):
    t = FakeTime()
    limiter = RedisLimiter("redis://127.0.0.1:1/0", clock=t, socket_timeout=0.05, failure_cooldown=60)
    caplog.set_level(logging.WARNING, logger="creditrisk.api")
    for a in limited(limiter):
        _exact(a, LIMIT, "40")
        ready = a.client.get("/health/ready").json()
        assert ready["checks"]["rate_limiter"]["backend"].endswith("(unavailable: counting in-process)")
    warnings = [r for r in caplog.records if "rate limiter: Redis" in r.getMessage()]
    assert len(warnings) == 1  # logged once, not per request


def test_token_endpoint_is_limited_per_address(sqlite_services):
    for a in make_api(with_api(sqlite_services, token_rate_limit_per_minute=3)):
        form = {"grant_type": "password", "username": "olivia", "password": "nope"}
        assert [a.client.post("/oauth/token", data=form).status_code for _ in range(4)] == [400, 400, 400, 429]
        assert a.client.post("/oauth/token", data=form).headers["retry-after"] == "40"


def test_a_batch_counts_as_its_applications(limited, sample):
    t = FakeTime()
    for a in limited(MemoryLimiter(clock=t)):  # 5 per minute
        h = a.auth("maria")
        ok = a.client.post("/v1/score", json={"applications": sample[:3]}, headers=h)
        assert ok.status_code == 200, ok.text  # 3 of 5
        over = a.client.post("/v1/score", json={"applications": sample[3:6]}, headers=h)  # 6 of 5
        assert_problem(over, 429)
        assert a.client.get(MISSING, headers=h).status_code == 429  # the window is spent
        t.t += 60
        assert a.client.post("/v1/score", json={"applications": sample[:5]}, headers=h).status_code == 200
        assert_problem(a.client.post("/v1/score", json={"applications": sample[:6]}, headers=a.auth("olivia")), 429)


def test_redis_restarts_never_let_one_process_exceed_the_limit_in_a_window():
    """A throw-away redis-server, stopped and restarted (losing its counters) in the middle of a window:
    this process lets through at most the configured limit, as the README says."""
    from throwaway_servers import ThrowawayRedis

    box = ThrowawayRedis()
    box.start()
    t = FakeTime(60 * 50_000 + 1.0)  # the start of a window
    limiter = RedisLimiter(box.url, clock=t, socket_timeout=0.2, failure_cooldown=0)
    limit, allowed = 20, 0
    try:
        for step in range(90):
            if step == 10:
                box.stop()  # Redis goes away
            if step == 30:
                box.start()  # and comes back empty
            if step == 50:
                box.stop()
            if step == 70:
                box.start()
            allowed += limiter.hit("sub:client:crc_x", limit).allowed
        assert allowed == limit  # 90 requests, two outages, one empty restart: exactly the limit went through
        t.t += 60  # the next window: allowed again, counted in Redis
        assert limiter.hit("sub:client:crc_x", limit).allowed and not limiter.degraded
    finally:
        limiter.close()
        box.stop()


@pytest.mark.parametrize("cost", [1, 5, 20])
def test_memory_and_redis_limiters_charge_a_cost(redis_url, cost):
    import redis

    t = FakeTime(60 * 60_000 + 5.0)
    key = f"cost-test-{cost}"
    limiter = RedisLimiter(redis_url, clock=t, socket_timeout=0.5)
    client = redis.Redis.from_url(redis_url)
    try:
        for lim in (MemoryLimiter(clock=t), limiter):
            assert lim.hit(key, 20, cost).allowed
            second = lim.hit(key, 20, cost)
            assert second.allowed == (2 * cost <= 20)
            assert lim.hit(key, 20, 0).remaining == max(20 - 2 * cost - 1, 0)  # a cost below 1 counts as 1
    finally:
        for k in client.scan_iter(match=f"{KEY_PREFIX}{key}*"):
            client.delete(k)
        limiter.close()
        client.close()
