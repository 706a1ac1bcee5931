"""Shadow mode in a real Chromium: the officer never sees the model's output (issue 5).

A console of its own (``console_server_factory``, so the shared console stays in full production
whatever the test order) is put in shadow mode through the services on the server's own database:
a product lead proposes, a risk manager approves. The officer scores an application and decides it
by hand; neither the score page nor the decision page (every tab, hidden ones included) shows the
PD, risk class, recommendation or reasons, and the adverse action notice carries the officer's
reason only. Full-page screenshots go to test-artifacts/screenshots/shadow_*.png.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from backend.rollout.service import CACHE_SECONDS

pytestmark = pytest.mark.browser

T = 30_000
NAV_LINK = "[data-testid='stSidebarNav'] a"
EXCEPTION = "[data-testid='stException']"
ERROR_BOX = "[data-testid='stAlertContentError']"
MODEL_WORDS = ("Recommendation", "recommend", "Probability of default", "Risk class", "Low risk", "High risk",
               "Model score", "Confidence", "What drove the score", "Principal reasons", "log-odds")
OFFICER_REASON = "Verified monthly obligations exceed what the stated salary can carry."


@pytest.fixture(scope="module")
def shadow(console_server_factory: Any) -> Iterator[tuple[Any, Any]]:
    """A console in shadow mode, and Services on the same database (for the records)."""
    from backend.container import build_services
    from backend.container.settings import load_settings

    server = console_server_factory(name="shadow")
    svc = build_services(load_settings(data_dir=server.data_dir, auth={"bcrypt_rounds": 4},
                                       model={"registry_dir": server.registry_dir}), migrate=False)
    lead, manager = svc.users.get(server.users["product_lead"]), svc.users.get(server.users["risk_manager"])
    proposed = svc.rollout.propose(lead, phase="shadow", ai_share=0.0, loan_amount_cap=25_000.0,
                                   confidence_threshold=0.7, rationale="Browser test: shadow mode first")
    svc.rollout.approve(proposed.version, manager)
    time.sleep(CACHE_SECONDS + 0.5)  # the server's RolloutService caches the phase in force for a moment
    try:
        yield server, svc
    finally:
        svc.close()
        server.stop()  # nothing else uses this console


def _main(page: Page) -> Locator:
    return page.locator("[data-testid='stMain']")


def _assert_clean(page: Page, where: str) -> None:
    assert page.locator(EXCEPTION).count() == 0, f"{where}: {page.locator(EXCEPTION).all_inner_texts()}"
    assert page.locator(ERROR_BOX).count() == 0, f"{where}: {page.locator(ERROR_BOX).all_inner_texts()}"


def _assert_no_model_output(page: Page, result: Any, where: str, *, decided: bool = False) -> None:
    """Nothing of the model anywhere in the main area: visible text and hidden tabs (text_content)."""
    text = _main(page).text_content() or ""
    assert not [w for w in MODEL_WORDS if w in text], (where, [w for w in MODEL_WORDS if w in text])
    assert not re.search(rf"(?<![\d.]){re.escape(f'{result.pd:.1%}')}", text), (where, f"{result.pd:.1%}")
    assert not [r["text"] for r in result.reasons if r["text"] in text], where
    assert page.locator("[data-testid='stMetric'], [data-testid='stPlotlyChart']").count() == 0, where
    if not decided:
        assert "Deny:" not in text and "Approve:" not in text


def _nav(page: Page, server: Any, title: str, stem: str) -> None:
    page.locator(NAV_LINK, has_text=title).first.click()
    page.wait_for_url(f"**/{stem}", timeout=T)
    page.get_by_role("heading", level=1).first.wait_for(timeout=T)
    server.wait(page)


def _tab(page: Page, server: Any, name: str) -> Locator:
    tab = page.get_by_role("tab", name=name, exact=True)
    tab.click()
    expect(tab).to_have_attribute("aria-selected", "true", timeout=T)
    server.wait(page)
    return page.get_by_role("tabpanel")


def test_shadow_mode_officer_sees_no_model_output(page: Page, shadow: tuple[Any, Any]) -> None:
    server, svc = shadow
    page.goto(server.url, timeout=180_000)  # warm-up: the first script run imports the stack (slow when loaded)
    page.locator("h1, [data-testid='stForm']").first.wait_for(timeout=180_000)
    server.login(page, "loan_officer")
    _nav(page, server, "Score an application", "score")
    page.get_by_role("button", name="Score", exact=True).click()
    recorded = _main(page).get_by_text("Recorded. This application is in shadow mode: decide it without the AI.")
    recorded.wait_for(timeout=T)
    server.wait(page)
    _assert_clean(page, "score page")

    manager = svc.users.get(server.users["risk_manager"])
    rows = svc.decisions.decisions_for(manager)
    assert len(rows) == 1 and rows[0].submitted_by == server.users["loan_officer"]
    result = svc.workspace.result(rows[0].prediction_id, actor=manager)  # what the officer must not see
    assert (result.arm, result.phase, result.ai_visible) == ("control", "shadow", False)
    _assert_no_model_output(page, result, "score page")
    server.screenshot(page, "shadow_score.png")

    page.get_by_role("button", name="Open the application to decide it").click()
    page.wait_for_url("**/decision", timeout=T)
    page.get_by_role("tab", name="Application").wait_for(timeout=T)
    server.wait(page)
    _assert_clean(page, "decision page")
    main = _main(page)
    expect(main).to_contain_text("This application is in shadow mode: decide it without the AI.")
    expect(main).to_contain_text("Loan amount requested")
    _assert_no_model_output(page, result, "decision page")
    server.screenshot(page, "shadow_decision_application.png")

    panel = _tab(page, server, "Decision")
    form = panel.locator("[data-testid='stForm']")
    form.locator("label").filter(has_text=re.compile(r"^Deny$")).click()
    picker = form.locator("[data-testid='stMultiSelect']")
    picker.locator("input").click()
    page.keyboard.type("Other, specify")  # the list is long and virtualised: filter it first
    page.get_by_role("option", name="Other, specify…").click()
    page.keyboard.press("Escape")
    form.get_by_label(re.compile(r"^Other, specify \(printed")).fill(OFFICER_REASON)
    form.get_by_role("button", name="Record decision").click()
    expect(main.get_by_text("Decision recorded: Deny.")).to_be_visible(timeout=T)
    server.wait(page)
    _assert_clean(page, "after the manual decision")
    _assert_no_model_output(page, result, "after the manual decision", decided=True)

    notice = _tab(page, server, "Adverse action notice")
    expect(notice).to_contain_text("Equal Credit Opportunity Act", timeout=T)
    letter = " ".join((notice.inner_text() or "").split())
    assert OFFICER_REASON in letter
    _assert_no_model_output(page, result, "the notice", decided=True)
    server.screenshot(page, "shadow_decision_notice.png")

    view = svc.decisions.current(result.application_id, actor=manager)
    assert (view.outcome, view.status, view.is_override) == ("deny", "final", False)
    assert view.notice_reasons == (f"other:{OFFICER_REASON}",)
    assert view.decision_seconds is not None and view.decision_seconds > 0
