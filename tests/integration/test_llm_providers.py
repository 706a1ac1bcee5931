"""OpenAI and Anthropic adapters driven through the real SDKs against a fake HTTP server on loopback.

The fake speaks ``POST /v1/chat/completions`` (OpenAI, incl. ``stream=true`` SSE with a usage chunk)
and ``POST /v1/messages`` (Anthropic, incl. the streaming event sequence). Each test scripts the
replies: success, stream, HTTP 429/500/529, a sleep longer than the client timeout, garbage bodies and
hallucinated answers. Client timeouts are 0.3 s so the whole file runs in a few seconds.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from backend.container.adapters import build_engine
from backend.domain.features import FEATURES_BY_NAME
from backend.explanations.adapters.openai import OpenAIExplainer
from backend.explanations.config import LLMProviderSettings, LLMSettings
from backend.explanations.factcheck import (
    PROMISE,
    PROTECTED_ATTRIBUTE,
    UNKNOWN_REASON,
    WRONG_DIRECTION,
    WRONG_NUMBER,
    fact_check,
)
from backend.explanations.providers import BAD_RESPONSE, SYSTEM_PROMPT, TIMEOUT
from backend.explanations.record import DecisionRecord, FeatureFact, ReasonFact
from backend.explanations.template import TemplateExplainer

IN_TOK, OUT_TOK = 812, 95
GOOD = ("The model recommends denial; the estimated probability of default is 34.2%, which is very high. "
        "The debt-to-income ratio of 48% raised the risk. "
        "The applicant's 3 credit inquiries in the last 6 months also raised the risk. "
        "The savings balance of $12,500 lowered the risk.")
HALLUCINATIONS = {
    WRONG_NUMBER: GOOD.replace("48%", "41%"),
    WRONG_DIRECTION: GOOD.replace("$12,500 lowered", "$12,500 raised"),
    PROTECTED_ATTRIBUTE: GOOD + " The applicant's age also played a part.",
    PROMISE: GOOD + " With a smaller loan the applicant will be approved.",
    UNKNOWN_REASON: GOOD + " Bankruptcy was another reason.",
}


def _fact(name: str, value: Any, c: float) -> FeatureFact:
    from backend.explanations.record import format_value
    f = FEATURES_BY_NAME[name]
    return FeatureFact(name, f.description, f.unit, f.kind, value, format_value(name, value), c, f.reason_code)


@pytest.fixture
def record() -> DecisionRecord:
    facts = {"debt_to_income": _fact("debt_to_income", 0.48, 0.61),
             "num_inquiries_6m": _fact("num_inquiries_6m", 3, 0.22),
             "savings_balance": _fact("savings_balance", 12_500.0, -0.18)}
    reasons = (ReasonFact("excessive_obligations", "Excessive obligations in relation to income", ("debt_to_income",)),
               ReasonFact("recent_inquiries", "Number of recent inquiries on credit bureau report",
                          ("num_inquiries_6m",)))
    return DecisionRecord("deny", 0.342, 0.91, "high_risk", "t", reasons, facts)


class FakeLLM:
    """Scripted replies per path: ``ok``, ``stream``, ``status``, ``sleep``, ``garbage``, ``badjson``."""

    def __init__(self) -> None:
        self.script: dict[str, list[tuple[str, Any]]] = {"/v1/chat/completions": [], "/v1/messages": []}
        self.requests: list[tuple[str, dict[str, Any]]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                fake.requests.append((self.path, body))
                queue = fake.script.get(self.path)
                action, arg = queue.pop(0) if queue else ("status", 404)
                try:
                    fake.reply(self, action, arg, body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def on(self, path: str, *actions: tuple[str, Any]) -> None:
        self.script[path] += list(actions)

    def reply(self, h: BaseHTTPRequestHandler, action: str, arg: Any, body: dict[str, Any]) -> None:
        openai = h.path.endswith("chat/completions")
        if action == "sleep":
            time.sleep(arg)
            return
        if action == "status":
            self._send(h, arg, {"error": {"type": "overloaded_error" if arg == 529 else "api_error",
                                          "message": f"fake {arg}"}}, retry=True)
        elif action in ("garbage", "badjson"):
            data = b"<html>502 proxy</html>" if action == "garbage" else b'{"choices": [tru'
            self._raw(h, 200, "text/html" if action == "garbage" else "application/json", data)
        elif action == "ok":
            self._send(h, 200, _openai_body(arg, body) if openai else _anthropic_body(arg, body))
        elif action == "stream":
            events = _openai_sse(arg, body) if openai else _anthropic_sse(arg, body)
            h.send_response(200)
            h.send_header("content-type", "text/event-stream")
            h.end_headers()
            for e in events:
                h.wfile.write(e.encode())
                h.wfile.flush()

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, payload: dict[str, Any], retry: bool = False) -> None:
        FakeLLM._raw(h, status, "application/json", json.dumps(payload).encode(), retry)

    @staticmethod
    def _raw(h: BaseHTTPRequestHandler, status: int, ctype: str, data: bytes, retry: bool = False) -> None:
        h.send_response(status)
        h.send_header("content-type", ctype)
        h.send_header("content-length", str(len(data)))
        if retry:
            h.send_header("retry-after-ms", "5")
        h.end_headers()
        h.wfile.write(data)


def _openai_body(text: str, req: dict[str, Any]) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": req["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": IN_TOK, "completion_tokens": OUT_TOK, "total_tokens": IN_TOK + OUT_TOK}}


def _anthropic_body(text: str, req: dict[str, Any]) -> dict[str, Any]:
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": req["model"],
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": IN_TOK, "output_tokens": OUT_TOK}}


def _pieces(text: str) -> list[str]:
    return [text[i:i + 17] for i in range(0, len(text), 17)]


def _openai_sse(text: str, req: dict[str, Any]) -> Iterator[str]:
    base = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": req["model"]}
    for p in _pieces(text):
        yield "data: " + json.dumps({**base, "choices": [{"index": 0, "delta": {"content": p}}]}) + "\n\n"
    usage = {"prompt_tokens": IN_TOK, "completion_tokens": OUT_TOK, "total_tokens": IN_TOK + OUT_TOK}
    yield "data: " + json.dumps({**base, "choices": [], "usage": usage}) + "\n\n"
    yield "data: [DONE]\n\n"


def _anthropic_sse(text: str, req: dict[str, Any]) -> Iterator[str]:
    def ev(kind: str, data: dict[str, Any]) -> str:
        return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n"

    msg = {"id": "msg_1", "type": "message", "role": "assistant", "model": req["model"], "content": [],
           "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": IN_TOK, "output_tokens": 1}}
    yield ev("message_start", {"message": msg})
    yield ev("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
    for p in _pieces(text):
        yield ev("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": p}})
    yield ev("content_block_stop", {"index": 0})
    yield ev("message_delta", {"delta": {"stop_reason": "end_turn", "stop_sequence": None},
                               "usage": {"output_tokens": OUT_TOK}})
    yield ev("message_stop", {})


@pytest.fixture
def fake() -> Iterator[FakeLLM]:
    f = FakeLLM()
    yield f
    f.server.shutdown()
    f.server.server_close()


OA, AN = "/v1/chat/completions", "/v1/messages"


def _settings(fake: FakeLLM, primary: str, fallback: str = "template", retries: int = 0) -> LLMSettings:
    def one(p: str) -> dict[str, Any]:
        url = fake.url + "/v1" if p == "openai" else fake.url
        return {"provider": p, "base_url": url, "api_key": "sk-test", "timeout": 0.3, "max_retries": retries}

    return LLMSettings(**one(primary), fallback=LLMProviderSettings(**one(fallback)))


@pytest.mark.parametrize(("provider", "path", "model", "price"), [
    ("openai", OA, "gpt-4o", (2.50, 10.00)), ("anthropic", AN, "claude-sonnet-4-5", (3.00, 15.00))])
def test_success_uses_record_only_prompt_and_accounts_usage(fake: FakeLLM, record: DecisionRecord, provider: str,
                                                            path: str, model: str, price: tuple[float, float]) -> None:
    fake.on(path, ("ok", GOOD))
    out = build_engine(_settings(fake, provider)).explain(record)
    assert out.explanation.text == GOOD and out.explanation.provider == provider
    assert not out.explanation.fallback_used and out.checks[0].ok
    u = out.usage[0]
    assert (u.provider, u.model, u.input_tokens, u.output_tokens, u.fact_check) == (
        provider, model, IN_TOK, OUT_TOK, "passed")
    assert u.cost_usd == pytest.approx((IN_TOK * price[0] + OUT_TOK * price[1]) / 1e6)
    assert u.latency_ms > 0
    _, body = fake.requests[0]
    assert body["max_tokens"] == 200
    assert body.get("temperature", 0.3) == 0.3  # anthropic 2.x SDKs no longer send a temperature
    if provider == "openai":
        assert body["temperature"] == 0.3
    msgs = body["messages"]
    system = msgs[0]["content"] if provider == "openai" else body["system"]
    assert system == SYSTEM_PROMPT
    assert msgs[-1] == {"role": "user", "content": record.to_prompt_json()}


@pytest.mark.parametrize(("provider", "path"), [("openai", OA), ("anthropic", AN)])
def test_streaming(fake: FakeLLM, record: DecisionRecord, provider: str, path: str) -> None:
    fake.on(path, ("stream", GOOD), ("stream", GOOD))
    engine = build_engine(_settings(fake, provider))
    s = engine.providers[0].stream(record)
    chunks = list(s)
    assert len(chunks) > 3 and "".join(chunks) == GOOD
    assert s.completion is not None and (s.completion.input_tokens, s.completion.output_tokens) == (IN_TOK, OUT_TOK)
    assert s.explanation is not None and s.explanation.text == GOOD
    es = engine.stream(record)
    events = list(es)
    texts = [e.text for e in events if e.kind == "text"]
    assert "".join(texts) == GOOD and events[-1].kind == "final" and events[-1].text == GOOD
    assert all(fact_check(t, record).ok for t in texts)  # each shown piece was checked before it was shown
    assert es.outcome is not None and es.outcome.usage[0].streamed and es.outcome.usage[0].output_tokens == OUT_TOK


@pytest.mark.parametrize(("primary", "path", "status"), [
    ("openai", OA, 429), ("openai", OA, 500), ("anthropic", AN, 529), ("anthropic", AN, 429)])
def test_errors_then_fallback(fake: FakeLLM, record: DecisionRecord, primary: str, path: str, status: int) -> None:
    fallback = "anthropic" if primary == "openai" else "openai"
    fake.on(path, ("status", status), ("status", status))
    fake.on(AN if path == OA else OA, ("ok", GOOD))
    out = build_engine(_settings(fake, primary, fallback, retries=1)).explain(record)
    assert out.explanation.provider == fallback and out.explanation.fallback_used
    assert sum(1 for p, _ in fake.requests if p == path) == 2  # one bounded retry, then the next provider
    first, second = out.usage
    assert first.provider == primary and first.fact_check == "not_checked" and str(status) in (first.error or "")
    assert second.fallback_used and second.fact_check == "passed" and second.input_tokens == IN_TOK


def test_retry_recovers_on_the_same_provider(fake: FakeLLM, record: DecisionRecord) -> None:
    fake.on(OA, ("status", 500), ("ok", GOOD))
    out = build_engine(_settings(fake, "openai", retries=1)).explain(record)
    assert out.explanation.provider == "openai" and len(fake.requests) == 2


@pytest.mark.parametrize(("provider", "path"), [("openai", OA), ("anthropic", AN)])
def test_timeout_falls_back_to_template(fake: FakeLLM, record: DecisionRecord, provider: str, path: str) -> None:
    fake.on(path, ("sleep", 1.0))
    out = build_engine(_settings(fake, provider)).explain(record)
    assert out.explanation.provider == "template" and out.explanation.text == TemplateExplainer().render(record)
    assert out.usage[0].error is not None and out.usage[0].error.startswith(TIMEOUT)


@pytest.mark.parametrize("kind", ["garbage", "badjson"])
@pytest.mark.parametrize(("provider", "path"), [("openai", OA), ("anthropic", AN)])
def test_garbage_body(fake: FakeLLM, record: DecisionRecord, provider: str, path: str, kind: str) -> None:
    fake.on(path, (kind, None))
    out = build_engine(_settings(fake, provider)).explain(record)
    assert out.explanation.provider == "template"
    assert (out.usage[0].error or "").startswith(BAD_RESPONSE)


@pytest.mark.parametrize("fault", sorted(HALLUCINATIONS))
@pytest.mark.parametrize(("provider", "path"), [("openai", OA), ("anthropic", AN)])
def test_hallucination_shows_template_and_records_claim(fake: FakeLLM, record: DecisionRecord, provider: str,
                                                        path: str, fault: str) -> None:
    fake.on(path, ("ok", HALLUCINATIONS[fault]))
    out = build_engine(_settings(fake, provider)).explain(record)
    assert out.explanation.provider == "template" and out.explanation.text == TemplateExplainer().render(record)
    assert out.explanation.failures[0].kind == fault  # the first failure names it (an allow-list may add "unaccounted")
    u = out.usage[0]
    assert u.fact_check == "failed" and u.failed_claims and u.failed_claims[0].startswith(fault)
    assert u.input_tokens == IN_TOK and u.cost_usd is not None  # a rejected answer still costs money


def test_streamed_hallucination_is_cut_and_replaced(fake: FakeLLM, record: DecisionRecord) -> None:
    fake.on(OA, ("stream", HALLUCINATIONS[WRONG_DIRECTION]))
    es = build_engine(_settings(fake, "openai")).stream(record)
    events = list(es)
    shown = "".join(e.text for e in events if e.kind == "text")
    assert "$12,500 raised" not in shown
    assert [e.kind for e in events][-2:] == ["reset", "final"]
    assert es.outcome is not None and es.outcome.explanation.provider == "template"
    assert es.outcome.failures[0].kind == WRONG_DIRECTION and es.outcome.usage[0].fact_check == "failed"


def test_build_engine_selects_adapters(fake: FakeLLM) -> None:
    assert build_engine(LLMSettings()).providers == []
    engine = build_engine(_settings(fake, "openai", "anthropic"))
    assert [p.provider for p in engine.providers] == ["openai", "anthropic"]
    assert isinstance(engine.providers[0], OpenAIExplainer)
    lam = build_engine(LLMSettings(provider="lambda", model="creditrisk-explain")).providers[0]
    assert (lam.provider, lam.model) == ("lambda", "creditrisk-explain")  # the rest: test_lambda_explainer.py
