"""Throw-away PostgreSQL and Redis servers for fault tests that stop a server (never the shared ones):
each lives in a temporary directory on a free loopback port and is removed afterwards. ``tests/`` is on
``sys.path`` (see proc_helpers), so a test imports this by name."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from proc_helpers import free_port


def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


class ThrowawayPostgres:
    """``initdb`` into a temporary directory, ``pg_ctl start`` on a free port (trust auth, loopback only);
    :meth:`crash` stops it at once (``-m immediate``: no shutdown checkpoint, as a crash), :meth:`start` again."""

    def __init__(self) -> None:
        self.initdb, self.pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        if not self.initdb or not self.pg_ctl:
            pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found")
        self.root = Path(tempfile.mkdtemp(prefix="crt-pg-"))
        self.data, self.log = self.root / "data", self.root / "server.log"
        self.port = free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:  # initdb refuses root: run the server as the postgres account
            self._as = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.root, "postgres")
            os.chmod(self.root, 0o700)
        self._run([self.initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, cmd: list[str]) -> None:
        res = subprocess.run([*self._as, *cmd], capture_output=True, text=True, timeout=120, check=False)
        if res.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[:2])} failed ({res.returncode}): {res.stderr[-2000:]}")

    def start(self) -> None:
        opts = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off"
        self._run([self.pg_ctl, "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "-t", "60", "start"])

    def crash(self) -> None:
        self._run([self.pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "-t", "60", "stop"])

    def close(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self.crash()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


class ThrowawayRedis:
    """``redis-server`` on a free loopback port without persistence; :meth:`stop` and :meth:`start` again
    (a restart loses every counter, as a real one without persistence does)."""

    def __init__(self) -> None:
        self.exe = shutil.which("redis-server")
        if not self.exe:
            pytest.skip("redis-server not found")
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        self.proc = subprocess.Popen([self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url, socket_timeout=0.5)
        try:
            for _ in range(100):
                try:
                    client.ping()
                    return
                except redis.exceptions.RedisError:
                    time.sleep(0.05)
            raise RuntimeError("the throw-away redis-server did not start")
        finally:
            client.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None
