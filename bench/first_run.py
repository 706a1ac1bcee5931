"""The first `make run` on a fresh clone, timed to a healthy console (issue 20 item 6: under 3 minutes) and to
the simulated history's completion (`make run` writes it beside the console: var/history_status.json).

    python bench/first_run.py [--repo .] [--port 8611] [--keep]

Clones the repository's committed HEAD into a temporary folder, runs `make run PORT=<port>` there with an
empty uv cache (packages come from the index, as on a new machine), polls ``/_stcore/health`` every 0.5 s and
prints the seconds until it answers, the ratio against the 180 s target, then waits for the history's progress
record to say it is done and prints those seconds too, the database's size against 400 MB and the machine's load
average before and after (the figures are only meaningful on a quiet machine). The console and the history's
process are stopped afterwards; ``--keep`` leaves the clone for a look.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

TARGET_S = 180.0
TARGET_DB_BYTES = 400 * 1000 * 1000


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1) as r:  # noqa: S310
            return bool(r.status == 200)
    except OSError:
        return False


def _read(path: Path) -> dict:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return {}


def _wait_for_history(path: Path, limit_s: float = 1800.0) -> dict:
    """The history's progress record once it is no longer writing (done, failed, or its process gone)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        status = _read(path)
        pid = int(status.get("pid") or 0)
        if status.get("state") in ("done", "failed"):
            return status
        if status and pid and not Path(f"/proc/{pid}").exists():
            return {**status, "state": "stopped"}
        time.sleep(0.5)
    return {**_read(path), "state": "still writing after the limit"}


def _stop_history(path: Path) -> None:
    pid = int(_read(path).get("pid") or 0)
    if pid and _read(path).get("state") in ("writing", "finishing"):
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", default=str(Path(__file__).resolve().parents[1]))
    ap.add_argument("--port", type=int, default=8611)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    if _healthy(args.port):
        raise SystemExit(f"something already answers on port {args.port}: choose another --port")
    root = Path(tempfile.mkdtemp(prefix="creditrisk-first-run-"))
    clone, cache = root / "clone", root / "uv-cache"
    subprocess.run(["git", "clone", "-q", args.repo, str(clone)], check=True)  # noqa: S603, S607
    load_before = os.getloadavg()
    env = {**os.environ, "UV_CACHE_DIR": str(cache)}
    t0 = time.perf_counter()
    with open(clone / "run.log", "wb") as log:
        proc = subprocess.Popen(["make", "run", f"PORT={args.port}"], cwd=clone, env=env,  # noqa: S603, S607
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            while not _healthy(args.port):
                if proc.poll() is not None:
                    raise SystemExit(f"make run exited with {proc.returncode} before the console answered "
                                     f"(see {clone / 'run.log'})")
                time.sleep(0.5)
            seconds = time.perf_counter() - t0
            status = _wait_for_history(clone / "var" / "history_status.json")
            history_s = time.perf_counter() - t0
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)
            _stop_history(clone / "var" / "history_status.json")
    db = clone / "var" / "creditrisk.db"
    size = db.stat().st_size if db.exists() else 0
    print(f"make run -> healthy console: {seconds:.1f} s (target {TARGET_S:.0f} s: ratio {seconds / TARGET_S:.2f})")
    print(f"make run -> simulated history complete: {history_s:.1f} s ({status.get('state')}: "
          f"{status.get('message') or 'no summary'})")
    print(f"database: {size:,} bytes (target under {TARGET_DB_BYTES:,}: ratio {size / TARGET_DB_BYTES:.2f})")
    print(f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f} (2-core machine: quiet is ~1 or less)")
    if args.keep:
        print(f"clone kept in {clone}")
    else:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
