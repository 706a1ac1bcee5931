"""AppTest fixtures: a fresh data directory per test, one user per role, and a ``login`` helper.

The console reads its settings from ``CREDITRISK_*`` environment variables and caches its
``Services`` with ``st.cache_resource``; both are reset around every test so no test sees another
test's database.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Block

from backend.container import Services, build_services
from backend.container.settings import load_settings
from backend.domain.permissions import ROLE_LABELS, ROLES, Role

ROOT = Path(__file__).resolve().parents[2]
MAIN = str(ROOT / "app" / "main.py")
TIMEOUT = 30
PASSWORD = "correct horse battery staple"


def username_for(role: str) -> str:
    return role.replace("_", "")  # loan_officer -> loanofficer


def display_name_for(role: str) -> str:
    return f"{ROLE_LABELS[Role(role)]} Tester"


def clear_streamlit_caches() -> None:
    """The console caches Services (cache_resource) and query results (cache_data) per process."""
    st.cache_resource.clear()
    st.cache_data.clear()


SESSION_SIGNING_KEY = os.environ["CREDITRISK_MODEL__SIGNING_KEY"]  # set by the root conftest (imported first)


def set_console_env(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    for key in list(os.environ):
        if key.startswith("CREDITRISK_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("CREDITRISK_MODEL__SIGNING_KEY", SESSION_SIGNING_KEY)  # the session's registries are signed with it
    monkeypatch.setenv("CREDITRISK_AUTH__MFA_REQUIRED", "false")  # tests of the second factor set it (mfa_helpers)
    monkeypatch.setenv("CREDITRISK_DATA_DIR", str(data_dir))
    monkeypatch.setenv("CREDITRISK_AUTH__BCRYPT_ROUNDS", "4")
    monkeypatch.setenv("CREDITRISK_MODEL__REGISTRY_DIR", str(data_dir / "models"))
    monkeypatch.chdir(data_dir)  # no developer .env or var/ leaks in


# -- helpers (also reachable from tests as ``console.<name>``: test modules cannot import this file
# reliably, every conftest.py outside a package is imported under the one name "conftest") ------
def by_label(elements, label: str):  # noqa: ANN001, ANN201 - ElementList of any widget type
    found = [e for e in elements if e.label == label]
    assert found, f"no element labelled {label!r} (have {[e.label for e in elements]})"
    return found[0]


def login(at: AppTest, username: str, password: str) -> AppTest:
    """Fill the login form of an already-run AppTest, submit, and rerun."""
    by_label(at.text_input, "Username").input(username)
    by_label(at.text_input, "Password").input(password)
    by_label(at.button, "Sign in").click()
    return at.run()


def leaves(at: AppTest) -> list:
    """Every rendered element (main area and sidebar), blocks excluded."""
    return [n for part in (at.main, at.sidebar) for n in part if not isinstance(n, Block)]


def shows_login_form(at: AppTest) -> bool:
    return [t.label for t in at.text_input] == ["Username", "Password"] and \
        [b.label for b in at.button] == ["Sign in"]


def registered_scripts(at: AppTest) -> set[Path]:
    """Script files of the pages st.navigation registered in the last run.

    AppTest has no public accessor for the navigation; ``_registered_pages`` is what its own
    ``switch_page`` uses. The public cross-check (``switch_page`` raising for an unregistered page)
    is in the tests too.
    """
    return {Path(str(info["script_path"])).resolve()
            for info in at._registered_pages.values() if info.get("script_path")}


@dataclass
class Console:
    """A fresh console installation: its data dir, a Services bundle on the same database, users."""

    data_dir: Path
    services: Services
    users: dict[str, str]  # role -> username
    password: str = PASSWORD
    main: str = MAIN

    login = staticmethod(login)
    by_label = staticmethod(by_label)
    leaves = staticmethod(leaves)
    shows_login_form = staticmethod(shows_login_form)
    registered_scripts = staticmethod(registered_scripts)
    clear_caches = staticmethod(clear_streamlit_caches)

    def app(self) -> AppTest:
        return AppTest.from_file(MAIN, default_timeout=TIMEOUT)

    def logged_in(self, role: str) -> AppTest:
        at = self.app().run()
        return login(at, self.users[role], PASSWORD)

    def open_page(self, role: str, page: Path) -> AppTest:
        """``role`` signed in and on ``page`` (a file under pages/), which raised no exception."""
        at = self.logged_in(role)
        at.switch_page(str(page)).run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    @property
    def registry_dir(self) -> Path:
        return self.data_dir / "models"

    def install_model(self, registry: Path) -> None:
        """Copy a trained registry in (before the app's first run builds its services)."""
        shutil.copytree(registry, self.registry_dir, dirs_exist_ok=True)


@pytest.fixture
def console(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Console]:
    set_console_env(monkeypatch, tmp_path)
    clear_streamlit_caches()
    svc = build_services(load_settings(), migrate=True)
    users = {}
    for role in ROLES:
        svc.users.add(username_for(role), role=role, password=PASSWORD, display_name=display_name_for(role))
        users[role] = username_for(role)
    yield Console(tmp_path, svc, users)
    svc.close()
    clear_streamlit_caches()


@pytest.fixture(scope="session")
def trained_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small promoted champion, trained once per test run on synthetic data (about 10 s; shared with
    the browser tests' console, see ``tests/shared_once.py``)."""
    from shared_once import once
    from small_champion import train_small_champion

    return once(tmp_path_factory, "small-champion", train_small_champion)
