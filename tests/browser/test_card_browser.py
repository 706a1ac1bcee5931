"""A browser walk of the decision card, the notice reasons and finding an application, as a loan
officer and as an ML engineer (screenshots under test-artifacts/: card_*.png)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

T = 30_000
APP_ID = re.compile(r"Application ([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")


def _main(page: Page):
    return page.locator("[data-testid='stMain']")


def _nav(page: Page, server: Any, label: str, slug: str) -> None:
    page.locator("[data-testid='stSidebarNav'] a", has_text=label).first.click()
    page.wait_for_url(f"**/{slug}", timeout=T)
    server.wait(page)


def _clean(page: Page, where: str) -> None:
    assert page.locator("[data-testid='stException']").count() == 0, where
    assert page.locator("[data-testid='stAlertContentError']").count() == 0, where


def _score(page: Page, server: Any, number: int = 2) -> None:
    _nav(page, server, "Score an application", "score")
    picker = page.locator("[data-testid='stSelectbox']").filter(has_text="Start from a simulated example")
    picker.locator("input").click()
    page.keyboard.type(f"Example {number}:")
    page.get_by_role("option", name=re.compile(rf"^Example {number}:")).click()
    server.wait(page)
    page.get_by_role("button", name="Score", exact=True).click()
    page.locator("h4", has_text="Recommendation:").wait_for(timeout=T)
    server.wait(page)
    _clean(page, "scoring")


@pytest.fixture(scope="module")
def card_server(console_server_factory: Any) -> Any:
    """A console of this module's own: it scores examples 2 and 3 and expects each applicant to be new, while the
    shared console may already hold them from another module run earlier on the same worker (the officer flow
    scores the examples the test model denies; which modules share a worker changes from run to run)."""
    return console_server_factory(name="console-card")


def test_officer_card_notice_reasons_and_search(page: Page, card_server: Any) -> None:
    server = card_server
    # warm-up: the console's first script run imports the whole stack; on a shared, loaded machine that can
    # take longer than one navigation's wait (this is a wait, not a timing assertion)
    page.goto(server.url, timeout=180_000)
    page.locator("h1, [data-testid='stForm']").first.wait_for(timeout=180_000)
    server.login(page, "loan_officer")
    _score(page, server)
    main = _main(page)
    text = main.inner_text()
    for word in ("Probability of default", "Risk", "From the cutoff", "pts"):
        assert word in text, word
    for word in ("Confidence", "Model score", "log-odds", "cache", "engine", "Engine", "Other, specify"):
        assert word not in text, word
    assert page.get_by_text("Model details").count() == 0
    server.screenshot(page, "card_01_officer_score.png")

    # the same applicant again: the earlier application is linked and the officer is asked
    page.get_by_role("button", name="Score", exact=True).click()
    expect(main).to_contain_text("This applicant already has 1 application(s)", timeout=T)
    server.wait(page)
    assert page.locator("h4", has_text="Recommendation:").count() == 0  # no earlier result under the question
    server.screenshot(page, "card_02_same_applicant.png")
    main.locator("[data-testid='stButton'] button").filter(has_text=re.compile(r"^Open$")).first.click()
    page.wait_for_url("**/decision", timeout=T)
    server.wait(page)
    app_id = APP_ID.search(_main(page).inner_text()).group(1)
    server.screenshot(page, "card_03_decision_card.png")

    # a denial against the recommendation needs C-1 reasons; the officer's note is never printed
    page.get_by_role("tab", name="Decision", exact=True).click()
    server.wait(page)
    panel = page.get_by_role("tabpanel")
    expect(panel.get_by_text("Reasons for the notice")).to_be_visible(timeout=T)
    server.screenshot(page, "card_04_decision_form.png")

    # find it again on the Applications page by the start of its id
    _nav(page, server, "Applications", "decisions")
    page.get_by_label("Find an application by its id or the applicant's id").fill(app_id[:8])
    page.keyboard.press("Enter")
    server.wait(page)
    expect(_main(page)).to_contain_text("Applications 1–1 of 1", timeout=T)
    assert "None" not in _main(page).locator("[data-testid='stCaptionContainer']").first.inner_text()
    server.screenshot(page, "card_05_applications_search.png")
    _clean(page, "search")
    server.logout(page)

    # the ML engineer: the engine choice and the model details, in an expander
    server.login(page, "ml_engineer")
    _nav(page, server, "Score an application", "score")
    expect(_main(page).get_by_text("Engine", exact=True)).to_be_visible(timeout=T)
    _score(page, server, number=3)
    page.get_by_text("Model details").click()
    expect(_main(page)).to_contain_text("engine · cache", timeout=T)
    server.screenshot(page, "card_06_ml_engineer_details.png")
    _clean(page, "ml engineer")
