"""How long each console page takes to render in a real browser (Debian Chromium, Playwright).

Starts the console against a data directory (default: the demo under ``var/``), signs in as each
role that may see the page, clicks the page in the sidebar and waits until Streamlit reports the
script run finished with nothing still loading. The first visit is "cold" (caches empty); the
next ``--repeat`` visits (going back to Home in between) are "warm". The baseline is the Home page
measured the same way in the same run; the ratio says how much heavier a page is than Home.

Targets (issue #6/#7): every monitoring and product page at most 2 s warm over the default
history, at most 5 s over a 1M-application history.

    python bench/pages_render.py                                  # var/ and models/ of this checkout
    python bench/pages_render.py --data-dir /work/demo1m/var --registry-dir /work/demo1m/models
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.navigation import PAGES  # noqa: E402
from backend.domain.permissions import POLICY, Role  # noqa: E402

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
APP_IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
NAV_LINK = "[data-testid='stSidebarNavLink']"
DEFAULT_PAGES = ("drift.py", "performance.py", "fairness.py", "alerts.py", "models.py", "phases.py",
                 "latency.py", "costs.py")
TIMEOUT_MS = 120_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _credentials(data_dir: Path) -> dict[str, tuple[str, str]]:
    """role -> (username, password) from the demo's credentials file (first user of each role)."""
    out: dict[str, tuple[str, str]] = {}
    for line in (data_dir / "demo_credentials.txt").read_text().splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[1] not in out:
            out[parts[1]] = (parts[0], parts[2])
    return out


def _second_factor(page, data_dir: Path, user: str) -> None:  # noqa: ANN001
    """Demo users whose role requires it have a TOTP secret in demo_mfa.txt (`creditrisk demo`): type its code."""
    from backend.identity import current_code

    page.locator("h1, [aria-label='One-time code']").first.wait_for(timeout=TIMEOUT_MS)
    if page.get_by_label("One-time code", exact=True).count() == 0:
        return
    secret = next(line.split("\t")[1] for line in (data_dir / "demo_mfa.txt").read_text().splitlines()
                  if line.split("\t")[0] == user)
    page.get_by_label("One-time code", exact=True).fill(current_code(secret)[0])
    page.get_by_role("button", name="Verify", exact=True).click()


def _idle(page) -> None:  # noqa: ANN001
    page.wait_for_selector(APP_IDLE, timeout=TIMEOUT_MS)
    page.wait_for_function("() => !document.querySelector(\"[data-testid='stSkeleton']\")", timeout=TIMEOUT_MS)


def _visit(page, title: str) -> float:  # noqa: ANN001
    """Seconds from the sidebar click until the page's run is over and its title is shown."""
    heading = re.compile("^Welcome") if title == "Home" else title
    t0 = time.perf_counter()
    page.locator(NAV_LINK, has_text=title).first.click()
    page.get_by_role("heading", level=1, name=heading).first.wait_for(timeout=TIMEOUT_MS)
    _idle(page)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=ROOT / "var")
    ap.add_argument("--registry-dir", type=Path, default=ROOT / "models")
    ap.add_argument("--pages", nargs="*", default=list(DEFAULT_PAGES))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    creds = _credentials(args.data_dir)
    port = _free_port()
    env = {**os.environ, "CREDITRISK_DATA_DIR": str(args.data_dir), "CREDITRISK_MODEL__REGISTRY_DIR": str(args.registry_dir)}
    log = open(args.data_dir / "bench_pages_render.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "app" / "main.py"),
                             "--server.headless=true", "--server.address=127.0.0.1", f"--server.port={port}",
                             "--browser.gatherUsageStats=false", "--server.fileWatcherType=none"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        specs = [p for p in PAGES if p.file in args.pages and p.path.exists()]
        rows: list[tuple[str, str, float, float, float]] = []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
            for role in Role:
                mine = [p for p in specs if p.perm in POLICY[role]]
                if not mine or role.value not in creds:
                    continue
                user, password = creds[role.value]
                page = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
                page.goto(url, timeout=TIMEOUT_MS)
                page.get_by_label("Username", exact=True).fill(user)
                page.get_by_label("Password", exact=True).fill(password)
                page.get_by_role("button", name="Sign in").click()
                _second_factor(page, args.data_dir, user)
                page.get_by_role("heading", level=1).first.wait_for(timeout=TIMEOUT_MS)
                _idle(page)
                home = [_visit(page, "Home") for _ in range(args.repeat)]
                base = statistics.median(home)
                for spec in mine:
                    cold = _visit(page, spec.title)
                    warm = []
                    for _ in range(args.repeat):
                        _visit(page, "Home")
                        warm.append(_visit(page, spec.title))
                    rows.append((role.value, spec.title, cold, statistics.median(warm), statistics.median(warm) / base))
                page.context.close()
            browser.close()
        print(f"data: {args.data_dir}   (Home page baseline measured per role in the same run)")
        print(f"{'role':<14} {'page':<22} {'cold s':>7} {'warm s':>7} {'x Home':>7}")
        for role, title, cold, warm, ratio in rows:
            print(f"{role:<14} {title:<22} {cold:7.2f} {warm:7.2f} {ratio:7.1f}")
        worst = max((r[3] for r in rows), default=float("nan"))
        print(f"slowest warm render: {worst:.2f} s")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


if __name__ == "__main__":
    main()
