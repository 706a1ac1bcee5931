"""The console's second sign-in step through AppTest: enrolment (QR code, key, first code, recovery codes
shown once), then sign-in with a code; wrong, reused and look-alike codes refused; a recovery code once;
the password alone never starts a session; a role without the duty signs in with its password."""

from __future__ import annotations

import dataclasses

import pytest
from mfa_helpers import MFA_ENV, code_at, enrol, spent_code

from app.guard import USER_KEY
from app.navigation import PAGES
from backend.identity.auth import MFA_CODE_FAILED


@pytest.fixture
def mfa_console(console, monkeypatch):
    """The console fixture with the second factor required; ``services`` read the same settings."""
    from backend.container import build_services
    from backend.container.settings import load_settings

    monkeypatch.setenv(MFA_ENV, "true")
    console.clear_caches()  # the app builds its services from the environment on its first run
    svc = build_services(load_settings())
    yield dataclasses.replace(console, services=svc)
    svc.close()


def _code_form(at):
    return [t for t in at.text_input if t.label == "One-time code"]


def _submit_code(c, at, code: str, button: str = "Verify"):
    c.by_label(at.text_input, "One-time code").input(code)
    c.by_label(at.button, button).click()
    return at.run()


def _signed_in(at) -> bool:
    return at.session_state[USER_KEY] is not None if USER_KEY in at.session_state else False


def _audit(c, n=10):
    return [(r["action"], (r.get("payload") or {}).get("reason")) for r in c.services.audit.recent(n)]


def test_first_sign_in_enrols_with_a_qr_code_and_shows_recovery_codes_once(mfa_console):
    c = mfa_console
    at = c.login(c.app().run(), c.users["risk_manager"], c.password)
    assert _code_form(at) and not _signed_in(at)
    assert any("Set up two-step verification" in s.value for s in at.subheader)
    assert len(at.get("image")) == 1  # the QR code, drawn on the server
    key = at.code[0].value.replace(" ", "")
    assert len(key) == 32
    at = _submit_code(c, at, "000000", "Verify and continue")
    assert not _signed_in(at) and at.error[0].value == MFA_CODE_FAILED
    at = _submit_code(c, at, code_at(key), "Verify and continue")
    assert not _signed_in(at)  # the recovery codes first
    codes = at.code[0].value.split("\n")
    assert len(codes) == 10 and all(len(x) == 19 for x in codes)
    c.by_label(at.button, "I have saved them: continue").click()
    at = at.run()
    assert _signed_in(at) and not c.shows_login_form(at)
    actions = [a for a, _ in _audit(c, 12)]
    assert {"mfa_enrolment_started", "mfa_enrolled", "login_succeeded", "session_started"} <= set(actions)
    assert ("login_failed", "mfa_bad_code") in _audit(c, 12)


def test_enrolled_user_signs_in_with_a_code_once(mfa_console):
    c = mfa_console
    secret, _ = enrol(c.services, c.users["admin"], c.password)
    at = c.login(c.app().run(), c.users["admin"], c.password)
    assert any("Two-step verification" in s.value for s in at.subheader) and not at.get("image")
    assert not _signed_in(at)  # the password alone starts nothing
    reused = spent_code(secret)  # the code the enrolment spent
    at = _submit_code(c, at, reused)
    assert not _signed_in(at) and at.error[0].value == MFA_CODE_FAILED
    assert _audit(c, 1)[0][1] in ("mfa_replayed", "mfa_bad_code")
    at = _submit_code(c, at, code_at(secret, steps=1).translate(str.maketrans("0123456789", "０１２３４５６７８９")))
    assert not _signed_in(at) and _audit(c, 1) == [("login_failed", "mfa_malformed")]
    nxt = code_at(secret, steps=1)
    at = _submit_code(c, at, f"{nxt[:3]} {nxt[3:]}")
    assert _signed_in(at) and at.session_state[USER_KEY].username == c.users["admin"]


def test_recovery_code_signs_in_once(mfa_console):
    c = mfa_console
    _, codes = enrol(c.services, c.users["ml_engineer"], c.password)
    at = _submit_code(c, c.login(c.app().run(), c.users["ml_engineer"], c.password), codes[0])
    assert _signed_in(at)
    c.clear_caches()
    at = _submit_code(c, c.login(c.app().run(), c.users["ml_engineer"], c.password), codes[0])
    assert not _signed_in(at) and _audit(c, 1) == [("login_failed", "mfa_recovery_used")]


def test_back_to_sign_in_and_wrong_password_show_no_code_step(mfa_console):
    c = mfa_console
    at = c.login(c.app().run(), c.users["loan_officer"], "wrong password!")
    assert c.shows_login_form(at) and not _code_form(at)
    at = c.login(at, c.users["loan_officer"], c.password)
    assert _code_form(at)
    c.by_label(at.button, "Back to sign in").click()
    at = at.run()
    assert c.shows_login_form(at) and not _signed_in(at)


def test_product_lead_signs_in_with_password_only(mfa_console):
    c = mfa_console
    at = c.login(c.app().run(), c.users["product_lead"], c.password)
    assert _signed_in(at) and not _code_form(at)


def test_admin_resets_another_users_factor_on_the_users_page(mfa_console):
    c = mfa_console
    admin_secret, _ = enrol(c.services, c.users["admin"], c.password)
    enrol(c.services, c.users["risk_manager"], c.password)
    at = _submit_code(c, c.login(c.app().run(), c.users["admin"], c.password), code_at(admin_secret, steps=1))
    assert _signed_in(at)
    at.switch_page(str(next(p for p in PAGES if p.file == "users.py").path)).run()
    assert not at.exception, at.exception
    pick = c.by_label(at.selectbox, "User with a second factor")
    assert pick.options == [c.users["risk_manager"]]  # never one's own
    pick.select(c.users["risk_manager"])
    c.by_label(at.button, "Reset second factor").click()
    at = at.run()
    assert any("reset" in s.value for s in at.success), [s.value for s in at.success]
    row = c.services.audit.recent(1)[0]
    assert row["action"] == "mfa_reset" and row["actor"] == c.users["admin"]
    assert not next(u for u in c.services.users.list() if u["username"] == c.users["risk_manager"])["second_factor"]
