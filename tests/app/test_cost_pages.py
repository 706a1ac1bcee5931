"""The latency and cost pages: shown to product leads, ML engineers and admins with the service's
figures, refused to loan officers; the what-if slider changes the saving by the recorded LLM cost."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert
from streamlit.testing.v1 import AppTest

from app.components.cost_views import PRICE_NOTE, usd
from app.guard import NOT_ALLOWED, USER_KEY
from backend.domain import Actor
from backend.platform.db.tables_book import Application, Decision, LLMUsageRow, Outcome, Prediction

PAGES = Path(__file__).resolve().parents[2] / "pages"
ROLES = ["product_lead", "ml_engineer", "admin"]
LLM_CALL_USD = 1.50


def _previous_month() -> datetime:
    first = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return (first - timedelta(days=1)).replace(day=1)


def _usage(console) -> str:
    """Six scored applications last month, four decided (two funded) and explained at $1.50 a call."""
    start = _previous_month()
    with console.services.db.transaction() as s:
        for i in range(6):
            at = start + timedelta(days=3 + i, hours=10)
            aid, pid = uuid.uuid4(), uuid.uuid4()
            s.execute(insert(Application).values(
                id=aid, applicant_id=aid.hex[:12], features={}, protected={}, loan_amount=5000.0, applied_at=at,
                created_at=at, source="simulated", arm="ai", phase="pilot", ai_visible=True))
            s.execute(insert(Prediction).values(
                id=pid, application_id=aid, model_name="m", model_version="v1", model_role="primary", engine="compiled",
                pd=0.1, raw_score=0.1, risk_class="low_risk", confidence=0.9, recommendation="approve",
                policy_reasons=[], reasons=[], attributions={}, cache_hit=i == 5, latency_ms=0.0, created_at=at,
                timings={"validate_ms": 0.5 + i, "score_ms": 2.0 * (i + 1)}))
            if i < 4:
                s.execute(insert(Decision).values(id=uuid.uuid4(), application_id=aid, prediction_id=pid,
                                                  outcome="approve", status="final", decided_at=at + timedelta(minutes=1),
                                                  is_override=False))
                s.execute(insert(LLMUsageRow).values(
                    id=uuid.uuid4(), at=at, purpose="explanation", prediction_id=pid, provider="openai", model="gpt-4o",
                    input_tokens=900, output_tokens=150, cost_usd=LLM_CALL_USD, latency_ms=2000.0 + 500 * i,
                    fallback_used=False, fact_check_ok=True, error=None))
            if i < 2:
                s.execute(insert(Outcome).values(id=uuid.uuid4(), application_id=aid, funded=True, defaulted=None,
                                                 observed_at=at + timedelta(days=5), imported_at=at, batch_id="t"))
    return f"{start:%Y-%m}"


def _open(console, role: str, page: str) -> AppTest:
    at = console.logged_in(role)
    at.switch_page(str(PAGES / page)).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def _metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


@pytest.mark.parametrize("role", ROLES)
def test_cost_page_shows_the_services_figures(console, role):
    month = _usage(console)
    at = _open(console, role, "costs.py")
    # after the page: storage is billed as measured now, and signing in writes rows (sessions, audit)
    expected = console.services.costs.report().month(month)
    assert expected is not None
    assert [t.value for t in at.title] == ["Costs"]
    assert any("Simulated data" in c.value for c in at.caption)
    assert any(c.value == PRICE_NOTE for c in at.caption)
    assert next(s for s in at.selectbox if s.label == "Period").value == month
    b = expected.breakdown
    assert _metric(at, "Per scoring request") == usd(b.per_request, 4)
    assert _metric(at, "Per final decision") == usd(b.per_decision, 4)
    assert _metric(at, "Per funded loan") == usd(b.per_funded, 4)
    lines = next(d.value for d in at.dataframe if "how" in d.value.columns and "detail" in d.value.columns)
    assert lines.loc[lines["component"] == "LLM", "USD"].sum() == pytest.approx(4 * LLM_CALL_USD)
    assert any("alert" in str(x.value).lower() for x in [*at.warning, *at.success, *at.info])
    assert len(at.get("download_button")) >= 7  # every table, the price table included
    # the default scenario: an LLM answer cache at 20% of the recorded calls
    assert _metric(at, "Saving") == usd(0.2 * 4 * LLM_CALL_USD)
    next(s for s in at.slider if s.label == "LLM answer cache hit rate").set_value(0.5).run()
    assert _metric(at, "Saving") == usd(0.5 * 4 * LLM_CALL_USD)
    next(t for t in at.toggle if t.label.startswith("Reserved database")).set_value(True).run()
    db_line = float(lines.loc[lines["component"] == "Database", "USD"].sum())
    assert _metric(at, "Saving") == usd(0.5 * 4 * LLM_CALL_USD + 0.4 * db_line)


@pytest.mark.parametrize("role", ROLES)
def test_latency_page_shows_the_services_figures(console, role):
    _usage(console)
    target = console.services.settings.monitoring.thresholds.latency_p95_max_s
    expected = console.services.latency.report(target_s=target)
    at = _open(console, role, "latency.py")
    assert [t.value for t in at.title] == ["Latency"]
    assert any("Simulated data" in c.value for c in at.caption)
    assert expected.p95_end_to_end_s is not None
    assert _metric(at, "End to end p95") == f"{expected.p95_end_to_end_s:.2f} s"
    assert _metric(at, "p95 target") == "30 s"
    assert any("meets the 30 s target" in s.value for s in at.success)
    components = at.dataframe[0].value
    assert list(components["measure"]) == ["Validation", "Model scoring (uncached)", "Cache read (cached requests)",
                                           "Scoring request (total)", "LLM call", "End to end per decision"]
    assert list(components["group"]) == ["all"] * 4 + ["openai / gpt-4o (explanation)", "all"]
    assert components["p95 ms"].iloc[-1] == pytest.approx(1000 * expected.p95_end_to_end_s)
    ai = next(d.value for d in at.dataframe if "interval low s" in d.value.columns)
    assert ai[["phase", "arm", "final decisions"]].values.tolist() == [["full", "ai", 4]]  # no rollout: "full"
    assert ai["p95 s"].iloc[0] == pytest.approx(expected.p95_end_to_end_s)  # every decision is an AI-arm one
    assert _metric(at, "p95, last 7 days") == "—"  # the usage is last month's
    assert len(at.get("download_button")) == 6


@pytest.mark.parametrize("page", ["costs.py", "latency.py"])
def test_pages_render_on_an_empty_book(console, page):
    at = _open(console, "product_lead", page)
    assert any("No " in i.value for i in at.info)


@pytest.mark.parametrize("page", ["costs.py", "latency.py"])
def test_loan_officer_is_refused(console, page):
    at = console.logged_in("loan_officer")
    assert (PAGES / page).resolve() not in console.registered_scripts(at)
    direct = AppTest.from_file(str(PAGES / page), default_timeout=30)
    direct.session_state[USER_KEY] = Actor(console.users["loan_officer"], "loan_officer", uuid.uuid4(), "Officer")
    direct.run()
    assert not direct.exception
    assert [e.value for e in direct.error] == [NOT_ALLOWED]
    assert not direct.dataframe and not direct.get("download_button") and not direct.title
