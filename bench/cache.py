"""Per-call latency of cache ``get``: in-process vs Redis, healthy, unreachable and hung.

Run: ``.venv/bin/python bench/cache.py [--n 20000] [--redis-url redis://127.0.0.1:6379/0]``

Every row is measured in this process; ratios are against the in-process ``MemoryCache`` get
(the baseline the Redis adapter would replace). "first call" rows build a fresh adapter per
sample, so each sample pays the failure once; "circuit open" rows are the calls after it.
``--redis-py-defaults`` adds one call through a client with redis-py's own defaults against the
hung server (blocks for its default socket timeout).
"""

from __future__ import annotations

import argparse
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable

from backend.platform.adapters.cache_memory import MemoryCache
from backend.platform.adapters.cache_redis import RedisCache
from backend.platform.adapters.cache_sealed import SealedCache


class HungServer:
    """Loopback TCP server that accepts connections and never answers."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=512)
        self.port = int(self.sock.getsockname()[1])
        self.held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def time_calls(fn: Callable[[], object], n: int) -> list[float]:
    """Seconds per call for ``n`` calls of ``fn``."""
    out = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - t0) / 1e9)
    return out


def time_first_calls(make: Callable[[], RedisCache], n: int) -> list[float]:
    """Seconds of the first ``get`` on ``n`` freshly built adapters."""
    out = []
    for _ in range(n):
        cache = make()
        t0 = time.perf_counter_ns()
        cache.get("k")
        out.append((time.perf_counter_ns() - t0) / 1e9)
        cache.close()
    return out


def pct(samples: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def fmt_us(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="calls per steady-state row")
    parser.add_argument("--first", type=int, default=20, help="fresh adapters per 'first call' row")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--redis-py-defaults", action="store_true")
    args = parser.parse_args()
    n, first = args.n, args.first
    # Each fresh adapter logs its outage once; 100+ of them would bury the table.
    logging.getLogger("backend.platform.adapters.cache_redis").setLevel(logging.ERROR)

    rows: list[tuple[str, list[float] | str]] = []
    memory = MemoryCache()
    memory.set("k", b"x" * 200)
    rows.append(("memory get (hit)", time_calls(lambda: memory.get("k"), n)))
    sealed = SealedCache(MemoryCache(), b"k" * 32)  # what the services use: every entry MAC-checked
    score = "score:creditrisk:v20260101-000000000-abcdef:compiled:0.5,0.7,25000,0.3:" + "f" * 64
    sealed.set(score, b"x" * 1500)  # about the size of a cached score
    memory.set(score, b"x" * 1500)
    rows.append(("memory get, 1.5 kB score", time_calls(lambda: memory.get(score), n)))
    rows.append(("sealed memory get (HMAC check)", time_calls(lambda: sealed.get(score), n)))

    real = RedisCache(args.redis_url, namespace=f"bench:{uuid.uuid4().hex}:")
    if real.health()["ok"] and real.set("k", b"x" * 200):
        rows.append(("redis get (hit, real server)", time_calls(lambda: real.get("k"), min(n, 5000))))
        sealed_real = SealedCache(real, b"k" * 32)
        sealed_real.set(score, b"x" * 1500)
        rows.append(("sealed redis get (1.5 kB score)", time_calls(lambda: sealed_real.get(score), min(n, 5000))))
        rows.append(("redis get (miss, real server)", time_calls(lambda: real.get("nope"), min(n, 5000))))
    else:
        rows.append(("redis get (real server)", f"skipped: {real.health()['detail']}"))
    real.delete_prefix("")
    real.close()

    dead_url = f"redis://127.0.0.1:{free_port()}/0"
    rows.append(("redis unreachable: first call", time_first_calls(lambda: RedisCache(dead_url), first * 5)))
    dead = RedisCache(dead_url)
    dead.get("k")
    rows.append(("redis unreachable: circuit open", time_calls(lambda: dead.get("k"), n)))
    dead_nb = RedisCache(dead_url, failure_cooldown=0)
    rows.append(("redis unreachable: no breaker", time_calls(lambda: dead_nb.get("k"), min(n, 1000))))

    hung = HungServer()
    hung_url = f"redis://127.0.0.1:{hung.port}/0"
    rows.append(("redis hung: first call", time_first_calls(lambda: RedisCache(hung_url), first)))
    stuck = RedisCache(hung_url)
    stuck.get("k")
    rows.append(("redis hung: circuit open", time_calls(lambda: stuck.get("k"), n)))
    stuck_nb = RedisCache(hung_url, failure_cooldown=0)
    rows.append(("redis hung: no breaker", time_calls(lambda: stuck_nb.get("k"), first)))
    if args.redis_py_defaults:
        import redis

        plain = redis.Redis.from_url(hung_url)

        def plain_get() -> None:
            try:
                plain.get("k")
            except redis.RedisError:
                pass

        rows.append(("redis hung: redis-py defaults", time_calls(plain_get, 1)))
    hung.close()

    base = pct(rows[0][1], 0.5) if isinstance(rows[0][1], list) else 1.0
    print(f"cache get latency, microseconds per call (p50/p99); ratio = p50 / memory p50 ({fmt_us(base)} us)")
    print(f"{'case':<34} {'calls':>6} {'p50 us':>12} {'p99 us':>12} {'ratio':>10}")
    print("-" * 78)
    for name, samples in rows:
        if isinstance(samples, str):
            print(f"{name:<34} {samples}")
            continue
        p50, p99 = pct(samples, 0.5), pct(samples, 0.99)
        print(f"{name:<34} {len(samples):>6} {fmt_us(p50):>12} {fmt_us(p99):>12} {p50 / base:>9,.1f}x")


if __name__ == "__main__":
    main()
