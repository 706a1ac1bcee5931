"""Child processes the tests start (the console, the SageMaker serving container): a free loopback port,
waiting until one answers, stopping one. ``tests/`` is on ``sys.path`` (pytest's prepend import mode puts
the directory of tests/conftest.py there), so any test module or conftest may import this."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_ok(url: str, proc: subprocess.Popen[bytes], *, seconds: float, name: str, log: Callable[[], str],
                  interval: float = 0.25) -> None:
    """Poll ``url`` until it answers 200; a ``RuntimeError`` with ``log()`` when ``proc`` exits first or
    ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode} before it answered:\n{log()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError as exc:
            last = exc
        time.sleep(interval)
    raise RuntimeError(f"{name} not answering {url} after {seconds}s ({last}):\n{log()}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 10 s."""
    if proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
