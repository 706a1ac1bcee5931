"""Load generators for ``bench/api_load.py``: an open-loop fixed-rate client, wrk, and the statistics.

* :func:`open_loop` (run in its own process: ``python bench/api_load_gen.py CONFIG.json``) sends
  request ``i`` at ``start + i / rate`` whatever happened to the earlier ones (open loop: a slow
  answer never delays the next send, so it cannot hide queueing — no coordinated omission). It
  speaks HTTP/1.1 over raw asyncio keep-alive connections (a new one when none is idle) and times
  each request from its *scheduled* send time to the last byte of the answer. It also reports how
  late its own sends were (``lag``) and its CPU time, to show it is not the bottleneck.
* :func:`run_wrk` runs Debian's ``wrk`` (closed loop, C, for saturation) with ``bench/lua/api_load.lua``.
* Bodies: ``/v1/score`` bodies are templates with an applicant id and an ``annual_income`` that change
  with every request (a cent per turn of the template list), so every request is a new application
  and a cache miss.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

LUA = Path(__file__).resolve().parent / "lua" / "api_load.lua"
AID, INC = "__AID__", "__INC__"
KEEP_ALIVE_S = 3.0  # reuse an idle connection only this long (the server closes them after 5 s)


# -- bodies ------------------------------------------------------------------------------------------
def write_templates(apps: Sequence[dict[str, Any]], path: Path) -> list[dict[str, Any]]:
    """One JSON body per line with the placeholders, plus the base income of each (for wrk's Lua)."""
    out = []
    with path.open("w") as fh:
        for app in apps:
            body = {k: v for k, v in app.items() if k not in ("applicant_id", "annual_income")}
            base = float(app.get("annual_income") or 50_000.0)
            text = json.dumps({"applicant_id": AID, "annual_income": INC, **body}, separators=(",", ":"))
            text = text.replace(f'"{INC}"', INC)
            fh.write(f"{base:.2f}\t{text}\n")
            out.append({"base": base, "text": text})
    return out


def read_templates(path: Path) -> list[dict[str, Any]]:
    return [{"base": float(b), "text": t} for b, t in (line.split("\t", 1) for line in path.read_text().splitlines())]


def body_for(templates: Sequence[dict[str, Any]], prefix: str, n: int) -> bytes:
    t = templates[n % len(templates)]
    income = t["base"] + (n // len(templates)) * 0.01
    return t["text"].replace(AID, f"{prefix}{n}").replace(INC, f"{income:.2f}").encode()


# -- open loop ---------------------------------------------------------------------------------------
class _Conn(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; answers are framed by Content-Length (the API always sets it)."""

    def __init__(self) -> None:
        self.transport: Any = None
        self.buf = bytearray()
        self.need: int | None = None
        self.status = 0
        self.close_after = False
        self.closed = False
        self.waiter: asyncio.Future[int] | None = None
        self.last_used = 0.0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.need is None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end]).lower()
            self.status = int(head[9:12])
            m = re.search(rb"\r\ncontent-length:\s*(\d+)", head)
            self.need = end + 4 + (int(m.group(1)) if m else 0)
            self.close_after = b"\r\nconnection: close" in head
        if len(self.buf) >= self.need:
            del self.buf[:self.need]
            self.need = None
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_result(self.status)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection lost"))

    def request(self, data: bytes) -> asyncio.Future[int]:
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.waiter


async def _open_loop(cfg: dict[str, Any]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    host, port, rate, duration = cfg["host"], int(cfg["port"]), float(cfg["rate"]), float(cfg["duration"])
    method, path, prefix, offset = cfg["method"], cfg["path"], cfg.get("prefix", "g"), int(cfg.get("offset", 0))
    templates = read_templates(Path(cfg["templates"])) if cfg.get("templates") else []
    paths = cfg.get("paths") or [path]
    heads = [f"{method} {p} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {cfg['token']}\r\n"
             "Accept: application/json\r\n" for p in paths]
    empty = "Content-Length: 0\r\n\r\n" if method == "POST" else "\r\n"
    n = int(rate * duration)
    lat = [math.nan] * n
    status = [0] * n
    lag = [0.0] * n
    idle: list[_Conn] = []
    opened = 0
    timeout = float(cfg.get("timeout", 10.0))

    def build(i: int) -> bytes:
        head = heads[i % len(heads)]
        if not templates:
            return (head + empty).encode()
        body = body_for(templates, prefix, offset + i)
        return (head + f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body

    def reuse() -> _Conn | None:
        while idle:  # newest first; the server closes keep-alive connections idle for 5 s (uvicorn's default)
            conn = idle.pop()
            if not conn.closed and time.perf_counter() - conn.last_used < KEEP_ALIVE_S:
                return conn
            conn.transport.close()
        return None

    async def one(i: int, sched: float) -> None:
        nonlocal opened
        conn = reuse()
        try:
            if conn is None:
                opened += 1
                _, conn = await loop.create_connection(_Conn, host, port)
            status[i] = await asyncio.wait_for(conn.request(build(i)), timeout)
        except (TimeoutError, OSError, ConnectionError, RuntimeError):  # RuntimeError: transport closed
            status[i] = 0
            if conn is not None and conn.transport is not None:
                conn.transport.close()
            conn = None
        lat[i] = (time.perf_counter() - sched) * 1000
        if conn is not None and not conn.closed and not conn.close_after:
            conn.last_used = time.perf_counter()
            idle.append(conn)

    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter() + 0.05
    print(f"READY {time.monotonic() + 0.05:.6f}", flush=True)
    tasks = set()
    for i in range(n):
        sched = start + i / rate
        delay = sched - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        lag[i] = (time.perf_counter() - sched) * 1000
        task = loop.create_task(one(i, sched))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    while tasks:
        await asyncio.gather(*list(tasks))
    wall = time.perf_counter() - start
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    for c in idle:
        c.transport.close()
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return {"lat_ms": [round(x, 3) for x in lat], "status": status, "lag_ms": summary(lag),
            "sched_s": [round(i / rate, 4) for i in range(n)], "wall_s": wall, "cpu_s": cpu,
            "cpu_share": cpu / wall if wall else 0.0, "connections": opened}


def open_loop(cfg: dict[str, Any]) -> dict[str, Any]:
    try:
        import uvloop

        return uvloop.run(_open_loop(cfg))
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        return asyncio.run(_open_loop(cfg))


def spawn_open_loop(cfg: dict[str, Any], cfg_path: Path, *, cpu: int | None) -> subprocess.Popen[str]:
    """Start the generator in its own process (pinned to ``cpu`` when given); see :func:`collect`."""
    cfg_path.write_text(json.dumps(cfg))
    cmd = [sys.executable, str(Path(__file__).resolve()), str(cfg_path)]
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu), *cmd]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)  # noqa: S603 - our own script


def wait_ready(proc: subprocess.Popen[str]) -> float:
    """The monotonic time the generator's schedule starts."""
    line = proc.stdout.readline() if proc.stdout else ""
    if not line.startswith("READY "):
        raise RuntimeError(f"load generator failed to start: {line!r}")
    return float(line.split()[1])


def collect(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"load generator exited with {proc.returncode}")
    return dict(json.loads(out))


# -- statistics --------------------------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation: p99.9 of 12,000 samples is the 12th worst)."""
    xs = sorted(v for v in values if not math.isnan(v))
    if not xs:
        return math.nan
    return float(xs[min(len(xs) - 1, max(0, math.ceil(q / 100 * len(xs)) - 1))])


def summary(values: Sequence[float]) -> dict[str, float]:
    return {"p50": percentile(values, 50), "p99": percentile(values, 99), "p999": percentile(values, 99.9),
            "max": max((v for v in values if not math.isnan(v)), default=math.nan)}


def fixed_rate_stats(res: dict[str, Any], ok_status: int, *, since_s: float = 0.0) -> dict[str, Any]:
    """Latency percentiles and errors of the requests scheduled at or after ``since_s``."""
    keep = [i for i, t in enumerate(res["sched_s"]) if t >= since_s]
    lat = [res["lat_ms"][i] for i in keep]
    errors = sum(1 for i in keep if res["status"][i] != ok_status)
    s = summary(lat)
    return {"requests": len(keep), "errors": errors, "p50_ms": s["p50"], "p99_ms": s["p99"], "p999_ms": s["p999"],
            "max_ms": s["max"], "statuses": _counts(res["status"][i] for i in keep)}


def _counts(xs: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for x in xs:
        out[str(x)] = out.get(str(x), 0) + 1
    return out


# -- wrk ---------------------------------------------------------------------------------------------
def run_wrk(url: str, *, mode: str, token: str, seconds: float, connections: int, templates: Path | None,
            prefix: str, offset: int = 0, cpu: int | None = None) -> dict[str, Any]:
    """Saturate ``url`` for ``seconds`` with ``connections`` keep-alive connections on one thread."""
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s", "-s", str(LUA),
           url, "--", mode, token, str(templates or "-"), prefix, str(offset)]
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu), *cmd]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)  # noqa: S603
    for line in done.stdout.splitlines():
        if line.startswith("JSON "):
            return dict(json.loads(line[5:]))
    raise RuntimeError(f"wrk printed no result: {done.stdout[-500:]} {done.stderr[-500:]}")


# -- the server's process tree (uvicorn's supervisor and its workers) ---------------------------------
def tree_pids(pid: int) -> list[int]:
    """``pid`` and its descendants (a process gone meanwhile may be listed: its /proc files no longer read)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            todo += [int(c) for task in Path(f"/proc/{p}/task").iterdir() for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return out


def tree_cpu_seconds(pid: int) -> float:
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for p in tree_pids(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            continue
    return total


def _write_all(fd: int, data: bytes) -> None:
    """All of ``data`` to ``fd``, on a blocking pipe. The parent once read a result cut at 64 kB ("Expecting ','
    delimiter: line 2 column 1 (char 65537)"), the pipe's capacity; our reading of it: with PYTHONUNBUFFERED set,
    ``print`` makes one raw write, which a pipe left non-blocking takes only in part (not reproduced in isolation;
    the next run passed). Writing every byte on a blocking pipe rules that out."""
    os.set_blocking(fd, True)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


if __name__ == "__main__":
    _write_all(sys.stdout.fileno(), (json.dumps(open_loop(json.loads(Path(sys.argv[1]).read_text()))) + "\n").encode())
