"""The monitoring and product-analytics pages in a real Chromium, on a simulated history.

One console of its own (``console_server_factory``) serves a data directory prepared before it starts
(``monitoring_data.build_history``: six months of ``seed-demo`` at a small volume, the September 2025
data-quality incident, the monitors run weekly). Roles and pages come from ``backend.domain.permissions.POLICY``
and ``app.navigation.PAGES``, never from lists typed here. Each role logs in once (a browser context per
role, kept for the module):

1. every role visits each of its pages by clicking the sidebar: the title, no exception, no error box
   saying the page failed, a full-page screenshot ``monitoring-<page>-<role>.png``;
2. each page's content on the data (the first role allowed to see it): drift heatmap with the incident
   weeks in the act band and the week's top features, the resolved September drift alert, the registry
   events timeline, the fairness threshold wording, the phase decision panel, a $ per request, p95;
3. a role opening a page's URL that it may not see gets none of the page: the address stays, the refusal says
   why and which roles may see it (the page's own code never runs); still logged in.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from monitoring_data import build_history, console_settings_env
from playwright.sync_api import Browser, BrowserContext, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from app.components.registry_views import ACTION_LABELS as EVENT_LABELS
from app.guard import NOT_ALLOWED
from app.navigation import PAGES, PageSpec
from backend.alerts.rules import RULES_BY_NAME
from backend.domain.permissions import POLICY
from backend.monitoring.config import MonitoringSettings
from backend.monitoring.drift import period_of
from backend.monitoring.fairness import THRESHOLD_LABEL
from backend.simulation.operations import SimConfig

pytestmark = pytest.mark.browser

T = 30_000
NAV = "[data-testid='stSidebarNav']"
NAV_LINK = f"{NAV} a"
VIEW_MORE = re.compile(r"^View \d+ more$")  # Streamlit folds a long navigation
MAIN = "[data-testid='stMain']"
EXCEPTION = "[data-testid='stException']"
ERROR_BOX = "[data-testid='stAlertContentError']"
# an error box that reports a failure (pages also use st.error for findings, e.g. a p95 above target)
PAGE_FAILED = re.compile(r"\bfailed\b|cannot be read|traceback|\b\w+(Error|Exception):|Please log in", re.I)

FILES = ("models.py", "drift.py", "performance.py", "fairness.py", "alerts.py", "phases.py", "latency.py", "costs.py",
         "readiness.py")
SPECS: list[PageSpec] = [p for p in PAGES if p.file in FILES]  # navigation order
# text only the page itself shows (refusal: none of it may appear)
MARKERS = {"models": "Champion vs challenger", "drift": "PSI by period", "performance": "By origination vintage",
           "fairness": THRESHOLD_LABEL, "alerts": "Open and acknowledged", "phases": "Should we advance?",
           "latency": "End to end p95", "costs": "Per scoring request", "readiness": "Evidence history"}


def allowed_roles(spec: PageSpec) -> list[str]:
    return [r.value for r, perms in POLICY.items() if spec.perm in perms]


def pages_of(role: str) -> list[PageSpec]:
    return [s for s in SPECS if role in allowed_roles(s)]


PSI_ACT = MonitoringSettings().psi_act  # the console runs on the defaults (the factory drops CREDITRISK_* overrides)
ROLES_WITH_PAGES = [r.value for r in POLICY if pages_of(r.value)]
ROLES_REFUSED = [r.value for r in POLICY if len(pages_of(r.value)) < len(SPECS)]


def incident_weeks() -> list[str]:
    """ISO weeks lying wholly inside the simulated data-quality incident (2025-09-08..29)."""
    lo, hi = SimConfig().incident_window
    weeks = {period_of(lo + timedelta(days=d), "week") for d in range((hi - lo).days)}
    return sorted(label for label, start, end in weeks if start >= lo and end <= hi)


# -- fixtures -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def monitoring_server(console_server_factory: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A console on the simulated history. Its data directory is ours (``env``), not ``server.data_dir``
    (which only holds the log); the factory adds one user per role to it before the server starts."""
    data_dir = tmp_path_factory.mktemp("monitoring_data")
    build_history(data_dir, console_server_factory.trained_registry())
    server = console_server_factory(env=console_settings_env(data_dir), name="monitoring")
    try:
        yield server
    finally:
        server.stop()


class Sessions:
    """One logged-in page per role for the whole module (one login per role)."""

    def __init__(self, browser: Browser, context_args: dict[str, Any], server: Any) -> None:
        self.browser, self.context_args, self.server = browser, context_args, server
        self.pages: dict[str, tuple[BrowserContext, Page]] = {}

    def __call__(self, role: str) -> Page:
        if role not in self.pages:
            context = self.browser.new_context(**self.context_args)
            page = context.new_page()
            self.pages[role] = (context, page)
            self.server.login(page, role)
            _wait_for_cookie(context, self.server.cookie_name)  # a direct URL then opens a logged-in session
            self.server.wait(page)
        return self.pages[role][1]

    def close(self) -> None:
        for context, _ in self.pages.values():
            context.close()


@pytest.fixture(scope="module")
def sessions(browser: Browser, browser_context_args: dict[str, Any], monitoring_server: Any) -> Iterator[Sessions]:
    s = Sessions(browser, browser_context_args, monitoring_server)
    try:
        yield s
    finally:
        s.close()


# -- helpers ------------------------------------------------------------------------------------
def _wait_for_cookie(context: BrowserContext, name: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(c["name"] == name for c in context.cookies()):
            return
        time.sleep(0.2)
    raise AssertionError(f"no {name!r} cookie after login")


def _h1(page: Page) -> list[str]:
    return list(dict.fromkeys(t.strip() for t in page.locator("h1").all_inner_texts()))


def _main_text(page: Page) -> str:
    return page.locator(MAIN).inner_text()


def _nav_link(page: Page, stem: str) -> Any:
    link = page.locator(f"{NAV_LINK}[href$='/{stem}']")
    if not link.count():
        more = page.locator(NAV).get_by_text(VIEW_MORE)
        if more.count():
            more.first.click()
    expect(link).to_have_count(1, timeout=T)
    return link


def _go(page: Page, server: Any, spec: PageSpec) -> None:
    """Click the page in the sidebar and wait until its run is over."""
    stem = spec.path.stem
    link = _nav_link(page, stem)
    assert spec.title in link.inner_text()
    link.click()
    try:
        page.wait_for_url(f"**/{stem}", timeout=10_000)
    except PlaywrightTimeout:  # a click landing while the previous run is still finishing can be lost: once more
        link.click()
        page.wait_for_url(f"**/{stem}", timeout=T)
    page.locator("h1", has_text=spec.title).first.wait_for(timeout=2 * T)
    server.wait(page)


def _assert_page_ok(page: Page, spec: PageSpec, where: str) -> None:
    assert page.locator(EXCEPTION).count() == 0, f"{where}: {page.locator(EXCEPTION).all_inner_texts()}"
    failed = [t for t in page.locator(ERROR_BOX).all_inner_texts() if PAGE_FAILED.search(t)]
    assert not failed, f"{where}: {failed}"
    assert _h1(page) == [spec.title], f"{where}: {_h1(page)}"
    assert NOT_ALLOWED not in _main_text(page), where


def _figures(page: Page) -> list[list[dict[str, Any]]]:
    """The traces of every plotly chart in the main area, as the browser holds them."""
    return page.evaluate("""() => [...document.querySelectorAll("[data-testid='stMain'] .js-plotly-plot")].map(
        g => (g.data || []).map(t => ({type: t.type, name: t.name, x: t.x, y: t.y, customdata: t.customdata,
                                       text: t.text, orientation: t.orientation})))""")


def _grids(page: Page, columns: set[str], root: str = MAIN) -> list[dict[str, Any]]:
    """The st.dataframes under ``root`` having ``columns``: header and the rows the grid has rendered (cell
    texts, from the grid's accessibility table), once at least one has rows (grids render after the run)."""
    script = """([root, columns]) => [...document.querySelectorAll(root + " [data-testid='stDataFrame']")].map(d => ({
        header: [...d.querySelectorAll("thead th")].map(c => c.textContent),
        rows: [...d.querySelectorAll("tbody tr")].map(r => [...r.querySelectorAll("td")].map(c => c.textContent))}))
        .filter(g => columns.every(c => g.header.includes(c)))"""
    deadline = time.monotonic() + T / 1000
    while True:
        grids = page.evaluate(script, [root, sorted(columns)])
        if any(g["rows"] for g in grids) or time.monotonic() > deadline:
            return grids
        time.sleep(0.25)


def _metric(page: Page, label: str) -> str:
    metric = page.locator("[data-testid='stMetric']").filter(has=page.locator("[data-testid='stMetricLabel']",
                                                                              has_text=label))
    expect(metric).to_have_count(1, timeout=T)
    return metric.locator("[data-testid='stMetricValue']").inner_text().strip()


def _tab(page: Page, server: Any, name: str) -> Any:
    tab = page.get_by_role("tab", name=name, exact=True)
    tab.click()
    expect(tab).to_have_attribute("aria-selected", "true", timeout=T)
    server.wait(page)
    return page.get_by_role("tabpanel").filter(visible=True)


# -- 1. every role, every page it may see ---------------------------------------------------------
@pytest.mark.parametrize("role", ROLES_WITH_PAGES)
def test_role_visits_its_pages(sessions: Sessions, monitoring_server: Any, role: str) -> None:
    page, server = sessions(role), monitoring_server
    for spec in pages_of(role):
        where = f"{role} on {spec.file}"
        _go(page, server, spec)
        _assert_page_ok(page, spec, where)
        assert MARKERS[spec.path.stem] in _main_text(page), f"{where}: the page stopped before its content"
        server.screenshot(page, f"monitoring-{spec.path.stem}-{role}.png")


# -- 2. what each page shows on the simulated history ---------------------------------------------
def check_drift(page: Page, server: Any, role: str) -> None:
    charts = page.locator(f"{MAIN} [data-testid='stPlotlyChart']")
    expect(charts.first).to_be_visible(timeout=T)
    heat = next((t for fig in _figures(page) for t in fig if t["type"] == "heatmap"), None)
    assert heat is not None, "no PSI heatmap"
    weeks, act = incident_weeks(), PSI_ACT
    assert weeks and set(weeks) <= set(heat["x"]), (weeks, heat["x"])
    for week in weeks:
        col = heat["x"].index(week)
        column = [v for v in (row[col] for row in heat["customdata"]) if isinstance(v, int | float) and v == v]
        assert max(column) > act, f"{week}: highest PSI {max(column):.3f} is not in the act band (> {act})"
    axis = charts.first.text_content() or ""
    assert all(w in axis for w in weeks), "the incident weeks are not labelled on the heatmap"

    week = weeks[1] if len(weeks) > 1 else weeks[0]  # the incident's second week: a full week of corrupted data
    picker = page.locator(".st-key-drift_period")
    picker.locator("input").click()
    picker.locator("input").fill(week)  # the list is virtualized: filter it to the week
    page.get_by_role("option", name=week, exact=True).click()
    page.get_by_text(f"Top drifting in {week}").wait_for(timeout=T)
    server.wait(page)
    bars = [t for fig in _figures(page) for t in fig if t["type"] == "bar" and t.get("orientation") == "h"]
    assert bars and any(str(x).endswith(" act") for x in bars[0]["text"]), bars[:1]
    server.screenshot(page, f"monitoring-drift-{week}-{role}.png")


def check_alerts(page: Page, server: Any, role: str) -> None:
    label = RULES_BY_NAME["drift"].label
    columns = {"rule", "status", "opened (UTC)"}

    def resolved_drift() -> list[list[str]]:
        found = []
        for grid in _grids(page, columns):
            i, s, o = (grid["header"].index(c) for c in ("rule", "status", "opened (UTC)"))
            found += [r for r in grid["rows"] if r[i] == label and r[s] == "resolved" and r[o].startswith("2025-09")]
        return found

    # the grids render one by one after the run: the open-alerts grid can have rows before "Resolved" has any
    deadline = time.monotonic() + T / 1000
    while not (found := resolved_drift()) and time.monotonic() < deadline:
        time.sleep(0.25)
    assert found, f"no resolved {label!r} alert opened in September 2025: {_grids(page, columns)}"
    assert "Resolved" in _main_text(page)


def check_models(page: Page, server: Any, role: str) -> None:
    panel = _tab(page, server, "Events")
    expect(panel.locator("[data-testid='stPlotlyChart']")).to_have_count(1, timeout=T)
    names = {t["name"] for fig in _figures(page) for t in fig if t["type"] == "scatter"}
    assert {EVENT_LABELS["register"], EVENT_LABELS["promote"]} <= names, names
    rows = [r for g in _grids(page, {"event", "version"}, "[role='tabpanel']") for r in g["rows"]]
    assert len(rows) >= 2, rows
    server.screenshot(page, f"monitoring-models-events-{role}.png")


def check_fairness(page: Page, server: Any, role: str) -> None:
    text = _main_text(page)
    assert THRESHOLD_LABEL in text
    assert re.fullmatch(r"0\.\d\d", _metric(page, "Screening threshold"))
    expect(page.locator(f"{MAIN} [data-testid='stPlotlyChart']").first).to_be_visible(timeout=T)


def check_phases(page: Page, server: Any, role: str) -> None:
    panel = page.locator("[data-testid='stVerticalBlock']").filter(
        has=page.get_by_role("heading", name="Should we advance?")).last  # the innermost: the bordered panel
    expect(panel).to_be_visible(timeout=T)
    verdict = panel.locator("[data-testid='stAlert']")
    assert verdict.count() >= 1, "the decision panel has no verdict"
    assert verdict.first.inner_text().strip(), "empty verdict"
    assert "Per phase and arm" in _main_text(page)


def check_costs(page: Page, server: Any, role: str) -> None:
    value = _metric(page, "Per scoring request")
    assert re.fullmatch(r"\$\d[\d,]*\.\d+|\$\d\.\d+e-\d+", value), value
    assert _metric(page, "Total cost").startswith("$")
    expect(page.locator(f"{MAIN} [data-testid='stPlotlyChart']").first).to_be_visible(timeout=T)


def check_latency(page: Page, server: Any, role: str) -> None:
    assert re.fullmatch(r"\d+\.\d\d s", _metric(page, "End to end p95"))
    assert re.fullmatch(r"[\d,]+\.\d ms", _metric(page, "Scoring request p95"))
    assert any(g["rows"] for g in _grids(page, {"measure", "p95 ms"})), "no percentile table"


def check_performance(page: Page, server: Any, role: str) -> None:
    statuses = {r[g["header"].index("Status")] for g in _grids(page, {"Vintage", "Status"}) for r in g["rows"]}
    assert "mature" in statuses, statuses  # outcomes are observed as of 2026-11: the first vintages are mature
    expect(page.locator(f"{MAIN} [data-testid='stPlotlyChart']").first).to_be_visible(timeout=T)


def check_readiness(page: Page, server: Any, role: str) -> None:
    expect(page.locator(f"{MAIN} [data-testid='stAlert']").filter(has_text="Not ready for production").first
           ).to_be_visible(timeout=T)
    rows = [dict(zip(g["header"], r, strict=False)) for g in _grids(page, {"status", "item", "evidence"})
            for r in g["rows"]]
    by_item = {r["item"]: r for r in rows}
    assert "held-out AUC" in by_item["Champion: held-out accuracy and gates"]["evidence"], rows[:1]
    assert "Lowest disparate impact" in by_item["Fairness audit passed"]["evidence"]  # the weekly monitor runs
    assert all(r["status"].split()[0] in ("GREEN", "RED") for r in rows)
    assert "Sign-offs" in _main_text(page)
    server.screenshot(page, f"monitoring-readiness-checklist-{role}.png")


CHECKS: dict[str, Callable[[Page, Any, str], None]] = {
    "drift": check_drift, "alerts": check_alerts, "models": check_models, "fairness": check_fairness,
    "phases": check_phases, "costs": check_costs, "latency": check_latency, "performance": check_performance,
    "readiness": check_readiness}


def test_every_page_has_a_check() -> None:
    assert len(SPECS) == len(FILES) and {s.path.stem for s in SPECS} == set(CHECKS) == set(MARKERS)


@pytest.mark.parametrize("spec", SPECS, ids=[s.path.stem for s in SPECS])
def test_page_content(sessions: Sessions, monitoring_server: Any, spec: PageSpec) -> None:
    role = allowed_roles(spec)[0]
    page = sessions(role)
    _go(page, monitoring_server, spec)
    _assert_page_ok(page, spec, f"{role} on {spec.file}")
    CHECKS[spec.path.stem](page, monitoring_server, role)
    _assert_page_ok(page, spec, f"{role} on {spec.file}, after the checks")


# -- 3. refusal ---------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ROLES_REFUSED)
def test_forbidden_urls_show_nothing(sessions: Sessions, monitoring_server: Any, role: str) -> None:
    page, server = sessions(role), monitoring_server
    display = server.display_names[role]
    mine = pages_of(role)
    if mine:  # control: a direct URL does open a page the role may see
        server.open(page, mine[0].path.stem)
        expect(page.locator("h1", has_text=mine[0].title).first).to_be_visible(timeout=2 * T)
    for spec in (s for s in SPECS if s not in mine):
        stem, where = spec.path.stem, f"{role} at /{spec.path.stem}"
        server.open(page, stem)
        assert not server.shows_login_form(page), f"{where}: logged out, so the refusal proves nothing"
        assert display in page.locator("[data-testid='stSidebar']").inner_text(), where
        text = _main_text(page)
        # the address stays (no silent landing on Home) and says why, and who may see the page
        assert page.url.rstrip("/").endswith(f"/{stem}"), f"{where}: sent to {page.url} with nothing said"
        expect(page.get_by_text(NOT_ALLOWED)).to_be_visible(timeout=T)
        text = _main_text(page)
        assert "Ask an administrator" in text and "is for:" in text, f"{where}: {text[:300]}"
        assert spec.title not in _h1(page), f"{where}: {_h1(page)}"
        assert MARKERS[stem] not in text, where
        assert page.locator(EXCEPTION).count() == 0, f"{where}: {page.locator(EXCEPTION).all_inner_texts()}"
        assert page.locator(f"{NAV_LINK}[href$='/{stem}']").count() == 0, f"{where}: in the sidebar"
    server.screenshot(page, f"monitoring-refused-{role}.png")
