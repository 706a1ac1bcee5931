"""The Lambda explainer driven through the real boto3 client against a fake Lambda Invoke API on loopback.

``FakeLambda`` speaks ``POST /2015-03-31/functions/{name}/invocations`` and, unless a test scripts
another reply, runs the real ``lambda_handler.handler`` in-process (a raised exception becomes a
``X-Amz-Function-Error: Unhandled`` reply, as the Lambda runtime does). The function's own engine is
the template or the OpenAI adapter pointed at ``FakeLLM`` (shared with test_llm_providers.py). Also:
service errors (500/429/404), a reply slower than the 0.5 s read timeout, garbage replies, hallucinated
text from the function (rejected by the console's own fact-check), the fallback order, streaming,
exact request shapes with botocore's Stubber and `creditrisk explain` with the lambda provider.
Dummy AWS credentials only; nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

# The loopback LLM fake and its scripted answers live in the sibling test module (tests/integration is
# on sys.path under pytest's default import mode).
from test_llm_providers import GOOD, HALLUCINATIONS, IN_TOK, OUT_TOK, FakeLLM

from backend.container.adapters import build_engine
from backend.domain.features import FEATURES_BY_NAME
from backend.explanations.adapters.lambda_ import FUNCTION_REQUIRED, LambdaExplainer
from backend.explanations.config import LLMProviderSettings, LLMSettings
from backend.explanations.engine import ExplanationEngine
from backend.explanations.factcheck import fact_check
from backend.explanations.providers import (
    BAD_RESPONSE,
    CONNECTION,
    EMPTY_ANSWER,
    RATE_LIMITED,
    SERVER_ERROR,
    TIMEOUT,
    ProviderError,
)
from backend.explanations.record import DecisionRecord, FeatureFact, ReasonFact, format_value
from backend.explanations.template import TemplateExplainer
from backend.platform.config import SettingsError
from backend.serving import explain_lambda as lambda_handler

FN = "creditrisk-explain"
INVOKE = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations$")
OA = "/v1/chat/completions"


def _fact(name: str, value: Any, c: float) -> FeatureFact:
    f = FEATURES_BY_NAME[name]
    return FeatureFact(name, f.description, f.unit, f.kind, value, format_value(name, value), c, f.reason_code)


@pytest.fixture
def record() -> DecisionRecord:
    """The record GOOD and HALLUCINATIONS were written for (as in test_llm_providers.py)."""
    facts = {"debt_to_income": _fact("debt_to_income", 0.48, 0.61),
             "num_inquiries_6m": _fact("num_inquiries_6m", 3, 0.22),
             "savings_balance": _fact("savings_balance", 12_500.0, -0.18)}
    reasons = (ReasonFact("excessive_obligations", "Excessive obligations in relation to income", ("debt_to_income",)),
               ReasonFact("recent_inquiries", "Number of recent inquiries on credit bureau report",
                          ("num_inquiries_6m",)))
    return DecisionRecord("deny", 0.342, 0.91, "high_risk", "t", reasons, facts, application_id="APP-7")


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """Dummy credentials, no AWS config files, no instance metadata, no CREDITRISK_* leaking in; a cold container."""
    for k in list(os.environ):
        if k.startswith(("CREDITRISK_", "AWS_")) and k not in ("AWS_CA_BUNDLE", "CREDITRISK_MODEL__SIGNING_KEY"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDLOOPBACKTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "loopback-test-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(lambda_handler, "_ENGINE", None)


class FakeLambda:
    """Scripted replies, in order; when the script is empty the real handler runs (``invoke``).

    Actions: ``invoke``; ``reply`` (a dict or bytes sent with 200); ``status`` ((code, error type));
    ``sleep`` (seconds, then nothing); ``crash`` ((error type, message): a runtime-reported failure).
    """

    def __init__(self) -> None:
        self.script: list[tuple[str, Any]] = []
        self.requests: list[SimpleNamespace] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                m = INVOKE.match(self.path)
                fake.requests.append(SimpleNamespace(path=self.path, headers=dict(self.headers), body=body,
                                                     function=urllib.parse.unquote(m["name"]) if m else None))
                action, arg = fake.script.pop(0) if fake.script else ("invoke", None)
                try:
                    if m is None:
                        fake.send(self, 404, {"message": "no such route"}, error="ResourceNotFoundException")
                    else:
                        fake.act(self, action, arg, body, fake.requests[-1].function)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def on(self, *actions: tuple[str, Any]) -> None:
        self.script += list(actions)

    def act(self, h: BaseHTTPRequestHandler, action: str, arg: Any, body: bytes, function: str) -> None:
        if action == "sleep":
            time.sleep(arg)
            return
        if action == "status":
            code, error = arg
            self.send(h, code, {"Type": "Service" if code >= 500 else "User", "message": f"fake {code}"}, error=error)
        elif action == "reply":
            self.send(h, 200, arg)
        elif action == "crash":
            etype, msg = arg
            self.send(h, 200, {"errorType": etype, "errorMessage": msg}, function_error="Unhandled")
        else:  # invoke the real handler, as the Python runtime does
            ctx = SimpleNamespace(function_name=function, aws_request_id="req-1",
                                  get_remaining_time_in_millis=lambda: 30_000)
            try:
                result = lambda_handler.handler(json.loads(body), ctx)
            except Exception as exc:  # noqa: BLE001 - reported like the runtime reports it
                self.send(h, 200, {"errorMessage": str(exc), "errorType": type(exc).__name__,
                                   "stackTrace": ["  File \"lambda_handler.py\" ..."]}, function_error="Unhandled")
                return
            self.send(h, 200, result)

    @staticmethod
    def send(h: BaseHTTPRequestHandler, status: int, payload: Any, *, error: str = "",
             function_error: str = "") -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("content-type", "application/json")
        h.send_header("content-length", str(len(data)))
        h.send_header("x-amzn-requestid", "req-1")
        if status == 200:
            h.send_header("x-amz-executed-version", "$LATEST")
        if error:
            h.send_header("x-amzn-errortype", error)
        if function_error:
            h.send_header("x-amz-function-error", function_error)
        h.end_headers()
        h.wfile.write(data)


@pytest.fixture
def fake_lambda() -> Iterator[FakeLambda]:
    f = FakeLambda()
    yield f
    f.server.shutdown()
    f.server.server_close()


@pytest.fixture
def fake_llm() -> Iterator[FakeLLM]:
    f = FakeLLM()
    yield f
    f.server.shutdown()
    f.server.server_close()


def _lambda(fake: FakeLambda, *, retries: int = 0, fallback: LLMProviderSettings | None = None,
            timeout: float = 5.0) -> LLMSettings:
    """The console's settings. The timeout covers the function's cold start (the OpenAI SDK's first
    import alone takes about a second here): only the timeout tests use 0.5 s."""
    return LLMSettings(provider="lambda", model=FN, base_url=fake.url, timeout=timeout, max_retries=retries,
                       fallback=fallback or LLMProviderSettings())


def _openai(fake: FakeLLM) -> LLMProviderSettings:
    return LLMProviderSettings(provider="openai", base_url=fake.url + "/v1", api_key="sk-test", timeout=0.3,
                               max_retries=0)


def _function_uses_openai(monkeypatch: pytest.MonkeyPatch, fake: FakeLLM) -> None:
    """The function's own environment: OpenAI (at the loopback fake), template fallback."""
    for k, v in {"PROVIDER": "openai", "BASE_URL": fake.url + "/v1", "API_KEY": "sk-test", "TIMEOUT": "0.3",
                 "MAX_RETRIES": "0"}.items():
        monkeypatch.setenv(f"CREDITRISK_LLM__{k}", v)


def _reply(text: str, **extra: Any) -> dict[str, Any]:
    return {"ok": True, "text": text, "provider": "openai", "model": "gpt-4o", "fallback_used": False,
            "fact_check_ok": True, "failures": [], "usage": [], **extra}


# -- success -----------------------------------------------------------------------------------------------
def test_success_with_the_template_inside(fake_lambda: FakeLambda, record: DecisionRecord) -> None:
    out = build_engine(_lambda(fake_lambda)).explain(record)
    exp = out.explanation
    assert (exp.provider, exp.model, exp.fallback_used) == ("lambda", FN, False)
    assert exp.text == TemplateExplainer().render(record)
    u, = out.usage
    assert (u.provider, u.model, u.fact_check, u.error) == ("lambda", FN, "passed", None)
    assert (u.input_tokens, u.output_tokens, u.cost_usd) == (None, None, None)  # the template costs nothing
    assert u.latency_ms > 0
    req, = fake_lambda.requests
    assert req.function == FN and req.path == f"/2015-03-31/functions/{FN}/invocations"
    headers = {k.lower(): v for k, v in req.headers.items()}
    assert headers["x-amz-invocation-type"] == "RequestResponse"
    assert "Credential=AKIDLOOPBACKTEST/" in headers["authorization"]  # signed with the dummy key
    assert "/eu-central-1/lambda/" in headers["authorization"]  # the region from AWS_DEFAULT_REGION
    event = json.loads(req.body)
    assert event == {"record": record.to_dict()} and DecisionRecord.from_dict(event["record"]) == record


def test_success_with_a_checked_llm_answer_inside(fake_lambda: FakeLambda, fake_llm: FakeLLM,
                                                  record: DecisionRecord, monkeypatch: pytest.MonkeyPatch) -> None:
    _function_uses_openai(monkeypatch, fake_llm)
    fake_llm.on(OA, ("ok", GOOD))
    out = build_engine(_lambda(fake_lambda)).explain(record)
    assert out.explanation.text == GOOD and out.explanation.provider == "lambda" and out.checks[0].ok
    u, = out.usage
    assert (u.input_tokens, u.output_tokens) == (IN_TOK, OUT_TOK)  # the function's own usage rows, summed
    assert u.cost_usd == pytest.approx((IN_TOK * 2.50 + OUT_TOK * 10.00) / 1e6)  # gpt-4o's example price
    _, body = fake_llm.requests[0]
    assert body["messages"][-1]["content"] == record.to_prompt_json()  # the function rebuilt the same record


def test_the_function_rejects_its_own_hallucination_and_returns_the_template(
        fake_lambda: FakeLambda, fake_llm: FakeLLM, record: DecisionRecord, monkeypatch: pytest.MonkeyPatch) -> None:
    _function_uses_openai(monkeypatch, fake_llm)
    fake_llm.on(OA, ("ok", HALLUCINATIONS["wrong_number"]))
    out = build_engine(_lambda(fake_lambda)).explain(record)
    assert out.explanation.text == TemplateExplainer().render(record) and out.explanation.provider == "lambda"
    assert out.usage[0].input_tokens == IN_TOK and out.usage[0].cost_usd  # the rejected answer still cost money


def test_streaming_yields_the_whole_text_once(fake_lambda: FakeLambda, fake_llm: FakeLLM, record: DecisionRecord,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    _function_uses_openai(monkeypatch, fake_llm)
    fake_llm.on(OA, ("ok", GOOD), ("ok", GOOD))
    engine = build_engine(_lambda(fake_lambda))
    s = engine.providers[0].stream(record)
    assert list(s) == [GOOD] and s.completion is not None and s.completion.output_tokens == OUT_TOK
    es = engine.stream(record)
    events = list(es)
    texts = [e.text for e in events if e.kind == "text"]
    assert "".join(texts) == GOOD and len(texts) > 1 and all(fact_check(t, record).ok for t in texts)
    assert events[-1].kind == "final" and es.outcome is not None and es.outcome.usage[0].streamed


# -- faults ------------------------------------------------------------------------------------------------
class _Boom:
    def explain(self, record: DecisionRecord) -> None:
        raise RuntimeError("boom with the applicant's data")


def test_function_error_falls_back_to_the_template(fake_lambda: FakeLambda, record: DecisionRecord,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lambda_handler, "_ENGINE", _Boom())  # a warm container whose engine raises
    out = build_engine(_lambda(fake_lambda)).explain(record)
    assert out.explanation.provider == "template" and out.explanation.text == TemplateExplainer().render(record)
    err = out.usage[0].error or ""
    assert err.startswith(SERVER_ERROR) and "Unhandled" in err and "RuntimeError" in err
    assert "boom" not in err  # the function's message (may hold data) is left in its logs
    assert out.usage[0].fact_check == "not_checked"


def test_function_timeout_reported_by_the_runtime(fake_lambda: FakeLambda, record: DecisionRecord) -> None:
    fake_lambda.on(("crash", ("Sandbox.Timedout", "RequestId: req-1 Error: Task timed out after 30.00 seconds")))
    out = build_engine(_lambda(fake_lambda)).explain(record)
    assert out.explanation.provider == "template" and (out.usage[0].error or "").startswith(TIMEOUT)


@pytest.mark.parametrize(("status", "error", "kind"), [
    (500, "ServiceException", SERVER_ERROR), (502, "ResourceNotReadyException", SERVER_ERROR),
    (429, "TooManyRequestsException", RATE_LIMITED), (404, "ResourceNotFoundException", BAD_RESPONSE),
    (403, "AccessDeniedException", BAD_RESPONSE)])
def test_service_errors(fake_lambda: FakeLambda, record: DecisionRecord, status: int, error: str, kind: str) -> None:
    fake_lambda.on(("status", (status, error)))
    out = build_engine(_lambda(fake_lambda)).explain(record)
    assert out.explanation.provider == "template"
    assert (out.usage[0].error or "").startswith(kind) and error in (out.usage[0].error or "")
    assert len(fake_lambda.requests) == 1  # max_retries=0: one attempt


def test_bounded_retry_recovers(fake_lambda: FakeLambda, record: DecisionRecord) -> None:
    fake_lambda.on(("status", (500, "ServiceException")))
    out = build_engine(_lambda(fake_lambda, retries=1)).explain(record)
    assert out.explanation.provider == "lambda" and len(fake_lambda.requests) == 2


def test_read_timeout(fake_lambda: FakeLambda, record: DecisionRecord) -> None:
    fake_lambda.on(("sleep", 2.0))
    out = build_engine(_lambda(fake_lambda, timeout=0.5)).explain(record)
    assert out.explanation.provider == "template" and out.explanation.text == TemplateExplainer().render(record)
    assert (out.usage[0].error or "").startswith(TIMEOUT) and len(fake_lambda.requests) == 1


def test_unreachable_endpoint(record: DecisionRecord) -> None:
    fake = FakeLambda()
    fake.server.shutdown()
    fake.server.server_close()  # the port is closed now: connection refused
    out = build_engine(_lambda(fake)).explain(record)
    assert out.explanation.provider == "template" and (out.usage[0].error or "").startswith(CONNECTION)


@pytest.mark.parametrize(("reply", "kind"), [
    (b"<html>502 Bad Gateway</html>", BAD_RESPONSE),
    (b'{"ok": tru', BAD_RESPONSE),
    (b"[1, 2]", BAD_RESPONSE),
    (b'"just a string"', BAD_RESPONSE),
    ({"ok": True}, BAD_RESPONSE),
    ({"ok": "yes", "text": GOOD}, BAD_RESPONSE),
    ({"ok": True, "text": 42}, BAD_RESPONSE),
    ({"ok": True, "text": "   "}, EMPTY_ANSWER),
    ({"ok": True, "text": GOOD, "usage": {"input_tokens": 3}}, BAD_RESPONSE),
    ({"ok": True, "text": GOOD, "usage": [{"input_tokens": "many"}]}, BAD_RESPONSE),
    ({"ok": True, "text": GOOD, "usage": [{"cost_usd": -1.0}]}, BAD_RESPONSE),
    (b'{"ok": true, "text": "x", "usage": [{"cost_usd": NaN}]}', BAD_RESPONSE),
    ({"ok": False, "error": {"kind": "bad_request", "message": "record.pd: must be a finite number"}}, BAD_RESPONSE),
    ({"ok": False, "error": {"kind": "config", "message": "Invalid setting CREDITRISK_LLM__TIMEOUT"}}, SERVER_ERROR),
    ({"ok": False}, SERVER_ERROR),
])
def test_garbage_replies(fake_lambda: FakeLambda, record: DecisionRecord, reply: Any, kind: str) -> None:
    fake_lambda.on(("reply", reply))
    out = build_engine(_lambda(fake_lambda)).explain(record)
    assert out.explanation.provider == "template" and out.explanation.text == TemplateExplainer().render(record)
    assert (out.usage[0].error or "").startswith(kind)


@pytest.mark.parametrize("fault", sorted(HALLUCINATIONS))
def test_hallucination_from_the_function_is_rejected_locally(fake_lambda: FakeLambda, record: DecisionRecord,
                                                             fault: str) -> None:
    """A function that returns unchecked text (a bug, an old version) never reaches the officer."""
    fake_lambda.on(("reply", _reply(HALLUCINATIONS[fault], usage=[
        {"input_tokens": IN_TOK, "output_tokens": OUT_TOK, "cost_usd": 0.003}])))
    out = build_engine(_lambda(fake_lambda)).explain(record)
    assert out.explanation.provider == "template" and out.explanation.text == TemplateExplainer().render(record)
    assert out.explanation.failures[0].kind == fault  # the first failure names it (an allow-list may add "unaccounted")
    u = out.usage[0]
    assert (u.provider, u.fact_check, u.input_tokens, u.cost_usd) == ("lambda", "failed", IN_TOK, 0.003)
    assert u.failed_claims[0].startswith(fault)


# -- fallback order ----------------------------------------------------------------------------------------
def test_lambda_fails_then_the_fallback_provider_answers(fake_lambda: FakeLambda, fake_llm: FakeLLM,
                                                         record: DecisionRecord) -> None:
    fake_lambda.on(("status", (500, "ServiceException")))
    fake_llm.on(OA, ("ok", GOOD))
    out = build_engine(_lambda(fake_lambda, fallback=_openai(fake_llm))).explain(record)
    assert out.explanation.provider == "openai" and out.explanation.fallback_used and out.explanation.text == GOOD
    first, second = out.usage
    assert first.provider == "lambda" and first.fact_check == "not_checked" and "500" in (first.error or "")
    assert second.provider == "openai" and second.fallback_used and second.fact_check == "passed"


def test_lambda_and_fallback_fail_then_the_template(fake_lambda: FakeLambda, fake_llm: FakeLLM,
                                                    record: DecisionRecord) -> None:
    fake_lambda.on(("sleep", 2.0))
    fake_llm.on(OA, ("status", 500))
    out = build_engine(_lambda(fake_lambda, fallback=_openai(fake_llm), timeout=0.5)).explain(record)
    assert out.explanation.provider == "template" and out.explanation.fallback_used
    assert [(u.provider, (u.error or "").split(":")[0]) for u in out.usage] == [
        ("lambda", TIMEOUT), ("openai", SERVER_ERROR)]


# -- request shape and client settings (botocore Stubber) ----------------------------------------------------
def _stubbed(record: DecisionRecord) -> tuple[LambdaExplainer, Stubber]:
    client = boto3.session.Session().client("lambda", region_name="eu-west-1")
    return LambdaExplainer(LLMProviderSettings(provider="lambda", model=FN), client=client), Stubber(client)


def _body(payload: Any) -> StreamingBody:
    data = json.dumps(payload).encode()
    return StreamingBody(io.BytesIO(data), len(data))


def test_exact_request_with_stubber(record: DecisionRecord) -> None:
    lam, stub = _stubbed(record)
    payload = json.dumps({"record": record.to_dict()}, separators=(",", ":")).encode()
    stub.add_response("invoke", {"StatusCode": 200, "ExecutedVersion": "$LATEST", "Payload": _body(_reply(GOOD))},
                      {"FunctionName": FN, "InvocationType": "RequestResponse", "Payload": payload})
    with stub:
        c = lam.generate(record)
    stub.assert_no_pending_responses()
    assert (c.text, c.provider, c.model, c.input_tokens, c.cost_usd) == (GOOD, "lambda", FN, None, None)


@pytest.mark.parametrize(("response", "kind"), [
    ({"StatusCode": 202}, BAD_RESPONSE),
    ({"StatusCode": 200, "FunctionError": "Unhandled"}, SERVER_ERROR),
    ({"StatusCode": 200, "FunctionError": "Unhandled", "errorType": "Sandbox.Timedout"}, TIMEOUT),
])
def test_stubbed_replies(record: DecisionRecord, response: dict[str, Any], kind: str) -> None:
    lam, stub = _stubbed(record)
    etype = response.pop("errorType", "Runtime.ExitError")
    stub.add_response("invoke", {**response, "Payload": _body({"errorType": etype, "errorMessage": "x"})})
    with stub, pytest.raises(ProviderError) as exc:
        lam.generate(record)
    assert exc.value.kind == kind


def test_client_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    lam = LambdaExplainer(LLMProviderSettings(provider="lambda", model=f" {FN} ", base_url="http://127.0.0.1:9",
                                              timeout=2.5, max_retries=2))
    cfg = lam.client.meta.config
    assert (cfg.connect_timeout, cfg.read_timeout) == (2.5, 2.5)
    assert cfg.retries == {"total_max_attempts": 3, "mode": "standard"}  # 1 call + 2 retries
    assert lam.client.meta.endpoint_url == "http://127.0.0.1:9" and lam.model == FN
    assert lam.client.meta.region_name == "eu-central-1"  # AWS_DEFAULT_REGION
    assert LambdaExplainer(LLMProviderSettings(provider="lambda", model=FN, region="ap-south-1")).region == "ap-south-1"
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    assert LambdaExplainer(LLMProviderSettings(provider="lambda", model=FN)).client.meta.region_name == "us-east-1"


def test_function_name_is_required() -> None:
    with pytest.raises(SettingsError) as exc:
        build_engine(LLMSettings(provider="lambda"))
    assert str(exc.value) == FUNCTION_REQUIRED and "CREDITRISK_LLM__MODEL" in FUNCTION_REQUIRED
    with pytest.raises(SettingsError):
        build_engine(LLMSettings(fallback=LLMProviderSettings(provider="lambda")))


# -- the command line, by settings alone ------------------------------------------------------------------
def test_cli_explain_with_the_lambda_provider(tmp_path: Any, monkeypatch: pytest.MonkeyPatch, model_registry: Any,
                                              fake_lambda: FakeLambda) -> None:
    from typer.testing import CliRunner

    from backend.cli import app
    from backend.container import build_services
    from backend.container.settings import load_settings
    from backend.domain import Actor
    from backend.training.synthetic import generate

    monkeypatch.chdir(tmp_path)
    env = {"DATA_DIR": str(tmp_path / "var"), "MODEL__REGISTRY_DIR": str(tmp_path / "models"),
           "AUTH__BCRYPT_ROUNDS": "4", "LLM__PROVIDER": "lambda", "LLM__MODEL": FN, "LLM__BASE_URL": fake_lambda.url,
           "LLM__TIMEOUT": "10"}
    for k, v in env.items():
        monkeypatch.setenv(f"CREDITRISK_{k}", v)
    shutil.copytree(model_registry, tmp_path / "models")
    # The function runs in this process and would read this process's CREDITRISK_LLM__PROVIDER=lambda (and
    # refuse it): give it a warm container whose own environment chose the template.
    monkeypatch.setattr(lambda_handler, "_ENGINE", ExplanationEngine())
    svc = build_services(load_settings(), migrate=True)
    u = svc.users.add("olivia", role="loan_officer")[0]
    df = generate(1, seed=5).drop(columns=["default", "pd_true", "application_id"]).astype(object)
    r = svc.scoring.score(df.where(df.notna(), None).to_dict("records")[0],
                          submitter=Actor(u.username, u.role, u.id))
    res = CliRunner().invoke(app, ["explain", "--decision", r.prediction_id])
    assert res.exit_code == 0, res.output
    assert f"provider: lambda ({FN})" in res.output and "fact-check: passed" in res.output
    assert len(fake_lambda.requests) == 1
    svc.close()
