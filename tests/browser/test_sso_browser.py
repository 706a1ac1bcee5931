"""Single sign-on in a real headless Chromium, against a real OIDC provider on loopback (fake_oidc.py).

One console runs with ``CREDITRISK_SSO__ENABLED=true`` (password form hidden) and Streamlit's
``[auth]`` secrets written by the same code as ``creditrisk sso write-secrets`` into a temporary
file (``STREAMLIT_SECRETS_FILES``; the repository's .streamlit/ is never touched). Clicking
"Sign in with Fake IdP" goes through Streamlit's /auth/login, the provider's /authorize, Streamlit's
/oauth2callback (Authlib: code exchange, PKCE, ID-token signature, iss/aud/exp/nonce) and back.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_oidc import FakeOidcProvider, OidcUser

from app.navigation import pages_for
from backend.compliance.audit_queries import AuditRepository
from backend.identity.config import SsoSettings
from backend.identity.queries import UserRepository
from backend.identity.sso import NO_MAPPED_GROUP, is_sso_account
from backend.identity.sso_secrets import write_secrets
from backend.platform.db.engine import Database, make_engine

pytestmark = pytest.mark.browser

TIMEOUT_MS = 30_000
LABEL = "Fake IdP"
APP_IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
NAV_LINK = "[data-testid='stSidebarNav'] a"
GROUP_ROLES = {"creditrisk-officers": "loan_officer", "creditrisk-risk": "risk_manager",
               "creditrisk-product": "product_lead"}
OLIVIA = OidcUser(sub="00u-7f3a-olivia", name="Olivia Okafor", email="olivia.okafor@bank.example",
                  preferred_username="olivia.okafor", groups=["all-staff", "creditrisk-officers"])


@pytest.fixture(scope="module")
def sso(console_server_factory: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, FakeOidcProvider]]:
    provider = FakeOidcProvider().start()
    cfg = SsoSettings(enabled=True, provider="fakeidp", label=LABEL, server_metadata_url=provider.metadata_url,
                      client_id=provider.client_id, client_secret=provider.client_secret,
                      redirect_uri="http://127.0.0.1:{port}/oauth2callback", cookie_secret=secrets.token_urlsafe(32),
                      group_roles=GROUP_ROLES, password_login=False)
    secrets_file = write_secrets(cfg, tmp_path_factory.mktemp("sso-secrets") / "secrets.toml")
    env = {"STREAMLIT_SECRETS_FILES": str(secrets_file), "CREDITRISK_SSO__ENABLED": "true",
           "CREDITRISK_SSO__PROVIDER": cfg.provider, "CREDITRISK_SSO__LABEL": LABEL,
           "CREDITRISK_SSO__SERVER_METADATA_URL": cfg.server_metadata_url, "CREDITRISK_SSO__CLIENT_ID": cfg.client_id,
           "CREDITRISK_SSO__CLIENT_SECRET": provider.client_secret, "CREDITRISK_SSO__REDIRECT_URI": cfg.redirect_uri,
           "CREDITRISK_SSO__COOKIE_SECRET": cfg.cookie_secret.get_secret_value(),
           "CREDITRISK_SSO__GROUP_ROLES": json.dumps(GROUP_ROLES), "CREDITRISK_SSO__PASSWORD_LOGIN": "false"}
    try:
        server = console_server_factory(env=env, name="sso-console")
        provider.allow_redirect(f"{server.url}/oauth2callback")
        yield server, provider
    finally:
        provider.stop()


def _db(server: Any) -> Database:
    return Database(make_engine(f"sqlite:///{Path(server.data_dir) / 'creditrisk.db'}"))


def _actions(server: Any, actor: str) -> list[tuple[str, dict[str, Any]]]:
    db = _db(server)
    try:
        with db.read() as s:
            return [(r.action, dict(r.payload)) for r in reversed(AuditRepository(s).recent(200, actor=actor))]
    finally:
        db.dispose()


def _idle(page: Any) -> None:
    page.wait_for_selector(APP_IDLE, timeout=TIMEOUT_MS)
    page.wait_for_function("() => !document.querySelector(\"[data-testid='stSkeleton']\")", timeout=TIMEOUT_MS)


def _sign_in_button(page: Any) -> Any:
    return page.get_by_role("button", name=f"Sign in with {LABEL}", exact=True)


def _open_login(page: Any, server: Any) -> None:
    page.goto(server.url, timeout=TIMEOUT_MS)
    _sign_in_button(page).wait_for(timeout=TIMEOUT_MS)
    _idle(page)


def _sign_in(page: Any, heading: str) -> None:
    _sign_in_button(page).click()
    page.get_by_role("heading", name=heading, level=1).wait_for(timeout=TIMEOUT_MS)
    _idle(page)


def _nav(page: Any) -> list[str]:
    return sorted(t.strip().splitlines()[-1].strip() for t in page.locator(NAV_LINK).all_inner_texts())  # no icon


def _sidebar(page: Any) -> str:
    return page.locator("[data-testid='stSidebar']").inner_text()


def test_sso_sign_in_role_logout_and_refusal(page: Any, sso: tuple[Any, FakeOidcProvider]) -> None:
    server, provider = sso
    provider.user = OLIVIA
    _open_login(page, server)
    assert page.get_by_label("Username", exact=True).count() == 0  # password form hidden by the setting

    _sign_in(page, "Welcome, Olivia Okafor")
    assert [c["name"] for c in page.context.cookies() if c["name"] == "_streamlit_user"]  # Streamlit's identity
    assert "Loan officer" in _sidebar(page)
    assert _nav(page) == sorted(p.title for p in pages_for("loan_officer"))
    server.screenshot(page, "sso_home_loan_officer.png")
    assert ("token", OLIVIA.sub) in provider.events

    db = _db(server)
    with db.read() as s:
        row = UserRepository(s).by_username("olivia.okafor")
        assert row is not None and row.role == "loan_officer" and is_sso_account(row.password_hash)
    db.dispose()
    acts = [a for a, _ in _actions(server, "olivia.okafor")]
    assert acts[:3] == ["sso_user_provisioned", "sso_login", "session_started"]

    # logout: our session ends, Streamlit's identity cookie goes, the provider's end_session is visited
    page.get_by_role("button", name="Log out").click()
    _sign_in_button(page).wait_for(timeout=TIMEOUT_MS)
    _idle(page)
    assert ("logout", "") in provider.events
    assert page.locator(NAV_LINK).count() == 0
    assert not [c["name"] for c in page.context.cookies() if c["name"].startswith("_streamlit_user")]
    assert "logout" in [a for a, _ in _actions(server, "olivia.okafor")]

    # someone whose groups map to no role (same browser, after the logout above)
    provider.user = OidcUser(sub="00u-91c2-mallory", name="Mallory Marketing", email="mallory@bank.example",
                             preferred_username="mallory", groups=["marketing", "all-staff"])
    server.screenshot(page, "sso_login_screen.png")
    _sign_in(page, "Sign-in refused")
    assert NO_MAPPED_GROUP in page.locator("[data-testid='stAlertContentError']").inner_text()
    assert page.locator(NAV_LINK).count() == 0 and page.get_by_role("button", name="Log out").count() == 0
    server.screenshot(page, "sso_refused.png")

    refused = [p for a, p in _actions(server, "mallory") if a == "sso_login_refused"]
    assert len(refused) == 1 and refused[0]["reason"] == "no_mapped_group"
    assert refused[0]["groups"] == ["marketing", "all-staff"]
    db = _db(server)
    with db.read() as s:
        assert UserRepository(s).by_username("mallory") is None
    db.dispose()

    page.get_by_role("button", name="Sign out", exact=True).click()
    _sign_in_button(page).wait_for(timeout=TIMEOUT_MS)
    _idle(page)
    assert page.get_by_role("heading", name="Sign-in refused").count() == 0
