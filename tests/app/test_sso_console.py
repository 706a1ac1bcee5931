"""Single sign-on in the console through AppTest (fast; the real redirect flow is in tests/browser).

``at.secrets`` stands for Streamlit's ``[auth]`` secrets and ``at.user`` for the claims ``st.user``
holds after the provider's redirect: what the console does with them is the same code as in a
real session.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from app.guard import USER_KEY
from app.sso import SESSION_ENDED, SIGN_OUT
from backend.compliance.audit_queries import AuditRepository
from backend.identity.config import SsoSettings
from backend.identity.sso import NO_MAPPED_GROUP
from backend.identity.sso_secrets import auth_section

LABEL = "Bank SSO"
CFG = SsoSettings(enabled=True, provider="okta", label=LABEL, server_metadata_url="https://idp.example/.well-known/openid-configuration",
                  client_id="console", client_secret="client-secret", cookie_secret="c" * 40,
                  redirect_uri="http://localhost:8501/oauth2callback",
                  group_roles={"creditrisk-officers": "loan_officer", "creditrisk-risk": "risk_manager"})


def _enable(monkeypatch: pytest.MonkeyPatch, *, password_login: bool) -> None:
    env = {"ENABLED": "true", "PROVIDER": CFG.provider, "LABEL": LABEL, "SERVER_METADATA_URL": CFG.server_metadata_url,
           "CLIENT_ID": CFG.client_id, "CLIENT_SECRET": "client-secret", "COOKIE_SECRET": "c" * 40,
           "REDIRECT_URI": CFG.redirect_uri, "GROUP_ROLES": json.dumps(CFG.group_roles),
           "PASSWORD_LOGIN": str(password_login).lower()}
    for k, v in env.items():
        monkeypatch.setenv(f"CREDITRISK_SSO__{k}", v)


def _app(console: Any, *, secrets: dict[str, Any] | None = None) -> AppTest:
    at = console.app()
    at.secrets["auth"] = secrets if secrets is not None else auth_section(CFG)
    return at


def _claims(groups: list[str], **kw: Any) -> dict[str, Any]:
    return {"is_logged_in": True, "provider": CFG.provider, "iss": "https://idp.example", "sub": "00u-olivia",
            "preferred_username": "olivia.okafor", "name": "Olivia Okafor", "email": "olivia@bank.example",
            "groups": groups, "iat": int(time.time()), **kw}


def _buttons(at: AppTest) -> list[str]:
    return [b.label for b in at.button]


def test_sso_only_screen_then_the_mapped_user_reaches_the_console(console: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _enable(monkeypatch, password_login=False)
    at = _app(console).run()
    assert f"Sign in with {LABEL}" in _buttons(at) and not at.text_input  # no password form
    assert not at.exception

    at.user = _claims(["all-staff", "creditrisk-officers"])
    at.run()
    assert not at.exception and not at.error
    assert [t.value for t in at.title] == ["Welcome, Olivia Okafor"]
    assert any("Loan officer" in m.value for m in at.sidebar.markdown)
    assert at.session_state[USER_KEY].role == "loan_officer"
    with console.services.db.read() as s:
        acts = [r.action for r in reversed(AuditRepository(s).recent(10, actor="olivia.okafor"))]
    assert acts == ["sso_user_provisioned", "sso_login", "session_started"]

    at.run()  # another run of the same session: no new sign-in
    with console.services.db.read() as s:
        assert [r.action for r in AuditRepository(s).recent(10, actor="olivia.okafor")].count("sso_login") == 1

    console.services.users.set_disabled("olivia.okafor", True)  # an administrator disables her
    at.run()
    assert [e.value for e in at.error] == [SESSION_ENDED] and USER_KEY not in at.session_state
    at.run()  # still ended: no silent re-sign-in while the identity is there
    assert [e.value for e in at.error] == [SESSION_ENDED]


def test_refusal_then_break_glass_password_login(console: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _enable(monkeypatch, password_login=True)
    at = _app(console)
    at.user = _claims(["marketing"])
    at.run()
    assert [e.value for e in at.error] == [NO_MAPPED_GROUP] and USER_KEY not in at.session_state
    at.run()  # the refusal is audited once per session, not per rerun
    with console.services.db.read() as s:
        refused = [r for r in AuditRepository(s).recent(10, actor="olivia.okafor") if r.action == "sso_login_refused"]
    assert len(refused) == 1 and refused[0].payload["reason"] == "no_mapped_group"

    console.by_label(at.button, SIGN_OUT).click()
    at.run()
    at.run()  # st.logout cleared st.user: the login screen, with the SSO button and the password form
    assert f"Sign in with {LABEL}" in _buttons(at) and console.shows_login_form(at) is False
    assert [t.label for t in at.text_input] == ["Username", "Password"]

    console.login(at, console.users["admin"], console.password)  # a break-glass password account
    assert at.session_state[USER_KEY].role == "admin"
    at.run()
    assert f"Sign in with {LABEL}" not in _buttons(at) and not at.text_input


def test_secrets_that_disagree_with_the_settings_disable_sso(console: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _enable(monkeypatch, password_login=False)
    wrong = auth_section(CFG)
    wrong["okta"] = {**wrong["okta"], "client_id": "someone-else"}
    at = _app(console, secrets=wrong)
    at.user = _claims(["creditrisk-officers"])  # an identity cookie is ignored while the secrets disagree
    at.run()
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "auth.okta.client_id" in errors[0] and "someone-else" not in errors[0]
    assert f"Sign in with {LABEL}" not in _buttons(at) and USER_KEY not in at.session_state
    assert console.services.users.get("olivia.okafor") is None
