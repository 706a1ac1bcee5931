"""The alert rules on crafted readings (pure): each fires beyond its threshold, clears inside it, and reads
"no data" on missing or too few rows; the metric readers map the monitoring services' answers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from backend.alerts.rules import (
    FIRING,
    NO_DATA,
    NO_READING,
    NOT_A_NUMBER,
    OK,
    RULES,
    RULES_BY_NAME,
    TOO_FEW_ROWS,
    Measurement,
    ReadContext,
    fmt,
    judge,
    message,
    read_accuracy,
    read_cost,
    read_drift,
    read_errors,
    read_fairness,
    read_latency,
    threshold_for,
)
from backend.models.halts import HALT_ACTION
from backend.monitoring.config import AlertThresholds
from backend.platform.adapters.notify_webhook import text_for

T = AlertThresholds()
MIN = T.min_rows

# rule -> (a value that fires, a value that is fine, rows)
CASES = {
    "accuracy": (0.85, 0.91, 5000),
    "latency": (31.0, 4.2, 5000),
    "errors": (0.02, 0.004, 5000),
    "drift": (0.31, 0.08, None),
    "cost": (0.75, 0.12, 5000),
    "fairness": (0.72, 0.93, None),
}


def _judge(name: str, value: float | None, n: int | None = 5000, detail: str = ""):
    rule = RULES_BY_NAME[name]
    return judge(rule, Measurement(value, n, "2025-09", detail), threshold_for(rule, T), MIN)


def test_the_seed_monitors_and_their_actions():
    assert {r.name: (r.direction, threshold_for(r, T), r.action) for r in RULES} == {
        "accuracy": ("below", 0.88, "retrain"), "latency": ("above", 30.0, "notify"),
        "errors": ("above", 0.01, "notify"), "drift": ("above", 0.25, "notify"),
        "cost": ("above", 0.60, "notify"), "fairness": ("below", 0.80, HALT_ACTION)}


@pytest.mark.parametrize("name", list(CASES))
def test_each_rule_fires_and_clears(name):
    bad, good, n = CASES[name]
    fired = _judge(name, bad, n)
    assert fired.status == FIRING and fired.firing and fired.value == bad
    assert fired.threshold == threshold_for(RULES_BY_NAME[name], T)
    cleared = _judge(name, good, n)
    assert cleared.status == OK and not cleared.firing


@pytest.mark.parametrize("name", list(CASES))
def test_exactly_at_the_threshold_does_not_fire(name):
    assert _judge(name, threshold_for(RULES_BY_NAME[name], T)).status == OK


@pytest.mark.parametrize("name", list(CASES))
def test_no_reading_is_no_data_and_never_fires(name):
    rule = RULES_BY_NAME[name]
    r = judge(rule, None, threshold_for(rule, T), MIN)
    assert (r.status, r.value, r.detail) == (NO_DATA, None, NO_READING)
    r = judge(rule, Measurement(None, 0, "", "the drift service is not installed yet"), threshold_for(rule, T), MIN)
    assert (r.status, r.detail) == (NO_DATA, "the drift service is not installed yet")


@pytest.mark.parametrize("name", ["accuracy", "latency", "errors", "cost"])
def test_too_few_rows_is_no_data_even_far_beyond_the_threshold(name):
    bad = CASES[name][0] * (0.5 if RULES_BY_NAME[name].direction == "below" else 10)
    r = _judge(name, bad, MIN - 1)
    assert r.status == NO_DATA and r.detail == TOO_FEW_ROWS.format(n=MIN - 1, min_rows=MIN)
    assert _judge(name, bad, MIN).status == FIRING  # exactly min_rows is enough


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "abc"])
def test_a_value_that_is_not_a_number_is_no_data(value):
    r = _judge("drift", value)  # type: ignore[arg-type]
    assert (r.status, r.value, r.detail) == (NO_DATA, None, NOT_A_NUMBER)


def test_thresholds_come_from_settings():
    strict = AlertThresholds(latency_p95_max_s=3.0, min_rows=10)
    rule = RULES_BY_NAME["latency"]
    r = judge(rule, Measurement(4.2, 50), threshold_for(rule, strict), strict.min_rows)
    assert (r.status, r.threshold) == (FIRING, 3.0)


def test_message_names_figure_threshold_period_and_action():
    assert message(_judge("accuracy", 0.85)) == ("Model accuracy 85.00% is below the threshold 88.00% "
                                                 "(2025-09, n=5,000); action: retrain.")
    assert message(_judge("fairness", 0.72, None)) == ("Lowest disparate impact 0.720 is below the threshold 0.800 "
                                                       "(2025-09); action: deployments halted.")
    assert (fmt(31.04, "seconds"), fmt(0.004, "usd"), fmt(0.75, "usd"), fmt(None, "ratio")) == (
        "31.0 s", "$0.0040", "$0.75", "—")


class _Services:
    """Answers shaped as the monitoring and analytics services return them."""

    def __init__(self, accuracy=None, psi=None, di=None, latency=None, errors=None, cost=None):  # noqa: ANN001
        self.performance = type("P", (), {"latest_accuracy": lambda _s, before: accuracy})()
        self.drift = type("D", (), {"latest_max_psi": lambda _s, before: psi})()
        self.fairness = type("F", (), {"latest_min_di": lambda _s, before: di})()
        self.latency = type("L", (), {"recent": lambda _s, at: latency, "errors": lambda _s, at: errors})()
        self.costs = type("C", (), {"recent": lambda _s, at: cost})()


def test_readers_map_the_services_answers():
    at = datetime(2025, 10, 1, tzinfo=UTC)
    ctx = ReadContext(_Services((0.86, "2025-01", 4100), (0.41, "2025-W38"),
                                (0.71, "pilot", {"attribute": "age_band", "group": "18-25"})), at)
    assert read_accuracy(ctx) == Measurement(0.86, 4100, "2025-01")
    assert read_drift(ctx) == Measurement(0.41, None, "2025-W38")
    fair = read_fairness(ctx)
    assert (fair.value, fair.period, fair.extra["fairness"]["group"]) == (0.71, "pilot", "18-25")
    assert "age_band" in fair.detail
    empty = ReadContext(_Services(), at)
    assert read_accuracy(empty) is None and read_drift(empty) is None and read_fairness(empty) is None


def test_latency_error_and_cost_readers_take_the_analytics_figures():
    from backend.analytics import ErrorRate, LatencyFigure
    from backend.analytics.cost_model import Breakdown, Usage

    at = datetime(2025, 10, 1, tzinfo=UTC)
    week = datetime(2025, 9, 24, tzinfo=UTC)
    fig = LatencyFigure(31.5, 30.2, 33.0, 450, week, at)
    errs = ErrorRate(9, 600, 4, 5, week, at)
    usage = Usage(datetime(2025, 9, 1, tzinfo=UTC), at, requests=1000)
    cost = Breakdown(usage, (), 0.0, 0.0, ())
    ctx = ReadContext(_Services(latency=fig, errors=errs, cost=cost), at)
    assert read_latency(ctx) == Measurement(31.5, 450, "2025-09-24..2025-09-30", "", {"low": 30.2, "high": 33.0})
    e = read_errors(ctx)
    assert (e.value, e.n, e.period, e.extra) == (0.015, 600, "2025-09-24..2025-09-30", {
        "requests": 600, "errors": 9, "scoring_fallbacks": 4, "llm_failures": 5})
    c = read_cost(ctx)
    assert (c.value, c.n, c.period) == (0.0, 1000, "2025-09-01..2025-09-30")
    none = ReadContext(_Services(latency=LatencyFigure(None, None, None, 0, week, at), errors=ErrorRate(0, 0, 0, 0,
                                                                                                       week, at)), at)
    assert read_latency(none).value is None and read_errors(none).value is None and read_cost(none) is None
    assert _judge("latency", read_latency(ctx).value, 450).status == FIRING


def test_webhook_text_is_chat_ready():
    opened = {"event": "opened", "alert_id": "a1", "severity": "critical", "action": HALT_ACTION,
              "message": "Lowest disparate impact 0.720 is below the threshold 0.800."}
    assert text_for(opened) == ("[CRITICAL] Lowest disparate impact 0.720 is below the threshold 0.800. Action: "
                                "deployments are halted until it is resolved. Alert a1.")
    assert text_for({"event": "resolved", "alert_id": "a1", "label": "Error rate"}).startswith("[RESOLVED] Error rate")


def test_webhook_backoff_and_retry_statuses_through_a_mock_transport():
    import httpx

    from backend.platform.adapters.notify_webhook import WebhookNotifier

    answers, seen, slept = [429, 502, 200], [], []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(answers.pop(0), text="x")

    d = WebhookNotifier("https://user:pw@hooks.example.com/services/T0/B0/secret", timeout=1.0, backoff=0.5,
                        transport=httpx.MockTransport(handler), sleep=slept.append).send({"event": "opened"})
    assert (d["ok"], d["status_code"], d["attempts"], slept) == (True, 200, 3, [0.5, 1.0])
    assert d["target"] == "https://hooks.example.com"  # neither the secret path nor the credentials
    assert seen[0].headers["content-type"] == "application/json"
    assert seen[0].read() == seen[2].read()
