"""Two-step sign-in in a real headless Chromium: a risk manager's first sign-in enrols an authenticator (the
QR code is an image drawn by the server; the key is typed into pyotp here, as an app would read it), the
recovery codes are shown once, and later sign-ins need a fresh code; a wrong code is refused on the page, a
recovery code works once. Screenshots: test-artifacts/screenshots/mfa_*.png."""

from __future__ import annotations

import pytest
from mfa_helpers import MFA_ON, code_at

pytestmark = pytest.mark.browser
TIMEOUT_MS = 30_000
CODE_BLOCK = "[data-testid='stCode']"


@pytest.fixture(scope="module")
def mfa_server(console_server_factory):
    return console_server_factory(env=MFA_ON, name="mfa")


def _password(page, server, role: str) -> None:  # noqa: ANN001
    page.goto(server.url, timeout=TIMEOUT_MS)
    # the first run of a fresh server imports everything: slow on a busy machine
    page.get_by_label("Username", exact=True).wait_for(timeout=3 * TIMEOUT_MS)
    server.wait(page)
    page.get_by_label("Username", exact=True).fill(server.users[role])
    page.get_by_label("Password", exact=True).fill(server.password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("One-time code", exact=True).wait_for(timeout=TIMEOUT_MS)
    server.wait(page)


def _code(page, server, code: str, button: str = "Verify") -> None:  # noqa: ANN001
    page.get_by_label("One-time code", exact=True).fill(code)
    page.get_by_role("button", name=button, exact=True).click()
    server.wait(page)


def test_enrol_then_sign_in_with_codes(browser, mfa_server):
    s = mfa_server
    ctx = browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        page = ctx.new_page()
        _password(page, s, "risk_manager")
        page.get_by_role("heading", name="Set up two-step verification").wait_for(timeout=TIMEOUT_MS)
        qr = page.locator("[data-testid='stForm'] img").first
        assert qr.is_visible() and qr.evaluate("img => img.naturalWidth") > 100  # drawn, not a broken link
        assert page.get_by_role("heading", level=1).count() == 0  # nothing of the console yet
        secret = page.locator(CODE_BLOCK).first.inner_text().replace(" ", "").strip()
        assert len(secret) == 32
        s.screenshot(page, "mfa_enrolment.png")

        _code(page, s, "000000", "Verify and continue")
        assert "not accepted" in page.locator("[data-testid='stAlertContentError']").first.inner_text()
        spent = code_at(secret)  # kept: a code computed again later may belong to the next 30-second step
        _code(page, s, spent, "Verify and continue")
        page.get_by_role("heading", name="Save your recovery codes").wait_for(timeout=TIMEOUT_MS)
        codes = page.locator(CODE_BLOCK).first.inner_text().split()
        assert len(codes) == 10
        s.screenshot(page, "mfa_recovery_codes.png")
        page.get_by_role("button", name="I have saved them: continue").click()
        page.get_by_role("heading", level=1, name=f"Welcome, {s.display_names['risk_manager']}").wait_for(
            timeout=TIMEOUT_MS)
        s.logout(page)

        _password(page, s, "risk_manager")  # enrolled: the code step, no QR code
        assert page.get_by_role("heading", name="Two-step verification").is_visible()
        assert page.locator("[data-testid='stForm'] img").count() == 0
        _code(page, s, spent)  # the enrolment spent this code (replayed, or expired if the test ran long)
        assert page.get_by_role("heading", level=1).count() == 0
        nxt = code_at(secret, steps=1)
        _code(page, s, f"{nxt[:3]} {nxt[3:]}")
        page.get_by_role("heading", level=1, name=f"Welcome, {s.display_names['risk_manager']}").wait_for(
            timeout=TIMEOUT_MS)
        s.logout(page)

        _password(page, s, "risk_manager")  # a recovery code, once
        _code(page, s, codes[0])
        page.get_by_role("heading", level=1).first.wait_for(timeout=TIMEOUT_MS)
        s.logout(page)
        _password(page, s, "risk_manager")
        _code(page, s, codes[0])
        assert page.get_by_role("heading", level=1).count() == 0
        assert "not accepted" in page.locator("[data-testid='stAlertContentError']").first.inner_text()
    finally:
        ctx.close()


def test_product_lead_has_no_second_step(page, mfa_server):
    page.goto(mfa_server.url, timeout=TIMEOUT_MS)
    page.get_by_label("Username", exact=True).wait_for(timeout=3 * TIMEOUT_MS)
    mfa_server.login(page, "product_lead")
    assert page.get_by_label("One-time code", exact=True).count() == 0
    assert page.get_by_role("heading", level=1).first.inner_text().startswith("Welcome")
