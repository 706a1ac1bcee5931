"""Metrics adapters: Prometheus text (parsed back with prometheus_client's parser), CloudWatch EMF
JSON shape and flushing, the no-op, the metered cache, and what an explanation records."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from backend.container.adapters import build_metrics, metered_cache
from backend.container.settings import load_settings
from backend.explanations.engine import ExplanationEngine
from backend.explanations.providers import Completion, ProviderError, ProviderStream
from backend.explanations.record import DecisionRecord
from backend.platform.adapters.cache_memory import MemoryCache
from backend.platform.adapters.metrics_cache import MeteredCache, keyspace
from backend.platform.adapters.metrics_emf import MAX_VALUES, EmfMetrics
from backend.platform.adapters.metrics_noop import NoopMetrics
from backend.platform.adapters.metrics_prometheus import PrometheusMetrics
from backend.platform.config import SettingsError
from backend.platform.metrics_catalog import (
    CACHE_LOOKUPS,
    CATALOG,
    HTTP_DURATION,
    HTTP_REQUESTS,
    LLM_COST,
    UNKNOWN_METRIC,
    WRONG_LABELS,
    method_label,
)
from backend.platform.metrics_config import BAD_NAMESPACE, SHORT_TOKEN, MetricsSettings
from backend.platform.ports import Metrics

ROOT = Path(__file__).resolve().parents[2]
REQ = {"route": "/v1/score", "method": "POST", "status": "200"}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_prometheus_text_parses_back_with_counts_and_histograms() -> None:
    m = PrometheusMetrics("creditrisk")
    assert isinstance(m, Metrics)
    m.inc(HTTP_REQUESTS, REQ)
    m.inc(HTTP_REQUESTS, REQ, 2)
    for s in (0.003, 0.2, 4.0):
        m.observe(HTTP_DURATION, s, {"route": "/v1/score", "method": "POST"})
    m.inc(LLM_COST, {"provider": "openai", "model": "gpt-4o"}, 0.0125)
    body, ctype = m.exposition()
    assert ctype == "text/plain; version=0.0.4; charset=utf-8"
    got = samples(body.decode())
    assert got[("creditrisk_http_requests_total", tuple(sorted(REQ.items())))] == 3
    hist = (("method", "POST"), ("route", "/v1/score"))
    assert got[("creditrisk_http_request_duration_seconds_count", hist)] == 3
    assert got[("creditrisk_http_request_duration_seconds_sum", hist)] == pytest.approx(4.203)
    assert got[("creditrisk_http_request_duration_seconds_bucket", (("le", "0.005"), *hist))] == 1
    assert got[("creditrisk_llm_cost_usd_total", (("model", "gpt-4o"), ("provider", "openai")))] == pytest.approx(0.0125)
    # every catalogued metric is declared (HELP/TYPE) even before it is used
    names = {f.name for f in text_string_to_metric_families(body.decode())}
    assert {f"creditrisk_{n}" for n in CATALOG} <= names


def test_each_instance_has_its_own_registry() -> None:
    a, b = PrometheusMetrics(), PrometheusMetrics()
    a.inc(HTTP_REQUESTS, REQ)
    key = ("creditrisk_http_requests_total", tuple(sorted(REQ.items())))
    assert samples(a.exposition()[0].decode())[key] == 1
    assert key not in samples(b.exposition()[0].decode())


@pytest.mark.parametrize("metrics", [PrometheusMetrics(), EmfMetrics(stream=io.StringIO(), background=False),
                                     NoopMetrics()], ids=["prometheus", "emf", "none"])
def test_unknown_names_and_wrong_labels_are_refused(metrics: Metrics) -> None:
    with pytest.raises(ValueError, match="unknown metric") as e:
        metrics.inc("requests_by_applicant", {"applicant": "CUS-1"})
    assert str(e.value) == UNKNOWN_METRIC.format(name="requests_by_applicant")
    with pytest.raises(ValueError) as e:
        metrics.inc(HTTP_REQUESTS, {"route": "/v1/score", "path": "/v1/decisions/123"})
    assert str(e.value) == WRONG_LABELS.format(name=HTTP_REQUESTS, want=["route", "method", "status"],
                                               got=["path", "route"])


def test_method_label_is_bounded() -> None:
    assert method_label("post") == "POST" and method_label("BREW") == "OTHER" and method_label(None) == "OTHER"


class Now:
    def __init__(self, t: float = 1_764_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def emf_lines(buf: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buf.getvalue().splitlines()]


def test_emf_documents_follow_the_embedded_metric_format() -> None:
    buf, now = io.StringIO(), Now()
    m = EmfMetrics("creditrisk", stream=buf, now=now, background=False)
    m.inc(HTTP_REQUESTS, REQ)
    m.inc(HTTP_REQUESTS, REQ)
    now.t += 1
    m.observe(HTTP_DURATION, 0.12, {"route": "/v1/score", "method": "POST"})
    m.observe(HTTP_DURATION, 0.34, {"route": "/v1/score", "method": "POST"})
    m.inc(LLM_COST, {"provider": "openai", "model": "gpt-4o"}, 0.5)
    assert buf.getvalue() == ""  # buffered until the interval passes or a flush
    m.flush()
    docs = emf_lines(buf)
    assert len(docs) == 3
    by_metric = {next(k for k in d if k in CATALOG): d for d in docs}
    req = by_metric[HTTP_REQUESTS]
    assert req["_aws"] == {"Timestamp": 1_764_000_000_000, "CloudWatchMetrics": [{
        "Namespace": "creditrisk", "Dimensions": [["method", "route", "status"]],
        "Metrics": [{"Name": "http_requests", "Unit": "Count"}]}]}
    assert (req["route"], req["method"], req["status"], req["http_requests"]) == ("/v1/score", "POST", "200", 2)
    dur = by_metric[HTTP_DURATION]
    assert dur[HTTP_DURATION] == [0.12, 0.34] and dur["_aws"]["Timestamp"] == 1_764_000_001_000
    assert dur["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [{"Name": HTTP_DURATION, "Unit": "Seconds"}]
    assert by_metric[LLM_COST][LLM_COST] == 0.5
    m.flush()
    assert len(emf_lines(buf)) == 3  # nothing new, nothing written


def test_emf_flushes_on_interval_full_arrays_and_group_count() -> None:
    buf, now = io.StringIO(), Now()
    m = EmfMetrics(stream=buf, now=now, flush_seconds=60, max_groups=3, background=False)
    m.inc(HTTP_REQUESTS, REQ)
    now.t += 61
    m.inc(HTTP_REQUESTS, REQ)  # due: both counts go out in one line
    assert [d[HTTP_REQUESTS] for d in emf_lines(buf)] == [2]
    labels = {"route": "/health/live", "method": "GET"}
    for i in range(MAX_VALUES):
        m.observe(HTTP_DURATION, i / 1000, labels)
    assert len(emf_lines(buf)[-1][HTTP_DURATION]) == MAX_VALUES  # EMF's 100-value limit
    for status in ("200", "404", "500"):
        m.inc(HTTP_REQUESTS, {**REQ, "status": status})
    assert sorted(d.get("status") for d in emf_lines(buf)[2:]) == ["200", "404", "500"]


def test_emf_sink_failure_is_not_raised_and_close_flushes() -> None:
    broken = io.StringIO()
    broken.close()
    m = EmfMetrics(stream=broken, background=False)
    m.inc(HTTP_REQUESTS, REQ)
    m.flush()  # logged and dropped
    buf = io.StringIO()
    m = EmfMetrics(stream=buf, flush_seconds=3600)
    m.inc(HTTP_REQUESTS, REQ)
    m.close()
    assert emf_lines(buf)[0][HTTP_REQUESTS] == 1


def test_settings_pick_the_adapter_and_check_values() -> None:
    assert isinstance(build_metrics(MetricsSettings()), PrometheusMetrics)
    assert isinstance(build_metrics(MetricsSettings(backend="emf")), EmfMetrics)
    assert isinstance(build_metrics(MetricsSettings(backend="none")), NoopMetrics)
    s = load_settings(metrics={"backend": "emf", "namespace": "cr_prod"})
    assert s.metrics.backend == "emf" and s.metrics.namespace == "cr_prod"
    with pytest.raises(SettingsError, match="CREDITRISK_METRICS__NAMESPACE") as e:
        load_settings(metrics={"namespace": "credit risk"})
    assert BAD_NAMESPACE in str(e.value)
    with pytest.raises(SettingsError, match="CREDITRISK_METRICS__TOKEN") as e:
        load_settings(metrics={"token": "short"})
    assert SHORT_TOKEN in str(e.value)


def test_metered_cache_counts_hits_and_misses_without_key_contents() -> None:
    m = PrometheusMetrics()
    cache = metered_cache(MemoryCache(), m)
    assert metered_cache(cache, m) is cache and isinstance(cache, MeteredCache)
    cache.set("score:creditrisk:3:compiled:abc", b"x")
    assert cache.get("score:creditrisk:3:compiled:abc") == b"x"
    assert cache.get("score:creditrisk:3:compiled:def") is None
    assert cache.get("CUS-1003") is None
    got = samples(m.exposition()[0].decode())
    name = f"creditrisk_{CACHE_LOOKUPS}_total"
    assert got[(name, (("backend", "memory"), ("keyspace", "score"), ("result", "hit")))] == 1
    assert got[(name, (("backend", "memory"), ("keyspace", "score"), ("result", "miss")))] == 1
    assert got[(name, (("backend", "memory"), ("keyspace", "other"), ("result", "miss")))] == 1
    assert keyspace("CUS-1003:x") == "other" and keyspace("a" * 40 + ":x") == "other"


def _record() -> DecisionRecord:
    reasons = [{"code": "excessive_obligations", "text": "Excessive obligations in relation to income",
                "features": [{"name": "debt_to_income", "value": 0.48, "contribution": 0.5}]}]
    return DecisionRecord.from_score(SimpleNamespace(
        recommendation="deny", pd=0.31, confidence=0.9, risk_class="high_risk", model_version="3", reasons=reasons,
        attributions={"debt_to_income": 0.5}, features={"debt_to_income": 0.48}, policy_reasons=[],
        application_id="APP-1"))


class _Stub:
    def __init__(self, provider: str, model: str, answer: object) -> None:
        self.provider, self.model, self.answer = provider, model, answer

    def generate(self, record: DecisionRecord) -> Completion:
        if isinstance(self.answer, Exception):
            raise self.answer
        return Completion(str(self.answer), self.provider, self.model, 120, 40, 1.0, 0.002)

    def stream(self, record: DecisionRecord) -> ProviderStream:
        c = self.generate(record)
        return ProviderStream(iter([c.text]), lambda text: c)


def test_explanations_count_fallbacks_tokens_and_cost() -> None:
    m = PrometheusMetrics()
    good = "The debt-to-income ratio of 48% raised the estimated risk."
    engine = ExplanationEngine(_Stub("openai", "gpt-4o", ProviderError("timeout", "slow")),
                               _Stub("anthropic", "claude-sonnet-4-5", good), metrics=m)
    assert engine.explain(_record()).explanation.fallback_used
    list(ExplanationEngine(_Stub("openai", "gpt-4o", good.replace("48", "58")), None, metrics=m).stream(_record()))
    ExplanationEngine(metrics=m).explain(_record())  # template only: no fallback
    got = samples(m.exposition()[0].decode())
    assert got[("creditrisk_explanations_total", (("served_by", "fallback"),))] == 1
    assert got[("creditrisk_explanations_total", (("served_by", "template"),))] == 2
    assert got[("creditrisk_explanation_fallbacks_total", (("reason", "error"), ("to", "fallback_llm")))] == 1
    assert got[("creditrisk_explanation_fallbacks_total", (("reason", "fact_check"), ("to", "template")))] == 1
    assert got[("creditrisk_errors_total", (("component", "llm"), ("kind", "timeout")))] == 1
    claude = (("model", "claude-sonnet-4-5"), ("provider", "anthropic"))
    assert got[("creditrisk_llm_tokens_total", (("direction", "input"), *claude))] == 120
    assert got[("creditrisk_llm_tokens_total", (("direction", "output"), *claude))] == 40
    assert got[("creditrisk_llm_cost_usd_total", claude)] == pytest.approx(0.002)
    assert got[("creditrisk_llm_calls_total", (("model", "gpt-4o"), ("provider", "openai"), ("result", "error")))] == 1
    assert got[("creditrisk_llm_calls_total",
                (("model", "gpt-4o"), ("provider", "openai"), ("result", "failed_check")))] == 1


MULTIPROC = textwrap.dedent("""
    import sys
    from backend.platform.adapters.metrics_prometheus import PrometheusMetrics
    m = PrometheusMetrics()
    if sys.argv[1] == "count":
        m.inc("http_requests", {"route": "/v1/score", "method": "POST", "status": "200"}, 2)
    else:
        sys.stdout.write(m.exposition()[0].decode())
""")


def test_multiprocess_dir_sums_the_workers(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for arg in ("count", "count", "render"):
        res = subprocess.run([sys.executable, "-c", MULTIPROC, arg], env=env, cwd=ROOT, capture_output=True,
                             text=True, timeout=60, check=True)
    assert samples(res.stdout)[("creditrisk_http_requests_total", tuple(sorted(REQ.items())))] == 4
