"""GET /metrics after real requests: counts, latency, cache hits, model fallbacks, explanations; route
templates only (no raw path, id, applicant or user in any label); access control."""

from __future__ import annotations

import dataclasses

from api_helpers import assert_problem
from prometheus_client.parser import text_string_to_metric_families

from backend.api.routes_metrics import CLOSED_IN_PRODUCTION, NOT_SCRAPEABLE, TOKEN_REQUIRED
from backend.models.registry import Registry
from backend.platform.adapters.metrics_noop import NoopMetrics
from backend.platform.metrics_config import MetricsSettings

PROBE_ID = "SECRET-ID-4242"


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def _tamper_primary(svc) -> str:
    root = svc.settings.model.registry_dir
    version = Registry(root, name="creditrisk").resolve("champion")
    path = root / "creditrisk" / version / "primary.npz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    svc.models.invalidate()
    return str(version)


def test_metrics_count_requests_latency_cache_fallbacks_without_pii(api_sqlite, sample):
    a = api_sqlite
    officer = a.auth("olivia")
    first = a.client.post("/v1/score", json=sample[0], headers=officer).json()
    assert a.client.post("/v1/score", json=sample[0], headers=officer).status_code == 200  # same features: cache hit
    batch = a.client.post("/v1/score", json={"applications": sample[1:4]}, headers=officer)
    assert batch.status_code == 200
    assert a.client.post(f"/v1/decisions/{first['decision_id']}/explanation", headers=officer).status_code == 201
    assert a.client.get(f"/v1/decisions/{PROBE_ID}", headers=officer).status_code == 404
    assert a.client.get(f"/nowhere/{PROBE_ID}").status_code == 404
    version = _tamper_primary(a.svc)
    assert a.client.post("/v1/score", json=sample[5], headers=officer).status_code == 200

    res = a.client.get("/metrics")
    assert res.status_code == 200
    assert res.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    got = _samples(res.text)

    def value(name: str, **labels: str) -> float:
        return got.get((name, tuple(sorted(labels.items()))), 0.0)

    assert value("creditrisk_http_requests_total", route="/v1/score", method="POST", status="200") == 4
    assert value("creditrisk_http_request_duration_seconds_count", route="/v1/score", method="POST") == 4
    assert value("creditrisk_http_request_duration_seconds_sum", route="/v1/score", method="POST") > 0
    assert value("creditrisk_http_requests_total", route="/v1/decisions/{decision_id}", method="GET",
                 status="404") == 1
    assert value("creditrisk_http_requests_total", route="(unmatched)", method="GET", status="404") == 1
    assert value("creditrisk_http_requests_total", route="/oauth/token", method="POST", status="200") >= 1
    assert value("creditrisk_cache_lookups_total", backend="memory", keyspace="score", result="hit") == 1
    assert value("creditrisk_cache_lookups_total", backend="memory", keyspace="score", result="miss") == 2
    assert value("creditrisk_scores_total", model_role="primary") == 5
    assert value("creditrisk_scores_total", model_role="fallback") == 1
    assert value("creditrisk_model_fallbacks_total", model_version=version) == 1
    assert value("creditrisk_explanations_total", served_by="template") == 1

    routes = {dict(labels).get("route") for (_, labels) in got} - {None}
    templates = set(a.client.get("/openapi.json").json()["paths"]) | {"/metrics", "(unmatched)"}
    assert routes <= templates, routes - templates
    text = res.text
    leaks = [PROBE_ID, first["decision_id"], "olivia", officer["Authorization"].split()[1][:20]]
    leaks += [str(app["applicant_id"]) for app in sample[:6] if app.get("applicant_id")]
    assert not [s for s in leaks if s in text]


def test_metrics_access_control(api_sqlite):
    a = api_sqlite
    base = a.ctx.settings
    token = "m" * 32
    a.ctx.settings = base.model_copy(update={"metrics": MetricsSettings(token=token)})
    body = assert_problem(a.client.get("/metrics"), 401)
    assert body["detail"] == TOKEN_REQUIRED
    assert_problem(a.client.get("/metrics", headers={"Authorization": "Bearer " + "x" * 32}), 401)
    assert_problem(a.client.get("/metrics", headers=a.auth("ada")), 401)  # an API token is not the metrics token
    assert a.client.get("/metrics", headers={"Authorization": f"Bearer {token}"}).status_code == 200

    a.ctx.settings = base.model_copy(update={"env": "production"})
    assert assert_problem(a.client.get("/metrics"), 403)["detail"] == CLOSED_IN_PRODUCTION

    a.ctx.settings = base
    a.ctx.services = dataclasses.replace(a.svc, metrics=NoopMetrics())
    assert assert_problem(a.client.get("/metrics"), 404)["detail"] == NOT_SCRAPEABLE.format(backend="none")
    assert "/metrics" not in a.client.get("/openapi.json").json()["paths"]
