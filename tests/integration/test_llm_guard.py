"""The fence around LLM calls (backend/explanations/guard.py): deadline, size cap, bounded pool, circuit breaker.

Through the real SDKs against the loopback fake of test_llm_providers.py where a network is involved; with stub
providers where the point is the pool or the clock. No timing assertions: each test checks *why* the call ended
(the guard's error, not the SDK's) and what the officer sees (the template).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from test_llm_providers import AN, OA, FakeLLM, _fact

from backend.container.adapters import build_engine
from backend.explanations import ExplanationEngine, ProviderGuard
from backend.explanations.config import LLMProviderSettings, LLMSettings
from backend.explanations.guard import BUSY, CIRCUIT_OPEN, TOO_LARGE
from backend.explanations.providers import BAD_RESPONSE, TIMEOUT, Completion, ProviderStream
from backend.explanations.record import DecisionRecord, ReasonFact
from backend.explanations.template import TemplateExplainer


@pytest.fixture
def record() -> DecisionRecord:
    facts = {"debt_to_income": _fact("debt_to_income", 0.48, 0.61), "savings_balance": _fact("savings_balance",
                                                                                           12_500.0, -0.18)}
    reasons = (ReasonFact("excessive_obligations", "Excessive obligations in relation to income", ("debt_to_income",)),)
    return DecisionRecord("deny", 0.342, 0.91, "high_risk", "t", reasons, facts)


@pytest.fixture
def fake() -> Iterator[FakeLLM]:
    f = FakeLLM()
    yield f
    f.server.shutdown()
    f.server.server_close()


def _settings(fake: FakeLLM, provider: str, **guard: Any) -> LLMSettings:
    url = fake.url + "/v1" if provider == "openai" else fake.url
    return LLMSettings(provider=provider, base_url=url, api_key="sk-test", timeout=30, max_retries=0,
                       fallback=LLMProviderSettings(), **guard)


@pytest.mark.parametrize(("provider", "path"), [("openai", OA), ("anthropic", AN)])
def test_a_hung_provider_is_cut_at_the_deadline_not_the_sdk_timeout(fake: FakeLLM, record: DecisionRecord,
                                                                    provider: str, path: str) -> None:
    fake.on(path, ("sleep", 3.0))
    out = build_engine(_settings(fake, provider, deadline=0.3)).explain(record)
    assert out.explanation.provider == "template" and out.explanation.text == TemplateExplainer().render(record)
    err = out.usage[0].error or ""
    assert err.startswith(TIMEOUT) and "0.3s" in err  # the guard's deadline (the SDK would wait 30 s)


@pytest.mark.parametrize(("provider", "path"), [("openai", OA), ("anthropic", AN)])
def test_a_huge_answer_is_refused_unread(fake: FakeLLM, record: DecisionRecord, provider: str, path: str) -> None:
    fake.on(path, ("ok", "The risk is low. " * 120_000))  # about 2 MB
    out = build_engine(_settings(fake, provider)).explain(record)
    assert out.explanation.provider == "template" and out.checks == []  # the fact-check never read it
    err = out.usage[0].error or ""
    assert err.startswith(BAD_RESPONSE) and TOO_LARGE in err


@pytest.mark.parametrize(("provider", "path"), [("openai", OA), ("anthropic", AN)])
def test_a_huge_stream_is_cut_at_the_cap(fake: FakeLLM, record: DecisionRecord, provider: str, path: str) -> None:
    fake.on(path, ("stream", "The model recommends denial. " * 2_000))  # every sentence true: only the cap stops it
    es = build_engine(_settings(fake, provider, max_answer_chars=500)).stream(record)
    events = list(es)
    assert es.outcome is not None and es.outcome.explanation.provider == "template"
    assert sum(len(e.text) for e in events if e.kind == "text") <= 500
    assert TOO_LARGE in (es.outcome.usage[0].error or "")


def test_a_failing_provider_is_skipped_at_once_while_its_circuit_is_open(fake: FakeLLM, record: DecisionRecord) -> None:
    fake.on(OA, ("status", 500))
    engine = build_engine(_settings(fake, "openai", breaker_cooldown=600))
    first = engine.explain(record)
    second = engine.explain(record)
    assert (first.usage[0].error or "").startswith("server_error")
    assert (second.usage[0].error or "").startswith(CIRCUIT_OPEN) and second.explanation.provider == "template"
    assert len(fake.requests) == 1  # the second explanation never called the dead provider


class Blocking:
    """A provider that hangs until released (a hung upstream that never answers)."""

    provider, model = "openai", "gpt-4o"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Semaphore(0)

    def generate(self, record: DecisionRecord) -> Completion:
        self.entered.release()
        self.release.wait(30)
        return Completion("The model recommends denial.", self.provider, self.model, 1, 1, 1.0, 0.0)

    def stream(self, record: DecisionRecord) -> ProviderStream:
        raise NotImplementedError


def test_a_full_pool_refuses_at_once_instead_of_queueing(record: DecisionRecord) -> None:
    hung = Blocking()
    engine = ExplanationEngine(hung, guard=ProviderGuard(workers=2, deadline=60))
    threads = [threading.Thread(target=engine.explain, args=(record,)) for _ in range(2)]
    for t in threads:
        t.start()
    for _ in threads:
        assert hung.entered.acquire(timeout=10)  # both workers are now held by the hung provider
    third = engine.explain(record)
    assert (third.usage[0].error or "").startswith(BUSY) and third.explanation.provider == "template"
    hung.release.set()
    for t in threads:
        t.join(10)
    assert engine.explain(record).usage[0].error is None  # the workers are free again


class Dripping:
    """A stream that sends one chunk per tick of a fake clock (a provider dripping bytes)."""

    provider, model = "anthropic", "claude-sonnet-4-5"

    def __init__(self, clock: list[float]) -> None:
        self.clock = clock

    def generate(self, record: DecisionRecord) -> Completion:
        raise NotImplementedError

    def stream(self, record: DecisionRecord) -> ProviderStream:
        def chunks() -> Iterator[str]:
            for ch in "The model recommends denial. " * 50:
                self.clock[0] += 1.0
                yield ch

        return ProviderStream(chunks(), lambda text: Completion(text, self.provider, self.model, 1, 1, 1.0, 0.0))


def test_a_dripping_stream_is_cut_at_the_deadline(record: DecisionRecord) -> None:
    now = [0.0]
    engine = ExplanationEngine(Dripping(now), guard=ProviderGuard(deadline=20, clock=lambda: now[0]))
    es = engine.stream(record)
    events = list(es)
    assert es.outcome is not None and es.outcome.explanation.provider == "template"
    assert (es.outcome.usage[0].error or "").startswith(TIMEOUT) and now[0] <= 22
    assert [e.kind for e in events][-1] == "final"
