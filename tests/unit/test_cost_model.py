"""Cost formulas on hand-made usage records, with the expected dollars worked out by hand (default
example prices: serving 2 x $0.23/h, serverless $0.00002/GB-s at 2 GB, Lambda $0.0000002/request and
$0.0000166667/GB-s at 0.5 GB, database $0.17/h with 40% reserved discount, storage $0.115/GB-month,
cache $0.068/h, monitoring $50/month; gpt-4o $2.50/$10 per 1M tokens)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pytest
import statsmodels.api as sm

from backend.analytics import cost_model as m
from backend.analytics import cost_scenarios as cs
from backend.analytics.config import CostSettings
from backend.explanations.config import DEFAULT_LLM_PRICES

C = CostSettings()
P = dict(DEFAULT_LLM_PRICES)
SEPT = (datetime(2025, 9, 1, tzinfo=UTC), datetime(2025, 10, 1, tzinfo=UTC))  # 30 days = 720 h


def _usage(**kw) -> m.Usage:
    base = dict(
        requests=100, cached_requests=20, uncached_busy_ms=8_000.0, cached_busy_ms=20.0,
        llm=(m.LLMLine("openai", "gpt-4o", "explanation", calls=10, recorded_calls=8, recorded_usd=0.04,
                       token_calls=1, input_tokens=1_000, output_tokens=200, latency_ms=30_000.0),
             m.LLMLine("lambda", "claude-3-5-haiku-latest", "explanation", calls=4, recorded_calls=4,
                       recorded_usd=0.01, latency_ms=8_000.0),
             m.LLMLine("cache", "", "explanation", calls=3, recorded_calls=3, latency_ms=15.0),
             m.LLMLine("openai", "mystery-model", "qa", calls=2, token_calls=2, input_tokens=500, output_tokens=50)),
        explanations_llm=12, explanations_cached=3, decisions=50, funded=25, storage_bytes=2 * m.GB, label="2025-09")
    base.update(kw)
    return m.Usage(SEPT[0], SEPT[1], **base)  # type: ignore[arg-type]


LLM_OPENAI = 0.04 + (1_000 * 2.50 + 200 * 10.0) / 1e6  # recorded + one row priced from tokens = 0.0445
LAMBDA = 4 * 0.0000002 + (8.0 * 0.5) * 0.0000166667  # requests + 4 GB-s
TOTAL = 2 * 720 * 0.23 + LLM_OPENAI + 0.01 + LAMBDA + 720 * 0.17 + 2 * 0.115 + 50.0


def test_breakdown_prices_each_component_by_hand():
    b = m.breakdown(_usage(), C, P, redis_cache=False)
    assert b.by_component == pytest.approx({"Model serving": 331.20, "LLM": LLM_OPENAI + 0.01, "Lambda": LAMBDA,
                                            "Database": 122.40, "Storage": 0.23, "Cache": 0.0, "Monitoring": 50.0})
    assert b.total == pytest.approx(TOTAL) and b.total == pytest.approx(503.8845674668)
    assert b.per_request == pytest.approx(TOTAL / 100)
    assert b.per_decision == pytest.approx(TOTAL / 50)
    assert b.per_funded == pytest.approx(TOTAL / 25)
    assert b.fixed == pytest.approx(331.20 + 122.40 + 0.23 + 50.0)
    assert b.serverless_usd == pytest.approx(8.0 * 2 * 0.00002)  # 16 busy GB-s
    assert b.reserved_database_usd == pytest.approx(122.40 * 0.6)
    lines = {(x.component, x.detail): x for x in b.lines}
    assert "cache" not in " ".join(d for _, d in lines)  # stored-explanation views cost nothing and are no LLM line
    assert lines[("LLM", "openai / mystery-model (qa)")].usd == 0.0  # tokens but no price: $0, and said so
    assert "no price for 'mystery-model'" in lines[("LLM", "openai / mystery-model (qa)")].basis
    gpt = lines[("LLM", "openai / gpt-4o (explanation)")].basis
    assert "8 with recorded cost_usd" in gpt and "1 priced from tokens" in gpt and "1 without tokens" in gpt
    assert b.notes == ("openai / gpt-4o (explanation): 1 calls without tokens or cost (errors, timeouts) counted at $0",)


def test_redis_cache_bills_instance_hours_and_idle_serving_is_billed():
    assert m.breakdown(_usage(), C, P, redis_cache=True).component("Cache") == pytest.approx(720 * 0.068)
    idle = m.breakdown(_usage(requests=0, cached_requests=0, uncached_busy_ms=0.0, llm=()), C, P, redis_cache=False)
    assert idle.component("Model serving") == pytest.approx(331.20) and idle.per_request is None


def test_month_fractions_and_hours():
    assert m.hours(*SEPT) == 720.0
    assert m.month_bounds("2025-12") == (datetime(2025, 12, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
    assert m.month_fraction(*SEPT) == pytest.approx(1.0)
    # half of January's 31 days from the 16th, then 14 of February's 28
    assert m.month_fraction(datetime(2025, 1, 16, tzinfo=UTC), datetime(2025, 2, 15, tzinfo=UTC)) == \
        pytest.approx(16 / 31 + 14 / 28)
    with pytest.raises(ValueError, match="must end after it starts"):
        m.breakdown(m.Usage(SEPT[1], SEPT[0]), C, P, redis_cache=False)


def test_unit_costs_and_cache_savings():
    b = m.breakdown(_usage(), C, P, redis_cache=False)
    u = m.unit_costs(b, C)
    per_ms = 2 * 0.00002 / 1000  # GB x USD/GB-s per millisecond
    assert u.scoring_uncached == pytest.approx(8_000 * per_ms / 80)  # 4e-6 per uncached scoring
    assert u.scoring_cached == pytest.approx(20 * per_ms / 20)
    assert u.scoring_hit_rate == pytest.approx(0.2) and u.explanation_hit_rate == pytest.approx(3 / 15)
    assert u.scoring_cache_saving == pytest.approx(20 * (4e-6 - 4e-8))
    explain = LLM_OPENAI + 0.01 + LAMBDA  # the qa line is not an explanation
    assert u.explanation_llm == pytest.approx(explain / 12)
    assert u.explanation_cache_saving == pytest.approx(3 * explain / 12)
    assert u.fixed_per_request == pytest.approx(b.fixed / 100)
    assert u.uncached_prediction == pytest.approx(b.fixed / 100 + 4e-6 + explain / 12)
    assert u.cached_prediction == pytest.approx(b.fixed / 100 + 4e-8)


def test_what_if_effects_come_from_usage():
    b = m.breakdown(_usage(), C, P, redis_cache=False)
    w = cs.what_if([b], cs.Scenario(serverless=True, llm_cache_hit_rate=0.2, reserved_database=True), C)
    assert w.after["Model serving"] == pytest.approx(16 * 0.00002)
    assert w.after["LLM"] == pytest.approx((LLM_OPENAI + 0.01) * 0.8)
    assert w.after["Lambda"] == pytest.approx(LAMBDA * 0.8)
    assert w.after["Database"] == pytest.approx(122.40 * 0.6)
    assert w.after["Monitoring"] == w.before["Monitoring"] == 50.0
    assert w.saving == pytest.approx(w.total_before - w.total_after)
    assert "3 of 16 recorded calls" in w.explanation["LLM"]  # 20% of the 16 LLM calls (cache views excluded)
    nothing = cs.what_if([b], cs.Scenario(), C)
    assert nothing.saving == 0 and nothing.after == nothing.before


def test_llm_saving_doubles_with_the_calls_and_serverless_follows_busy_time():
    one = _usage()
    two = replace(one, llm=tuple(replace(x, calls=2 * x.calls, recorded_calls=2 * x.recorded_calls,
                                         recorded_usd=2 * x.recorded_usd, token_calls=2 * x.token_calls,
                                         input_tokens=2 * x.input_tokens, output_tokens=2 * x.output_tokens,
                                         latency_ms=2 * x.latency_ms) for x in one.llm),
                  uncached_busy_ms=2 * one.uncached_busy_ms)
    cache = cs.Scenario(llm_cache_hit_rate=0.2)
    s1 = cs.what_if([m.breakdown(one, C, P, redis_cache=False)], cache, C).saving
    s2 = cs.what_if([m.breakdown(two, C, P, redis_cache=False)], cache, C).saving
    assert s2 == pytest.approx(2 * s1) and s1 > 0
    sl = cs.Scenario(serverless=True)
    after1 = cs.what_if([m.breakdown(one, C, P, redis_cache=False)], sl, C).after["Model serving"]
    after2 = cs.what_if([m.breakdown(two, C, P, redis_cache=False)], sl, C).after["Model serving"]
    assert after2 == pytest.approx(2 * after1)
    # two months add up
    both = cs.what_if([m.breakdown(one, C, P, redis_cache=False)] * 2, cache, C)
    assert both.saving == pytest.approx(2 * s1)


@pytest.mark.parametrize("rate", [-0.1, 1.5])
def test_bad_hit_rate_is_refused(rate):
    with pytest.raises(ValueError) as e:
        cs.Scenario(llm_cache_hit_rate=rate)
    assert str(e.value) == m.BAD_HIT_RATE.format(value=rate)


def _month(label: str, requests: int, llm_usd: float) -> m.Breakdown:
    lo, hi = m.month_bounds(label)
    line = m.LLMLine("openai", "gpt-4o", "explanation", calls=requests, recorded_calls=requests, recorded_usd=llm_usd)
    return m.breakdown(m.Usage(lo, hi, requests=requests, llm=(line,), label=label), C, P, redis_cache=False)


def test_projection_on_an_exact_line():
    hist = [_month("2025-01", 1000, 1.0), _month("2025-02", 1100, 1.1), _month("2025-03", 1200, 1.2)]
    p = cs.project(hist, C, after="2025-03", redis_cache=False)
    assert p is not None and p.slope == pytest.approx(100) and p.variable_per_request == pytest.approx(0.001)
    april = p.months[0]
    assert (april.month, april.requests) == ("2025-04", pytest.approx(1300))
    assert april.requests_low == pytest.approx(1300) and april.requests_high == pytest.approx(1300)  # no residual
    fixed_april = 2 * 720 * 0.23 + 720 * 0.17 + 50.0  # 30 days; no storage measured
    assert april.usd == pytest.approx(fixed_april + 1.3)
    assert [x.month for x in p.months] == ["2025-04", "2025-05", "2025-06"]
    assert "3 complete month(s)" in p.explanation and "+100 requests per month" in p.explanation


def test_projection_band_is_the_ols_prediction_interval():
    ys = [1000, 1200, 1100, 1300]
    hist = [_month(f"2025-0{i + 1}", y, 0.0) for i, y in enumerate(ys)]
    p = cs.project(hist, C, after="2025-04", redis_cache=False)
    assert p is not None
    fit = sm.OLS(np.array(ys, float), sm.add_constant(np.arange(4.0))).fit()
    pred = fit.get_prediction(np.array([[1.0, 4.0]])).summary_frame(alpha=0.05)
    may = p.months[0]
    assert may.requests == pytest.approx(float(pred["mean"].iloc[0]))  # 1350
    assert may.requests_low == pytest.approx(float(pred["obs_ci_lower"].iloc[0]))
    assert may.requests_high == pytest.approx(float(pred["obs_ci_upper"].iloc[0]))
    assert may.requests_high - may.requests == pytest.approx(4.302652729749464 * 150)  # t(0.975, 2) x s x sqrt(2.5)


def test_projection_needs_history_and_has_no_band_below_three_months():
    assert cs.project([], C, after="2025-01", redis_cache=False) is None
    p = cs.project([_month("2025-01", 500, 0.5), _month("2025-02", 700, 0.7)], C, after="2025-02", redis_cache=False)
    assert p is not None and p.months[0].requests == pytest.approx(900) and p.months[0].usd_low is None
    assert "no band below three months" in p.explanation
