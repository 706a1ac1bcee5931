"""The SageMaker ``ModelServer`` adapter: exact ``invoke_endpoint`` requests and responses through botocore's
Stubber, retries then the documented fallback on throttling, 5xx and timeouts, garbage refused, and the
whole path over HTTP: boto3's ``sagemaker-runtime`` client → a loopback stand-in for the runtime front
end → the real serving container app."""

from __future__ import annotations

import io
import json
import shutil
import threading
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.response import StreamingBody
from botocore.stub import Stubber
from sagemaker_support import APPLICATION, RuntimeShim, free_port, package_into
from sqlalchemy import select

from backend.container import build_services
from backend.container.adapters import build_model_server
from backend.container.settings import load_settings
from backend.domain import Actor
from backend.domain.policy import REVIEW
from backend.models.adapters import sagemaker_runtime as sm
from backend.models.adapters.sagemaker_remote import MSG_ROLE, MSG_VERSION
from backend.models.adapters.sagemaker_runtime import SageMakerError, SageMakerModelServer
from backend.models.provider import ModelProvider
from backend.platform.db.tables_book import Prediction
from backend.scoring import ScoringService
from backend.serving.app import build
from backend.serving.scorer import score_items

ENDPOINT = "creditrisk-test"
OFFICER = Actor("officer", "loan_officer")


@pytest.fixture
def env(tmp_path: Path, sqlite_database, clock, model_registry: Path):
    """Services on SQLite with a copy of the session's model registry, configured for SageMaker."""
    root = tmp_path / "models"
    shutil.copytree(model_registry, root)
    settings = load_settings(data_dir=tmp_path, auth={"bcrypt_rounds": 4},
                             model={"registry_dir": root, "server": "sagemaker", "sagemaker_endpoint": ENDPOINT})
    svc = build_services(settings, db=sqlite_database, clock=clock)
    local = ModelProvider(settings.model.model_copy(update={"server": "local", "engine": "compiled"}),
                          settings.policy).get("champion")
    return svc, local


def _scoring(svc, server=None, model_settings=None) -> ScoringService:
    """The services' scoring use case over a model provider with the given SageMaker server (or settings)."""
    model = model_settings or svc.settings.model
    provider = ModelProvider(model, svc.settings.policy, server=server or build_model_server(model))
    return ScoringService(svc.db, svc.cache, provider, svc.clock, svc.rollout, pii=getattr(svc.scoring, "pii", None))


def _stubbed(**kw):
    client = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing").client(
        "sagemaker-runtime", region_name="us-east-1", config=Config(retries={"total_max_attempts": 1}))
    server = SageMakerModelServer(ENDPOINT, region="us-east-1", client=client, sleep=lambda _s: None, **kw)
    return server, Stubber(client)


def _answer(local, cleans, **change) -> dict:
    doc = {"model_name": local.name, "model_version": local.version, "predictions": score_items(local, cleans)}
    for item in doc["predictions"]:
        item.update(change)
    return doc


def _body(doc) -> dict:
    data = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return {"Body": StreamingBody(io.BytesIO(data), len(data)), "ContentType": "application/json",
            "InvokedProductionVariant": "AllTraffic"}


def _request(clean) -> dict:
    body = json.dumps({"instances": [clean]}, allow_nan=False, separators=(",", ":")).encode()
    return {"EndpointName": ENDPOINT, "Body": body, "ContentType": "application/json", "Accept": "application/json"}


def _engine_of(svc, prediction_id: str) -> tuple[str, str, str | None]:
    with svc.db.read() as s:
        row = s.execute(select(Prediction).where(Prediction.id == __import__("uuid").UUID(prediction_id))).scalar_one()
        return row.engine, row.model_role, row.fallback_error


def test_invoke_endpoint_shapes_and_a_prediction_recorded_as_sagemaker(env):
    svc, local = env
    clean = svc.scoring.validate(APPLICATION, local)
    server, stub = _stubbed()
    stub.add_response("invoke_endpoint", _body(_answer(local, [clean])), _request(clean))
    stub.add_response("invoke_endpoint", _body(_answer(local, [clean])), _request(clean))
    with stub:
        [r] = server.invoke([clean])
        assert (r.model_version, r.model_role, r.variant) == (local.version, "primary", "AllTraffic")
        assert set(r.attributions) == set(local.columns) and 0 <= r.pd <= 1
        result = _scoring(svc, server).score(APPLICATION, submitter=OFFICER, engine=svc.settings.model.engine)
        stub.assert_no_pending_responses()
    mine = svc.scoring.evaluate(clean, local, use_cache=False)  # the local compiled scorer
    assert (result.engine, result.model_role, result.fallback_error) == ("sagemaker", "primary", None)
    assert result.pd == pytest.approx(mine.pd, abs=1e-12) and result.recommendation == mine.recommendation
    assert [x["code"] for x in result.reasons] == [x["code"] for x in mine.reasons]
    assert _engine_of(svc, result.prediction_id) == ("sagemaker", "primary", None)


def test_throttling_and_5xx_are_retried_then_the_local_fallback_serves(env):
    svc, local = env
    clean = svc.scoring.validate(APPLICATION, local)
    server, stub = _stubbed(max_attempts=2)
    stub.add_client_error("invoke_endpoint", "ThrottlingException", "Rate exceeded", 400, expected_params=_request(clean))
    stub.add_response("invoke_endpoint", _body(_answer(local, [clean])), _request(clean))
    stub.add_client_error("invoke_endpoint", "ServiceUnavailable", "try later", 503)
    stub.add_client_error("invoke_endpoint", "InternalFailure", "oops", 500)
    stub.add_client_error("invoke_endpoint", "ModelError", "client error (422) from model", 424,
                          modeled_fields={"OriginalStatusCode": 422})
    with stub:
        assert server.invoke([clean])[0].model_version == local.version
        assert server.stats == {"calls": 2, "retries": 1, "failures": 0}
        scoring = _scoring(svc, server)
        down = scoring.score({**APPLICATION, "application_id": "APP-5XX"}, submitter=OFFICER, engine="sagemaker")
        with pytest.raises(SageMakerError) as refused:  # a 4xx from the container: not retried
            server.invoke([clean])
        stub.assert_no_pending_responses()
    assert refused.value.kind == sm.REFUSED and server.stats["calls"] == 5
    assert (down.engine, down.model_role) == ("sagemaker", "fallback")
    assert "InternalFailure" in down.fallback_error and "after 2 attempt(s)" in down.fallback_error
    assert down.recommendation == REVIEW and "fallback model in use" in down.policy_reasons
    assert _engine_of(svc, down.prediction_id)[:2] == ("sagemaker", "fallback")


GARBAGE = [
    b"<html>busy</html>",
    json.dumps({"predictions": []}).encode(),
    json.dumps({"predictions": [{"pd": 0.1}]}).encode(),
]


def test_garbage_answers_are_refused_and_never_recorded_as_scores(env):
    svc, local = env
    clean = svc.scoring.validate(APPLICATION, local)
    good = _answer(local, [clean])["predictions"][0]
    bad_items = [{**good, "pd": 1.5}, {**good, "model_version": ""}, {**good, "raw_score": True},
                 {**good, "members": []}, {**good, "risk_class": "medium"},
                 {**good, "attributions": {**good["attributions"], "credit_score": float("nan")}}]
    bodies = GARBAGE + [json.dumps({"predictions": [item]}).encode() for item in bad_items]
    server, stub = _stubbed(max_attempts=3)
    for body in bodies:
        stub.add_response("invoke_endpoint", _body(body))
    stub.add_response("invoke_endpoint", {**_body(_answer(local, [clean])), "ContentType": "text/html"})
    with stub:
        for _ in range(len(bodies) + 1):
            with pytest.raises(SageMakerError) as exc:
                server.invoke([clean])
            assert exc.value.kind == sm.BAD_RESPONSE  # refused at once: garbage is not retried
    assert server.stats["calls"] == len(bodies) + 1
    # valid JSON from another version, or from the endpoint's own fallback: refused by the scoring seam
    server, stub = _stubbed()
    apps = [{**APPLICATION, "loan_amount": 12000 + i} for i in range(3)]  # distinct: no cached result in between
    cleans = [svc.scoring.validate(a, local) for a in apps]
    stub.add_response("invoke_endpoint", _body(_answer(local, cleans[:1], model_version="v-other")))
    stub.add_response("invoke_endpoint", _body(_answer(local, cleans[1:2], model_role="fallback", fallback_error="x")))
    stub.add_response("invoke_endpoint", _body(_answer(local, cleans[2:], pd=0.999)))
    scoring = _scoring(svc, server)
    with stub:
        results = [scoring.score(a, submitter=OFFICER, engine="sagemaker", persist=False) for a in apps]
    assert [r.model_role for r in results] == ["fallback"] * 3
    assert MSG_VERSION.format(got="v-other", want=local.version) in results[0].fallback_error
    assert MSG_ROLE.format(error="x") in results[1].fallback_error
    assert "pd is not the calibrated raw score" in results[2].fallback_error


@pytest.fixture
def container_url(model_registry: Path, tmp_path: Path):
    """The serving container app (from a real package) in a uvicorn thread on a free loopback port."""
    import uvicorn

    model_dir, _info = package_into(model_registry, tmp_path / "pkg")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(build(model_dir, settings=load_settings(data_dir=tmp_path)),
                                           host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_boto3_over_http_to_the_real_container(env, container_url, monkeypatch):
    svc, local = env
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with RuntimeShim(container_url, ENDPOINT) as shim:
        model = svc.settings.model.model_copy(update={"sagemaker_endpoint_url": shim.url, "sagemaker_read_timeout": 0.5,
                                                      "sagemaker_max_attempts": 2})
        scoring = _scoring(svc, model_settings=model)
        shim.faults = ["throttle"]  # retried: the second attempt is answered by the container
        result = scoring.score(APPLICATION, submitter=OFFICER, engine=model.engine)
        assert (result.engine, result.model_role, result.fallback_error) == ("sagemaker", "primary", None)
        clean = scoring.validate(APPLICATION, local)
        assert result.pd == pytest.approx(svc.scoring.evaluate(clean, local, use_cache=False).pd, abs=1e-12)
        assert [r["path"] for r in shim.requests] == [f"/endpoints/{ENDPOINT}/invocations"] * 2
        assert shim.requests[-1]["content_type"] == "application/json"
        assert json.loads(shim.requests[-1]["body"]) == {"instances": [clean]}
        shim.faults = ["slow", "slow"]  # two read timeouts: the local fallback serves, and says why
        slow = scoring.score({**APPLICATION, "application_id": "APP-SLOW", "loan_amount": 9000}, submitter=OFFICER,
                             engine=model.engine)  # other features: not a cached score
        assert slow.model_role == "fallback" and "timeout" in slow.fallback_error.lower()
        assert _engine_of(svc, slow.prediction_id)[:2] == ("sagemaker", "fallback")
