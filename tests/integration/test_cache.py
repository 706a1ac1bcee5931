"""Cache adapters against the real backends: the in-process cache and the Redis on this machine.

Contract tests run for both backends (each Redis test uses its own namespace and removes it).
Failure modes use loopback servers: a free port with nothing listening (Redis down), a server that
accepts and never answers (Redis hung) and a proxy that can cut the real Redis off (outage and
recovery). Timings are bounded only loosely (< 2 s proves "not a minute"); speed is in bench/.
"""

from __future__ import annotations

import functools
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from backend.container.adapters import ERR_BAD_CACHE_URL, build_cache
from backend.platform.adapters.cache_memory import ERR_BAD_TTL, ERR_BAD_VALUE, MemoryCache
from backend.platform.adapters.cache_redis import ERR_BAD_NAMESPACE, RedisCache
from backend.platform.ports import Cache

REDIS_URL = os.environ.get("CREDITRISK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
NOT_A_MINUTE = 2.0  # seconds; generous bound for "fails fast", not a performance target


# -- helpers -------------------------------------------------------------------------------


@functools.cache
def _redis_problem() -> str | None:
    """``None`` if the test Redis answers PING, else why not (checked once per session)."""
    try:
        import redis
    except ImportError:
        return "the 'redis' package is not installed"
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=1.0, socket_connect_timeout=1.0)
    try:
        client.ping()
    except Exception as exc:
        return f"Redis not reachable at {REDIS_URL}: {type(exc).__name__}: {exc}"
    finally:
        client.close()
    return None


def require_redis() -> None:
    """Skip the test if Redis is unavailable; under ``CI=true`` fail it instead."""
    problem = _redis_problem()
    if problem is None:
        return
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"{problem} (CI=true: a missing Redis is a failure, not a skip)")
    pytest.skip(problem)


def raw_redis() -> Any:
    """A plain redis-py client on the test server, for looking behind the adapter."""
    import redis

    return redis.Redis.from_url(REDIS_URL, socket_timeout=2.0, socket_connect_timeout=2.0)


class FakeClock:
    """Monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def free_loopback_port() -> int:
    """A loopback port with nothing listening on it (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], bool], timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


class _LoopbackServer:
    """A listening socket on 127.0.0.1 whose accept loop hands each connection to ``on_connect``."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0), backlog=128)
        self._sock.settimeout(0.05)
        self.port = int(self._sock.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def on_connect(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.on_connect(conn)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()


class HungServer(_LoopbackServer):
    """Accepts TCP connections on loopback, counts them and never sends a byte back."""

    def __init__(self) -> None:
        self.connections = 0
        self._held: list[socket.socket] = []
        super().__init__()

    def on_connect(self, conn: socket.socket) -> None:
        self._held.append(conn)
        self.connections += 1

    def close(self) -> None:
        super().close()
        for conn in self._held:
            conn.close()


class RedisProxy(_LoopbackServer):
    """Loopback TCP proxy to the real Redis that can be taken down (cutting live connections)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.up = True
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        super().__init__()

    def on_connect(self, client: socket.socket) -> None:
        if not self.up:
            client.close()
            return
        upstream = socket.create_connection(self.target, timeout=2)
        with self._lock:
            self._conns += [client, upstream]
        for src, dst in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def down(self) -> None:
        """Refuse new connections and cut the open ones (as a Redis restart would)."""
        self.up = False
        with self._lock:
            for s in self._conns:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            self._conns.clear()

    def close(self) -> None:
        self.down()
        super().close()


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        require_redis()
    return str(request.param)


@pytest.fixture
def namespace() -> str:
    return f"creditrisk-test:{uuid.uuid4().hex}:"


@pytest.fixture
def make_cache(backend: str, clock: FakeClock, namespace: str) -> Iterator[Callable[..., Any]]:
    """Factory for caches of the parametrized backend; Redis ones share this test's namespace."""
    made: list[Any] = []

    def make(**opts: Any) -> Any:
        if backend == "memory":
            cache: Any = MemoryCache(clock=clock, **opts)
        else:
            opts.pop("max_entries", None)
            # Generous timeouts: correctness tests must not flake on a loaded machine.
            opts = {"socket_timeout": 1.0, "connect_timeout": 1.0, **opts}
            cache = RedisCache(REDIS_URL, namespace=namespace, clock=clock, **opts)
        made.append(cache)
        return cache

    yield make
    for cache in made:
        if isinstance(cache, RedisCache):
            cache.delete_prefix("")
        cache.close()
    if backend == "redis":
        raw = raw_redis()
        leftovers = list(raw.scan_iter(match=namespace + "*"))
        if leftovers:  # clean up even when the assertion below fails
            raw.delete(*leftovers)
        raw.close()
        assert leftovers == [], "delete_prefix('') must remove the whole namespace"


@pytest.fixture
def cache(make_cache: Callable[..., Any]) -> Any:
    return make_cache(max_entries=5000)


def let_expire(cache: Any, clock: FakeClock, seconds: float) -> None:
    """Move past an expiry: the fake clock for memory, real time for Redis."""
    if isinstance(cache, MemoryCache):
        clock.advance(seconds)
    else:
        time.sleep(seconds)


@pytest.fixture
def hung_server() -> Iterator[HungServer]:
    server = HungServer()
    yield server
    server.close()


# -- contract, both backends ---------------------------------------------------------------


def test_implements_the_port(cache: Any, backend: str) -> None:
    assert isinstance(cache, Cache)
    assert cache.backend == backend


def test_get_set_overwrite_delete(cache: Any) -> None:
    assert cache.get("k") is None
    assert cache.set("k", b"v1") is True
    assert cache.get("k") == b"v1"
    assert cache.set("k", b"v2") is True
    assert cache.get("k") == b"v2"
    assert cache.delete("k") is True
    assert cache.get("k") is None
    assert cache.delete("k") is False


def test_ttl_expiry(cache: Any, clock: FakeClock) -> None:
    cache.set("short", b"x", ttl_seconds=0.2)
    cache.set("long", b"y", ttl_seconds=60)
    assert cache.get("short") == b"x"
    let_expire(cache, clock, 0.3)
    assert wait_until(lambda: cache.get("short") is None)
    assert cache.get("long") == b"y"


def test_default_ttl_used_when_none_given(make_cache: Callable[..., Any], clock: FakeClock) -> None:
    cache = make_cache(default_ttl=0.2)
    cache.set("k", b"v")
    cache.set("explicit", b"v", ttl_seconds=60)
    let_expire(cache, clock, 0.3)
    assert wait_until(lambda: cache.get("k") is None)
    assert cache.get("explicit") == b"v"


def test_default_ttl_none_means_no_expiry(make_cache: Callable[..., Any], clock: FakeClock) -> None:
    cache = make_cache(default_ttl=None)
    cache.set("k", b"v")
    if isinstance(cache, RedisCache):
        raw = raw_redis()
        assert raw.pttl(cache.namespace + "k") == -1  # stored without expiry
        raw.close()
    else:
        clock.advance(10**7)
    assert cache.get("k") == b"v"


@pytest.mark.parametrize("ttl", [0, -1, float("nan"), float("inf"), "10"])
def test_bad_ttl_is_a_caller_error(cache: Any, ttl: Any) -> None:
    with pytest.raises(ValueError, match=re.escape(ERR_BAD_TTL)):
        cache.set("k", b"v", ttl_seconds=ttl)
    assert cache.get("k") is None


@pytest.mark.parametrize("value", ["text", 1, None, [b"x"]])
def test_non_bytes_value_is_a_caller_error(cache: Any, value: Any) -> None:
    with pytest.raises(TypeError, match=re.escape(ERR_BAD_VALUE)):
        cache.set("k", value)


@pytest.mark.parametrize(
    "value",
    [b"", b"\x00", bytes(range(256)), b"\xff\xfe\r\n*3\r\n$-1\r\n", os.urandom(1 << 20)],
    ids=["empty", "nul", "all-bytes", "resp-lookalike", "1MiB-random"],
)
def test_binary_values_round_trip(cache: Any, value: bytes) -> None:
    assert cache.set("bin", value) is True
    got = cache.get("bin")
    assert got is not None, "an empty value must not look like a miss"
    assert got == value and type(got) is bytes


def test_bytearray_and_memoryview_are_copied(cache: Any) -> None:
    buf = bytearray(b"abc")
    cache.set("ba", buf)
    cache.set("mv", memoryview(b"xyz"))
    buf[0:1] = b"Z"
    assert cache.get("ba") == b"abc"
    assert cache.get("mv") == b"xyz"


@pytest.mark.parametrize("key", ["", "ключ 🔑", "a b\tc", "with:colons:", "glob*?[x]\\y", "x" * 1000])
def test_odd_keys(cache: Any, key: str) -> None:
    assert cache.set(key, b"v") is True
    assert cache.get(key) == b"v"
    assert cache.delete(key) is True


def test_delete_prefix(cache: Any) -> None:
    for key in ["user:1", "user:2", "userx", "order:1"]:
        cache.set(key, key.encode())
    assert cache.delete_prefix("user:") == 2
    assert cache.get("user:1") is None and cache.get("user:2") is None
    assert cache.get("userx") == b"userx" and cache.get("order:1") == b"order:1"
    assert cache.delete_prefix("nothing-here") == 0


@pytest.mark.parametrize(
    ("prefix", "removed"),
    [("a*", {"a*1"}), ("a?", {"a?c"}), ("a[b]", {"a[b]x"}), ("a\\", {"a\\z"}), ("a", None)],
)
def test_delete_prefix_treats_glob_characters_literally(
    cache: Any, prefix: str, removed: set[str] | None
) -> None:
    keys = {"a*1", "ab", "a?c", "aXc", "a[b]x", "abx", "a\\z", "b"}
    for key in keys:
        cache.set(key, b"v")
    expected = removed if removed is not None else {k for k in keys if k.startswith(prefix)}
    assert cache.delete_prefix(prefix) == len(expected)
    assert {k for k in keys if cache.get(k) is not None} == keys - expected


def test_delete_prefix_many_keys(cache: Any) -> None:
    for i in range(1234):  # more than one SCAN/UNLINK batch
        cache.set(f"bulk:{i}", b"v")
    cache.set("keep", b"v")
    assert cache.delete_prefix("bulk:") == 1234
    assert cache.get("bulk:0") is None and cache.get("keep") == b"v"


def test_delete_prefix_empty_clears_the_cache(cache: Any) -> None:
    cache.set("a", b"1")
    cache.set("b", b"2")
    assert cache.delete_prefix("") == 2
    assert cache.get("a") is None and cache.get("b") is None


def test_stats(cache: Any) -> None:
    cache.set("k", b"v")
    cache.get("k")
    cache.get("k")
    cache.get("missing")
    stats = cache.stats()
    assert {k: stats[k] for k in ("hits", "misses", "sets", "errors")} == {
        "hits": 2,
        "misses": 1,
        "sets": 1,
        "errors": 0,
    }
    assert {"evictions", "size", "backend"} <= set(stats)
    if isinstance(cache, RedisCache):
        assert stats["circuit_open"] is False and stats["skipped"] == 0
    else:
        assert stats["size"] == 1


def test_health_ok(cache: Any, backend: str) -> None:
    health = cache.health()
    assert health["ok"] is True
    assert health["backend"] == backend
    assert isinstance(health["detail"], str) and health["detail"]
    assert health["latency_ms"] >= 0


def test_concurrent_threads(cache: Any) -> None:
    errors: list[BaseException] = []
    wrong: list[tuple[str, bytes | None]] = []

    def worker(n: int) -> None:
        try:
            for i in range(200):
                key = f"t{n}:{i % 20}"
                cache.set(key, key.encode())
                got = cache.get(key)
                if got not in (None, key.encode()):
                    wrong.append((key, got))
                if i % 50 == 0:
                    cache.delete_prefix(f"t{n}:1")
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and wrong == []
    assert cache.stats()["errors"] == 0


# -- memory only ---------------------------------------------------------------------------


def test_memory_lru_eviction(clock: FakeClock) -> None:
    cache = MemoryCache(max_entries=3, clock=clock)
    for key in "abc":
        cache.set(key, key.encode())
    assert cache.get("a") == b"a"  # a is now most recently used; b is the oldest
    cache.set("d", b"d")
    assert cache.get("b") is None
    assert [cache.get(k) for k in "acd"] == [b"a", b"c", b"d"]
    cache.set("d", b"d2")  # overwriting does not evict
    stats = cache.stats()
    assert stats["evictions"] == 1 and stats["size"] == 3


def test_memory_size_stays_bounded_under_threads(clock: FakeClock) -> None:
    cache = MemoryCache(max_entries=50, clock=clock)

    def worker(n: int) -> None:
        for i in range(500):
            cache.set(f"{n}:{i}", b"v")
            cache.get(f"{n}:{i - 3}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = cache.stats()
    assert stats["size"] == 50
    assert stats["sets"] == 4000 and stats["evictions"] == 4000 - 50


def test_memory_stats_size_excludes_expired(clock: FakeClock) -> None:
    cache = MemoryCache(clock=clock)
    cache.set("old", b"v", ttl_seconds=1)
    cache.set("new", b"v", ttl_seconds=100)
    clock.advance(2)
    assert cache.stats()["size"] == 1


@pytest.mark.parametrize(
    "opts", [{"max_entries": 0}, {"max_entries": 1.5}, {"default_ttl": 0}, {"default_ttl": -5}]
)
def test_memory_rejects_bad_settings(opts: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        MemoryCache(**opts)


# -- Redis only, real server ---------------------------------------------------------------


@pytest.fixture
def redis_cache(namespace: str) -> Iterator[RedisCache]:
    require_redis()
    cache = RedisCache(REDIS_URL, namespace=namespace)  # the production defaults (50 ms timeouts)
    yield cache
    cache.delete_prefix("")
    cache.close()


def test_redis_keys_are_namespaced_with_px_ttl(redis_cache: RedisCache) -> None:
    redis_cache.set("k", b"v", ttl_seconds=12.3456)
    raw = raw_redis()
    try:
        assert raw.get(redis_cache.namespace + "k") == b"v"
        assert raw.get("k") is None
        assert 12_000 < raw.pttl(redis_cache.namespace + "k") <= 12_346
    finally:
        raw.close()


def test_redis_namespaces_are_isolated(redis_cache: RedisCache) -> None:
    other = RedisCache(REDIS_URL, namespace=f"creditrisk-test:{uuid.uuid4().hex}:")
    try:
        redis_cache.set("shared", b"mine")
        other.set("shared", b"theirs")
        assert redis_cache.get("shared") == b"mine"
        assert redis_cache.delete_prefix("") == 1
        assert other.get("shared") == b"theirs"
    finally:
        other.delete_prefix("")
        other.close()


def test_redis_command_error_is_a_miss_without_opening_the_circuit(redis_cache: RedisCache) -> None:
    raw = raw_redis()
    try:
        raw.rpush(redis_cache.namespace + "a-list", b"x")  # GET on a list -> WRONGTYPE
        assert redis_cache.get("a-list") is None
    finally:
        raw.close()
    stats = redis_cache.stats()
    assert stats["errors"] == 1 and stats["circuit_open"] is False
    assert redis_cache.set("a-list", b"now a string") is True
    assert redis_cache.get("a-list") == b"now a string"


def test_redis_rejects_empty_namespace() -> None:
    with pytest.raises(ValueError, match=re.escape(ERR_BAD_NAMESPACE)):
        RedisCache(REDIS_URL, namespace="")


def test_redis_outage_and_recovery_through_proxy(namespace: str, clock: FakeClock) -> None:
    """Redis goes away under a pooled connection, the circuit opens, then Redis comes back."""
    require_redis()
    from urllib.parse import urlsplit

    parts = urlsplit(REDIS_URL)
    proxy = RedisProxy((parts.hostname or "127.0.0.1", parts.port or 6379))
    cache = RedisCache(proxy.url, namespace=namespace, failure_cooldown=5, clock=clock)
    try:
        assert cache.set("k", b"v") is True and cache.get("k") == b"v"
        proxy.down()
        assert cache.get("k") is None
        assert cache.stats()["circuit_open"] is True
        assert cache.set("k2", b"v") is False  # skipped: circuit open
        proxy.up = True
        assert cache.get("k") is None  # still cooling down: not even tried
        clock.advance(5.1)
        assert cache.get("k") == b"v"  # half-open probe succeeds, circuit closes
        stats = cache.stats()
        assert stats["circuit_open"] is False and stats["skipped"] == 2
        assert cache.health()["ok"] is True
    finally:
        proxy.up = True
        cache.delete_prefix("")
        cache.close()
        proxy.close()


# -- failure modes: Redis unreachable or hung ----------------------------------------------


def _all_ops_return_contract_values(cache: RedisCache) -> float:
    """Run every operation once, assert the contract's failure values, return elapsed seconds."""
    start = time.monotonic()
    assert cache.get("k") is None
    assert cache.set("k", b"v") is False
    assert cache.delete("k") is False
    assert cache.delete_prefix("") == 0
    return time.monotonic() - start


def test_unreachable_redis_fails_fast_with_contract_values() -> None:
    cache = RedisCache(f"redis://127.0.0.1:{free_loopback_port()}/0", failure_cooldown=0)
    try:
        assert _all_ops_return_contract_values(cache) < NOT_A_MINUTE
        stats = cache.stats()
        assert stats["errors"] == 4 and stats["misses"] == 1 and stats["sets"] == 0
    finally:
        cache.close()


def test_hung_redis_fails_fast_with_contract_values(hung_server: HungServer) -> None:
    cache = RedisCache(hung_server.url, failure_cooldown=0)
    try:
        assert _all_ops_return_contract_values(cache) < NOT_A_MINUTE
        assert wait_until(lambda: hung_server.connections >= 4), "each call really went to the server"
        assert cache.stats()["errors"] == 4
    finally:
        cache.close()


def test_circuit_breaker_skips_redis_during_cooldown(hung_server: HungServer, clock: FakeClock) -> None:
    cache = RedisCache(hung_server.url, failure_cooldown=30, clock=clock)
    try:
        assert cache.get("k") is None
        assert wait_until(lambda: hung_server.connections == 1)
        assert cache.stats()["circuit_open"] is True
        start = time.monotonic()
        for _ in range(25):
            assert _all_ops_return_contract_values(cache) >= 0
        assert time.monotonic() - start < NOT_A_MINUTE
        time.sleep(0.2)  # give the server a chance to see any (wrong) extra connection
        assert hung_server.connections == 1, "no network calls while the circuit is open"
        stats = cache.stats()
        assert stats["skipped"] == 100 and stats["errors"] == 1

        clock.advance(31)  # cooldown over: concurrent callers, exactly one probes
        barrier = threading.Barrier(10)
        results: list[bytes | None] = []

        def caller() -> None:
            barrier.wait()
            results.append(cache.get("k"))

        threads = [threading.Thread(target=caller) for _ in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == [None] * 10
        assert wait_until(lambda: hung_server.connections == 2)
        time.sleep(0.2)
        assert hung_server.connections == 2, "only one half-open probe after the cooldown"
        assert cache.stats()["circuit_open"] is True  # the probe failed: open again
    finally:
        cache.close()


def test_health_reports_failure_and_never_raises(hung_server: HungServer) -> None:
    secret_url = f"redis://:s3cret-pw@127.0.0.1:{free_loopback_port()}/0"
    for url in (secret_url, hung_server.url, "unix:///nonexistent/redis.sock"):
        cache = RedisCache(url)
        try:
            start = time.monotonic()
            health = cache.health()
            assert time.monotonic() - start < NOT_A_MINUTE
            assert health["ok"] is False and health["backend"] == "redis"
            assert "Error" in health["detail"]
            assert "s3cret-pw" not in health["detail"]
            assert isinstance(health["latency_ms"], float)
            assert cache.stats()["circuit_open"] is True
        finally:
            cache.close()


def test_health_never_raises_even_on_unexpected_errors() -> None:
    class Exploding:
        def ping(self) -> None:
            raise RuntimeError("boom")

        def close(self) -> None:
            raise RuntimeError("boom")

    cache = RedisCache("redis://127.0.0.1:1/0", client=Exploding())
    health = cache.health()
    assert health["ok"] is False and "RuntimeError: boom" in health["detail"]
    cache.close()  # best effort, does not raise


# -- factory -------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [None, "", "  ", "memory://", "MEMORY://"])
def test_factory_memory(url: str | None) -> None:
    cache = build_cache(url, max_entries=7, namespace="ignored:", default_ttl=None)
    assert isinstance(cache, MemoryCache) and cache.max_entries == 7 and cache.default_ttl is None


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0",
        "REDIS://localhost",
        "rediss://cache.example:6380/1",
        "unix:///tmp/r.sock?db=2",
    ],
)
def test_factory_redis_does_not_connect(url: str) -> None:
    cache = build_cache(url, namespace="ns:", max_entries=7, failure_cooldown=1)
    assert isinstance(cache, RedisCache) and cache.namespace == "ns:" and cache.backend == "redis"
    cache.close()


@pytest.mark.parametrize(
    "url", ["memcached://h:11211", "http://localhost:6379", "localhost:6379", "postgresql://u:pw-123@h/db"]
)
def test_factory_rejects_other_schemes(url: str) -> None:
    with pytest.raises(ValueError) as info:
        build_cache(url)
    message = str(info.value)
    assert "CREDITRISK_CACHE__URL" in message and "redis://" in message and "memory://" in message
    assert "pw-123" not in message
    assert message.startswith(ERR_BAD_CACHE_URL.split("{")[0])


def test_factory_rejects_unknown_options() -> None:
    with pytest.raises(TypeError, match="bogus"):
        build_cache(None, bogus=1)  # type: ignore[call-arg]
