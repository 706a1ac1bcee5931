"""The console in a real headless Chromium: login and logout, the auth cookie, every role's pages
reached through the sidebar navigation, and full-page screenshots under test-artifacts/screenshots/.
"""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from app.guard import NOT_ALLOWED
from app.navigation import pages_for
from backend.domain.permissions import POLICY, ROLE_LABELS, Role

pytestmark = pytest.mark.browser

ROLE_NAMES = [r.value for r in POLICY]
EXCEPTION = "[data-testid='stException']"
ERROR_BOX = "[data-testid='stAlertContentError']"
NAV_LINK = "[data-testid='stSidebarNav'] a"


def _h1(page) -> list[str]:  # noqa: ANN001
    """Page titles, once each: right after a rerun Streamlit can still show the previous run's copy."""
    return list(dict.fromkeys(t.strip() for t in page.locator("h1").all_inner_texts()))


def _assert_no_errors(page, where: str) -> None:  # noqa: ANN001
    assert page.locator(EXCEPTION).count() == 0, f"{where}: {page.locator(EXCEPTION).all_inner_texts()}"
    assert page.locator(ERROR_BOX).count() == 0, f"{where}: {page.locator(ERROR_BOX).all_inner_texts()}"


def _auth_cookie(context, name: str, timeout: float = 15.0) -> dict | None:  # noqa: ANN001
    """The cookie is written by the console's cookie script after the login run: poll for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [c for c in context.cookies() if c["name"] == name]
        if found:
            return found[0]
        time.sleep(0.2)
    return None


def test_officer_logs_in_and_out(page, console_server):
    console_server.login(page, "loan_officer")
    assert _h1(page) == [f"Welcome, {console_server.display_names['loan_officer']}"]
    _assert_no_errors(page, "home")
    console_server.screenshot(page, "home_loan_officer.png")

    console_server.logout(page)
    assert console_server.shows_login_form(page)
    assert not _h1(page)
    assert page.get_by_role("button", name="Log out").count() == 0

    page.reload()  # a fresh session: the browser's cookie must not log the officer back in
    console_server.open(page)
    assert console_server.shows_login_form(page) and not _h1(page)


def test_copied_cookie_stops_working_after_logout(browser, console_server):
    name = console_server.cookie_name
    contexts = []

    def fresh(cookies=None):  # noqa: ANN001, ANN202
        ctx = browser.new_context(viewport={"width": 1366, "height": 900})
        contexts.append(ctx)
        if cookies:
            ctx.add_cookies(cookies)
        return ctx, ctx.new_page()

    try:
        ctx, page = fresh()
        console_server.login(page, "loan_officer")
        cookie = _auth_cookie(ctx, name)
        assert cookie is not None, f"no {name!r} cookie after login; cookies: {[c['name'] for c in ctx.cookies()]}"
        copied = ctx.cookies()

        # control: while the session lives, the copied cookie does log in (so the check below means something)
        _, thief = fresh(copied)
        console_server.open(thief)
        assert _h1(thief) == [f"Welcome, {console_server.display_names['loan_officer']}"]

        console_server.logout(page)
        deadline = time.monotonic() + 15
        while any(c["name"] == name for c in ctx.cookies()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [c for c in ctx.cookies() if c["name"] == name], "log-out left the cookie in the browser"

        _, late = fresh(copied)
        console_server.open(late)
        assert console_server.shows_login_form(late), _h1(late)
        assert not _h1(late)

        # the session is ended everywhere: the control tab is logged out on its next run
        thief.reload()
        console_server.open(thief)
        assert console_server.shows_login_form(thief) and not _h1(thief)
    finally:
        for ctx in contexts:
            ctx.close()


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_every_role_home_and_pages(page, console_server, role):
    """Home page screenshot per role, then every page reached by clicking the sidebar navigation."""
    console_server.login(page, role)
    display = console_server.display_names[role]
    assert _h1(page) == [f"Welcome, {display}"]
    _assert_no_errors(page, f"{role} home")
    sidebar = page.locator("[data-testid='stSidebar']").inner_text()
    assert display in sidebar and ROLE_LABELS[Role(role)] in sidebar
    console_server.screenshot(page, f"home_{role}.png")

    specs = pages_for(role)
    nav = [t.strip().splitlines()[-1].strip() for t in page.locator(NAV_LINK).all_inner_texts()]  # drop the icon name
    # Streamlit hides the navigation when there is a single page
    assert sorted(nav) == (sorted(s.title for s in specs) if len(specs) > 1 else []), nav

    for spec in specs:
        if spec.file == "home.py":
            continue
        page.locator(NAV_LINK, has_text=spec.title).first.click()
        page.wait_for_url(f"**/{spec.path.stem}", timeout=30_000)
        page.get_by_role("heading", level=1).first.wait_for(timeout=30_000)
        console_server.wait(page)
        where = f"{role} on {spec.file}"
        assert page.locator(EXCEPTION).count() == 0, f"{where}: {page.locator(EXCEPTION).all_inner_texts()}"
        assert NOT_ALLOWED not in page.locator("[data-testid='stMain']").inner_text(), where
        assert _h1(page), where
        console_server.screenshot(page, f"page_{role}_{spec.path.stem}.png")

    console_server.logout(page)


def test_forbidden_url_does_not_open_the_page(page, console_server):
    """An officer typing the Users page's URL gets no part of it."""
    console_server.login(page, "loan_officer")
    console_server.open(page, "users")
    assert "Users" not in _h1(page)
    main = page.locator("[data-testid='stMain']").inner_text()
    assert "Add a user" not in main and "Disable or enable" not in main
    assert page.locator(EXCEPTION).count() == 0


def test_officer_scores_an_application(page, console_server):
    """The main flow end to end: the score page's form, the decision card, reasons and chart."""
    console_server.login(page, "loan_officer")
    page.locator(NAV_LINK, has_text="Score an application").first.click()
    page.get_by_role("button", name="Score").wait_for(timeout=30_000)
    console_server.wait(page)
    _assert_no_errors(page, "score form")
    page.get_by_role("button", name="Score").click()
    page.get_by_text("Recommendation:").wait_for(timeout=30_000)
    console_server.wait(page)
    assert page.locator(EXCEPTION).count() == 0, page.locator(EXCEPTION).all_inner_texts()
    assert page.get_by_text("Principal reasons").is_visible()
    console_server.screenshot(page, "score_result_loan_officer.png")


def test_a_link_opened_signed_out_opens_its_page_after_the_sign_in(page, console_server):
    """A colleague's link to a page, opened while signed out: the form keeps the address, and the sign-in lands
    on that page, not on Home (the address used to fall back to Home before the form was shown)."""
    console_server.open(page, "decisions")
    assert console_server.shows_login_form(page)
    assert page.url.rstrip("/").endswith("/decisions"), page.url
    page.get_by_label("Username", exact=True).fill(console_server.users["loan_officer"])
    page.get_by_label("Password", exact=True).fill(console_server.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("h1", has_text="Applications").first).to_be_visible(timeout=30_000)
    assert page.url.rstrip("/").endswith("/decisions"), page.url
