"""Latency and cost services on SQLite and PostgreSQL: percentiles equal numpy's on the same rows
(percentile_cont on PostgreSQL), ``per_request`` on crafted rows with the dollars worked out by hand,
what-if effects that follow the recorded usage, and the simulated history adding up."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import func, insert, select

from backend.analytics import cost_model as m
from backend.analytics import cost_scenarios as cs
from backend.analytics.config import CostSettings
from backend.analytics.costs import BAD_WINDOW, NAIVE_WINDOW, CostService
from backend.analytics.latency import BAD_TARGET, LatencyService
from backend.explanations.config import DEFAULT_LLM_PRICES
from backend.platform.db.tables_book import Application, Decision, LLMUsageRow, Outcome, Prediction
from backend.platform.db.tables_governance import RolloutConfig

JAN = datetime(2026, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)  # the `clock` fixture
NO_STORAGE = CostSettings(storage_gb_month=0.0)  # the database size differs per backend: priced separately


def _app(s, at: datetime, phase: str = "pilot") -> uuid.UUID:
    aid = uuid.uuid4()
    s.execute(insert(Application).values(id=aid, applicant_id=aid.hex[:12], features={}, protected={}, loan_amount=1.0,
                                         applied_at=at, created_at=at, source="simulated", arm="ai", phase=phase,
                                         ai_visible=True))
    return aid


def _prediction(s, at: datetime, *, timings: dict | None, cache_hit: bool = False, phase: str = "pilot",
                latency_ms: float = 0.0) -> uuid.UUID:
    pid = uuid.uuid4()
    s.execute(insert(Prediction).values(
        id=pid, application_id=_app(s, at, phase), model_name="m", model_version="v1", model_role="primary",
        engine="compiled", pd=0.1, raw_score=0.1, risk_class="low_risk", confidence=0.9, recommendation="approve",
        policy_reasons=[], reasons=[], attributions={}, cache_hit=cache_hit, latency_ms=latency_ms, created_at=at,
        timings=timings))
    return pid


def _decide(s, pid: uuid.UUID, at: datetime, *, funded: bool | None = None, status: str = "final") -> None:
    app = s.execute(select(Prediction.application_id).where(Prediction.id == pid)).scalar_one()
    s.execute(insert(Decision).values(id=uuid.uuid4(), application_id=app, prediction_id=pid, outcome="approve",
                                      status=status, decided_at=at, is_override=False))
    if funded is not None:
        s.execute(insert(Outcome).values(id=uuid.uuid4(), application_id=app, funded=funded, defaulted=None,
                                         observed_at=at + timedelta(days=30), imported_at=at, batch_id="b"))


def _llm(s, pid: uuid.UUID | None, at: datetime, *, provider: str = "openai", model: str = "gpt-4o",
         cost: float | None = None, tokens: tuple[int, int] | None = None, ms: float = 1000.0,
         purpose: str = "explanation", error: str | None = None) -> None:
    s.execute(insert(LLMUsageRow).values(
        id=uuid.uuid4(), at=at, purpose=purpose, prediction_id=pid, provider=provider, model=model,
        input_tokens=tokens[0] if tokens else None, output_tokens=tokens[1] if tokens else None, cost_usd=cost,
        latency_ms=ms, fallback_used=False, fact_check_ok=None, error=error))


def _costs(services, costs: CostSettings = NO_STORAGE) -> CostService:
    return CostService(services.db, services.clock, costs, DEFAULT_LLM_PRICES)


def _crafted(db) -> None:
    """Four January requests (one cached) and a December one; LLM calls in and out of the window."""
    with db.transaction() as s:
        pids = [_prediction(s, JAN + timedelta(days=4 + i), timings={"validate_ms": 1.0, "score_ms": 10.0 * (i + 1)},
                            cache_hit=i == 3) for i in range(4)]
        for i, pid in enumerate(pids[:3]):
            _decide(s, pid, JAN + timedelta(days=5 + i), funded=i < 2)
        _llm(s, pids[0], JAN + timedelta(days=4), cost=0.01)
        _llm(s, pids[1], JAN + timedelta(days=5), tokens=(1000, 100))  # no cost recorded: 0.0025 + 0.001 from tokens
        _llm(s, pids[2], JAN + timedelta(days=6), error="timeout: no answer within 10.0 s", ms=10_000.0)
        _llm(s, pids[2], JAN + timedelta(days=6, hours=2), provider="cache", model="", cost=0.0, ms=5.0)
        old = _prediction(s, JAN - timedelta(days=20), timings={"validate_ms": 1.0, "score_ms": 5.0})
        _llm(s, old, JAN - timedelta(days=20), cost=5.0)


# -- costs ------------------------------------------------------------------------------------------
def test_per_request_on_crafted_rows(services):
    _crafted(services.db)
    costs = _costs(services)
    hours = (NOW - JAN).total_seconds() / 3600  # the window is clipped to the clock: 345 h
    expected = (2 * hours * 0.23 + hours * 0.17 + 50.0 * hours / (31 * 24)  # serving, database, monitoring
                + 0.01 + (1000 * 2.50 + 100 * 10.0) / 1e6)  # recorded + priced from tokens; the timeout costs $0
    assert hours == 345
    assert costs.per_request(JAN, JAN + timedelta(days=31)) == pytest.approx(expected / 4)
    assert costs.per_request(JAN, JAN + timedelta(days=31)) == pytest.approx(60.1372459677)
    w = costs.window(JAN, NOW)
    assert (w.usage.requests, w.usage.cached_requests, w.usage.decisions, w.usage.funded) == (4, 1, 3, 2)
    assert w.usage.explanations_llm == 3 and w.usage.explanations_cached == 1
    assert w.usage.uncached_busy_ms == pytest.approx(10 + 20 + 30) and w.usage.cached_busy_ms == pytest.approx(40)
    assert w.per_decision == pytest.approx(expected / 3) and w.per_funded == pytest.approx(expected / 2)
    assert costs.per_request(datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 7, 1, tzinfo=UTC)) is None
    assert costs.per_request(NOW, NOW + timedelta(days=1)) is None  # nothing has happened yet


def test_bad_windows_are_refused(services):
    costs = _costs(services)
    with pytest.raises(ValueError) as e:
        costs.per_request(NOW, JAN)
    assert str(e.value) == BAD_WINDOW.format(start=NOW, end=JAN)
    with pytest.raises(ValueError, match=NAIVE_WINDOW):
        costs.window(datetime(2026, 1, 1), datetime(2026, 1, 2))  # noqa: DTZ001


def test_report_months_storage_and_what_if_follow_the_records(services):
    _crafted(services.db)
    costs = _costs(services, CostSettings())
    r = costs.report()
    assert [(x.month, x.partial) for x in r.months] == [("2025-12", False), ("2026-01", True)]
    jan = r.month("2026-01")
    assert jan is not None and jan.breakdown.usage.end == NOW
    assert r.storage_bytes > 0 and jan.breakdown.component("Storage") > 0  # file size / pg_database_size
    assert r.total is not None and r.total.total == pytest.approx(sum(x.breakdown.total for x in r.months))
    assert r.total.component("LLM") == pytest.approx(5.0 + 0.01 + 0.0035)
    assert r.recent.usage.start == NOW - timedelta(days=30) and r.recent.usage.requests == 4  # the alert's window
    assert r.recent.per_request == pytest.approx(costs.per_request(NOW - timedelta(days=30), NOW))
    saving = cs.what_if(r.breakdowns, cs.Scenario(llm_cache_hit_rate=0.2), costs.costs).saving
    with services.db.transaction() as s:  # the same calls again: twice the LLM usage
        pids = s.execute(select(LLMUsageRow.prediction_id, LLMUsageRow.at, LLMUsageRow.cost_usd,
                                LLMUsageRow.input_tokens, LLMUsageRow.output_tokens)
                         .where(LLMUsageRow.provider == "openai")).all()
        for pid, at, cost, tin, tout in pids:
            _llm(s, pid, at, cost=cost, tokens=(tin, tout) if tin is not None else None)
    again = costs.report()
    assert cs.what_if(again.breakdowns, cs.Scenario(llm_cache_hit_rate=0.2), costs.costs).saving == \
        pytest.approx(2 * saving)
    assert again.total is not None and again.total.component("LLM") == pytest.approx(2 * (5.0 + 0.01 + 0.0035))


# -- latency ------------------------------------------------------------------------------------------
def _rollout(s, version: int, phase: str, starts_at: datetime, status: str = "approved") -> None:
    s.execute(insert(RolloutConfig).values(
        id=uuid.uuid4(), version=version, phase=phase, ai_share=0.1, eligible_roles=[], senior_only=False,
        eligible_officers=[], loan_amount_cap=25_000.0, confidence_threshold=0.7, features={}, salt="s",
        starts_at=starts_at, status=status, rationale="r", proposed_by="p", proposed_at=starts_at))


def test_percentiles_equal_numpy_on_the_same_rows(services):
    rng = np.random.default_rng(5)
    n = 41
    validate, score = rng.gamma(2.0, 0.5, n), rng.lognormal(1.0, 0.8, n)
    llm_ms = rng.lognormal(7.5, 0.4, n)
    cached = rng.random(n) < 0.25
    decided = rng.random(n) < 0.8
    explained = rng.random(n) < 0.6
    with services.db.transaction() as s:  # pilot from 60 days before January, scaled from 20 days before
        _rollout(s, 1, "pilot", JAN - timedelta(days=60))
        _rollout(s, 2, "scaled", JAN - timedelta(days=20))
        _rollout(s, 3, "full", JAN - timedelta(days=30), status="rejected")  # not in force
        for i in range(n):
            at = JAN - timedelta(days=int(i % 40), hours=1)
            pid = _prediction(s, at, timings={"validate_ms": float(validate[i]), "score_ms": float(score[i])},
                              cache_hit=bool(cached[i]))
            if decided[i]:
                _decide(s, pid, at + timedelta(minutes=5))
            if explained[i]:
                _llm(s, pid, at, ms=float(llm_ms[i]))
                _llm(s, pid, at + timedelta(hours=1), provider="cache", model="", cost=0.0, ms=4.0)  # not end to end
        _prediction(s, JAN, timings=None, latency_ms=123.0)  # an old row without timings: its latency_ms counts
    r = LatencyService(services.db, services.clock).report(target_s=0.005)
    pct = [50, 95, 99]

    def check(row, values):  # noqa: ANN001
        assert row is not None and row.n == len(values)
        assert [row.p50_ms, row.p95_ms, row.p99_ms] == pytest.approx(list(np.percentile(values, pct)), rel=1e-9)
        assert row.mean_ms == pytest.approx(float(np.mean(values))) and row.max_ms == pytest.approx(float(np.max(values)))

    check(r.overall("component", "Validation"), validate)
    check(r.overall("component", "Model scoring (uncached)"), score[~cached])
    check(r.overall("component", "Cache read (cached requests)"), score[cached])
    request = validate + score
    check(r.overall("component", "Scoring request (total)"), np.r_[request, 123.0])
    e2e = (request + np.where(explained, llm_ms, 0.0))[decided]
    check(r.end_to_end, e2e)
    assert r.end_to_end is not None and r.end_to_end.over_target == pytest.approx(float(np.mean(e2e > 5.0)))
    assert [q for q, _ in r.e2e_quantiles][:3] == [0.01, 0.05, 0.1]
    pilot = next(x for x in r.table("end_to_end", "phase") if x.group == "pilot")  # the phase in force when scored
    check(pilot, e2e[(np.arange(n) % 40 >= 20)[decided]])
    assert {x.group for x in r.table("component", "phase")} == {"pilot", "scaled"}
    openai = next(x for x in r.table("explanation", "provider") if x.group == "openai / gpt-4o (explanation)")
    check(openai, llm_ms[explained])
    assert r.p95_end_to_end_s == pytest.approx(np.percentile(e2e, 95) / 1000)
    lat = LatencyService(services.db, services.clock)
    window = lat.end_to_end_p95(start=JAN - timedelta(days=60), end=NOW)
    assert (window.p95_s, window.n) == (pytest.approx(np.percentile(e2e, 95) / 1000), len(e2e))
    assert lat.end_to_end_p95(start=NOW, end=NOW + timedelta(days=1)).p95_s is None
    pilot_fig = lat.end_to_end_p95(phase="pilot")  # the phase filter is the page's phase grouping
    assert (pilot_fig.p95_s, pilot_fig.n) == (pytest.approx(pilot.p95_ms / 1000), pilot.n)
    assert r.e2e == lat.end_to_end_p95()  # the report's headline is the one definition
    assert r.timing_keys == ("validate_ms", "score_ms") and not r.truncated
    assert r.target_met is False  # 5 ms is a target these rows cannot meet


def test_empty_book_and_a_bad_target(services):
    lat = LatencyService(services.db, services.clock)
    r = lat.report()
    assert r.rows == () and r.p95_end_to_end_s is None and r.target_met is None
    with pytest.raises(ValueError) as e:
        lat.report(target_s=0)
    assert str(e.value) == BAD_TARGET.format(value=0)
    c = _costs(services).report()
    assert c.months == () and c.total is None and c.projection is None
    with services.db.transaction() as s:  # rows from before timings were recorded: latency_ms is the request
        _prediction(s, JAN, timings=None, latency_ms=50.0)
    old = lat.report()
    assert old.timing_keys == () and old.overall("component", "Scoring request (total)").p95_ms == pytest.approx(50.0)


# -- the simulated history ----------------------------------------------------------------------------------
def test_simulated_history_adds_up(sim_services):
    svc = sim_services
    r = svc.costs.report()
    with svc.db.read() as s:
        recorded = s.execute(select(func.sum(LLMUsageRow.cost_usd))).scalar_one()
        requests = s.execute(select(func.count()).select_from(Prediction)).scalar_one()
        finals = s.execute(select(func.count()).select_from(Decision).where(Decision.status == "final")).scalar_one()
    assert r.total is not None and r.total.component("LLM") == pytest.approx(recorded)  # every priced row recorded
    assert r.total.usage.requests == requests and r.total.usage.decisions == finals
    assert r.projection is not None and len(r.projection.months) == 3
    assert r.total_units is not None and 0 < (r.total_units.explanation_hit_rate or 0) < 1
    dec = r.month("2025-12")
    assert dec is not None and not dec.partial
    lo, hi = m.month_bounds("2025-12")
    assert svc.costs.per_request(lo, hi) == pytest.approx(dec.breakdown.per_request)  # the alert's figure
    lat = svc.latency.report()
    assert lat.end_to_end is not None and lat.end_to_end.n == finals
    assert {x.group for x in lat.table("end_to_end", "phase")} == {"shadow", "pilot", "scaled"}
    assert lat.target_met is True
