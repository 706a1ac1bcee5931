"""Real-browser fixtures (see TESTING.md, "Real browser, exact recipe").

* Chromium is Debian's (``shutil.which("chromium")``), never a Playwright download; missing, the
  tests skip locally and fail under ``CI=true`` (the root conftest's ``require``).
* One console server per session: ``python -m streamlit run app/main.py`` on a free loopback port,
  against a fresh data directory with one user per role (and the extra accounts of
  ``EXTRA_ACCOUNTS``, e.g. a second loan officer) created before it starts. Killed by PID at the
  end; its log is printed when a test fails.
* ``console_server_factory(env={...})`` starts more consoles the same way with extra environment
  variables (e.g. an LLM provider pointing at a loopback fake); each gets its own data directory and
  a copy of the one model trained per session. Stop one early with ``server.stop()``; whatever is
  still running is killed at the end of the session.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from proc_helpers import free_port, stop, wait_until_ok
from shared_once import once
from small_champion import train_small_champion

from backend.container.settings import load_settings
from backend.domain.permissions import ROLES

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 30_000
STARTUP_SECONDS = 60
PASSWORD = "correct horse battery staple"
# Realistic names make the screenshots worth looking at (and catch layout problems with long ones).
DISPLAY_NAMES = {"loan_officer": "Olivia Okafor", "risk_manager": "Rita Chen", "product_lead": "Priya Patel",
                 "ml_engineer": "Marcus Lee", "admin": "Ada Adeyemi"}
#: More accounts besides one per role: key -> (username, role, display name). ``server.users[key]``
#: and ``server.login(page, key)`` work with these keys as with role names.
EXTRA_ACCOUNTS: dict[str, tuple[str, str, str]] = {
    "second_officer": ("loanofficer2", "loan_officer", "Omar Haddad"),
}

APP_IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
SKELETON = "[data-testid='stSkeleton']"


def _root_require(config: pytest.Config) -> Callable[[bool, str], None]:
    """``require`` from tests/conftest.py (skip locally, fail under CI=true).

    Test code cannot ``import`` it: every conftest.py outside a package is loaded under the one
    module name "conftest", and a ``tests`` package in site-packages shadows ``tests.conftest``.
    """
    target = (ROOT / "tests" / "conftest.py").resolve()
    for plugin in config.pluginmanager.get_plugins():
        file = getattr(plugin, "__file__", None)
        if file and Path(file).resolve() == target:
            return plugin.require
    raise RuntimeError(f"{target} is not loaded as a conftest plugin")


def username_for(role: str) -> str:
    return role.replace("_", "")


# -- browser ------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def chromium_path(pytestconfig: pytest.Config) -> str:
    path = shutil.which("chromium")
    _root_require(pytestconfig)(path is not None,
                                "chromium is not installed (apt-get install -y --no-install-recommends "
                                "chromium fonts-liberation; never `playwright install`)")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any], chromium_path: str) -> dict[str, Any]:
    return {**browser_type_launch_args, "executable_path": chromium_path, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_context_args, "viewport": {"width": 1366, "height": 900}}


# -- server -------------------------------------------------------------------------------------
@dataclass
class ConsoleServer:
    url: str
    data_dir: Path
    log_path: Path
    proc: subprocess.Popen[bytes]
    users: dict[str, str] = field(default_factory=dict)  # role (or EXTRA_ACCOUNTS key) -> username
    display_names: dict[str, str] = field(default_factory=dict)  # role (or EXTRA_ACCOUNTS key) -> display name
    password: str = PASSWORD
    cookie_name: str = "creditrisk_auth"

    def log(self, start: int = 0) -> str:
        try:
            return self.log_path.read_bytes()[start:].decode("utf-8", "replace")
        except OSError as exc:
            return f"(no server log: {exc})"

    def log_size(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    # page helpers as methods: test modules cannot import this conftest (see _root_require)
    def open(self, page: Any, path: str = "") -> None:
        open_app(page, f"{self.url}/{path.lstrip('/')}")

    def login(self, page: Any, role: str) -> None:
        login(page, self.url, self.users[role], self.password)

    def stop(self) -> None:
        stop(self.proc)

    @property
    def registry_dir(self) -> Path:
        return self.data_dir / "models"

    logout = staticmethod(lambda page: logout(page))
    wait = staticmethod(lambda page: wait_for_rerun(page))
    screenshot = staticmethod(lambda page, name: full_page_screenshot(page, name))
    shows_login_form = staticmethod(lambda page: shows_login_form(page))


def _console_env(data_dir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDITRISK_")}
    env.update(CREDITRISK_MODEL__SIGNING_KEY=os.environ["CREDITRISK_MODEL__SIGNING_KEY"],  # the session's (root conftest)
               CREDITRISK_DATA_DIR=str(data_dir), CREDITRISK_AUTH__BCRYPT_ROUNDS="4",
               CREDITRISK_MODEL__REGISTRY_DIR=str(data_dir / "models"), PYTHONUNBUFFERED="1",
               CREDITRISK_AUTH__MFA_REQUIRED="false")  # tests of the second factor pass env= to turn it on
    env.update(extra or {})
    return env


class ConsoleServerFactory:
    """``factory(env=None, name="console")`` prepares a data directory and starts one console."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self.tmp_path_factory = tmp_path_factory
        self.started: list[ConsoleServer] = []
        self._registry: Path | None = None

    def trained_registry(self) -> Path:
        if self._registry is None:  # trained once per test run, shared with the AppTest console tests
            self._registry = once(self.tmp_path_factory, "small-champion", train_small_champion)
        return self._registry

    def __call__(self, env: Mapping[str, str] | None = None, *, name: str = "console") -> ConsoleServer:
        data_dir = self.tmp_path_factory.mktemp(name)
        env = _console_env(data_dir, env)

        # users first, with the same settings the server will read
        from backend.container import build_services

        saved = {k: os.environ.get(k) for k in env if k.startswith("CREDITRISK_")}
        os.environ.update({k: v for k, v in env.items() if k.startswith("CREDITRISK_")})
        try:
            settings = load_settings()
            svc = build_services(settings, migrate=True)
            users, display = {}, {}
            accounts = [(role, username_for(role), role, DISPLAY_NAMES.get(role, role)) for role in ROLES]
            accounts += [(key, *account) for key, account in EXTRA_ACCOUNTS.items()]
            for key, username, role, display_name in accounts:
                svc.users.add(username, role=role, password=PASSWORD, display_name=display_name)
                users[key], display[key] = username, display_name
            svc.close()
            shutil.copytree(self.trained_registry(), data_dir / "models")
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

        port = free_port()
        log_path = data_dir / "streamlit.log"
        cmd = [sys.executable, "-m", "streamlit", "run", "app/main.py", "--server.headless=true",
               "--server.address=127.0.0.1", f"--server.port={port}", "--browser.gatherUsageStats=false",
               "--server.fileWatcherType=none"]
        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
        server = ConsoleServer(f"http://127.0.0.1:{port}", data_dir, log_path, proc, users, display,
                               cookie_name=settings.auth.cookie_name)
        self.started.append(server)
        wait_until_ok(f"{server.url}/_stcore/health", proc, seconds=STARTUP_SECONDS, name="streamlit", log=server.log)
        return server

    def stop_all(self) -> None:
        for server in self.started:
            server.stop()


@pytest.fixture(scope="session")
def console_server_factory(tmp_path_factory: pytest.TempPathFactory,
                           chromium_path: str) -> Iterator[ConsoleServerFactory]:
    factory = ConsoleServerFactory(tmp_path_factory)
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture(scope="session")
def console_server(console_server_factory: ConsoleServerFactory) -> ConsoleServer:
    """The shared console on the embedded defaults (template explainer)."""
    return console_server_factory()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


@pytest.fixture(autouse=True)
def _server_log_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    if "console_server_factory" not in request.fixturenames:
        yield
        return
    if "console_server" in request.fixturenames:
        request.getfixturevalue("console_server")
    factory: ConsoleServerFactory = request.getfixturevalue("console_server_factory")
    starts = {id(s): s.log_size() for s in factory.started}
    yield
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        for server in factory.started:
            print(f"\n----- streamlit server log ({server.log_path}) during this test -----\n"
                  f"{server.log(starts.get(id(server), 0))}")


# -- page helpers -------------------------------------------------------------------------------
def wait_for_rerun(page: Any) -> None:
    """The script run is over and nothing is still loading."""
    page.wait_for_selector(APP_IDLE, timeout=TIMEOUT_MS)
    page.wait_for_function(f"() => !document.querySelector(\"{SKELETON}\")", timeout=TIMEOUT_MS)


def open_app(page: Any, url: str) -> None:
    page.goto(url, timeout=TIMEOUT_MS)
    page.wait_for_selector("[data-testid='stApp']", timeout=TIMEOUT_MS)
    # the first run shows either the login form or a page title
    page.locator("h1, [data-testid='stForm']").first.wait_for(timeout=TIMEOUT_MS)
    wait_for_rerun(page)


def login(page: Any, url: str, username: str, password: str) -> None:
    open_app(page, url)
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", level=1).first.wait_for(timeout=TIMEOUT_MS)
    wait_for_rerun(page)


def logout(page: Any) -> None:
    page.get_by_role("button", name="Log out").click()
    page.get_by_role("button", name="Sign in").wait_for(timeout=TIMEOUT_MS)
    wait_for_rerun(page)


def full_page_screenshot(page: Any, name: str) -> Path:
    """Streamlit scrolls inside stMain: grow the viewport to its scrollHeight, then shoot."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    before = page.viewport_size or {"width": 1366, "height": 900}
    height = page.evaluate("() => document.querySelector(\"[data-testid='stMain']\").scrollHeight")
    page.set_viewport_size({"width": before["width"], "height": max(int(height), before["height"])})
    page.wait_for_timeout(300)  # let the layout settle at the new size
    wait_for_rerun(page)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(before)
    return path


def shows_login_form(page: Any) -> bool:
    return page.get_by_role("button", name="Sign in").is_visible() and page.get_by_label("Username", exact=True).is_visible()
