"""The explanation function's ``qa`` event, called directly (no network): the strict checks of the transcript
and the tools, the bounds, the reply's shape, the refusals (same shape as the record event's) and a provider
failure inside the function. The function only relays the LLM round: its stub chat here records what it got."""

from __future__ import annotations

import json
import math
import os
from typing import Any

import pytest

from backend.explanations.config import DEFAULT_LLM_PRICES
from backend.explanations.engine import ExplanationEngine
from backend.explanations.providers import TIMEOUT, ProviderError
from backend.explanations.qa_llm import SYSTEM, ToolTurn
from backend.explanations.qa_tools import TOOLS
from backend.serving import explain_lambda as lambda_handler
from backend.serving.explain_lambda import (
    BAD_REQUEST,
    CONFIG,
    EVENT_FIELDS,
    NO_TOOL_CALLING,
    PROVIDER,
    handler,
)
from backend.serving.explain_lambda_qa import MAX_EVENT_CHARS, MAX_MESSAGES, MAX_TOOL_CONTENT_CHARS, TOO_LARGE

PII = "Jane Q. Applicant 078-05-1120"
USER = {"role": "user", "text": "What if their income were $80,000?"}
CALL = ["call_0", "rescore", '{"changes": {"annual_income": 80000}}']
ASSISTANT = {"role": "assistant", "text": "", "calls": [CALL]}
TOOL = {"role": "tool", "id": "call_0", "name": "rescore", "content": '{"text": "Hypothetical."}'}


class StubChat:
    provider, model, prices = "openai", "gpt-4o", DEFAULT_LLM_PRICES

    def __init__(self, turn: ToolTurn | Exception) -> None:
        self.turn, self.seen = turn, []

    def chat_tools(self, system: str, messages: list[dict[str, Any]], tools: dict[str, Any]) -> ToolTurn:
        self.seen.append((system, messages, tools))
        if isinstance(self.turn, Exception):
            raise self.turn
        return self.turn


@pytest.fixture(autouse=True)
def cold_container(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in [k for k in os.environ if k.startswith("CREDITRISK_LLM__")]:
        monkeypatch.delenv(k)
    monkeypatch.setattr(lambda_handler, "_ENGINE", None)


def _warm(monkeypatch: pytest.MonkeyPatch, chat: StubChat) -> StubChat:
    monkeypatch.setattr(lambda_handler, "_ENGINE", ExplanationEngine(chat))  # type: ignore[arg-type]
    return chat


def _event(**qa: Any) -> dict[str, Any]:
    base = {"system": SYSTEM, "messages": [USER, ASSISTANT, TOOL], "tools": TOOLS}
    return json.loads(json.dumps({"qa": {**base, **qa}}))  # what the function receives: parsed JSON


def test_one_round_is_relayed_to_the_functions_own_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    chat = _warm(monkeypatch, StubChat(ToolTurn("Let me check.", [("c1", "decision_record", "{}")], 700, 60)))
    reply = handler(_event(), None)
    usage = reply.pop("usage")
    assert reply == {"ok": True, "text": "Let me check.", "provider": "openai", "model": "gpt-4o",
                     "calls": [{"id": "c1", "name": "decision_record", "arguments": "{}"}]}
    (u,) = usage
    assert (u["input_tokens"], u["output_tokens"]) == (700, 60)
    assert u["cost_usd"] == pytest.approx((700 * 2.50 + 60 * 10.00) / 1e6) and u["latency_ms"] >= 0
    (system, messages, tools), = chat.seen
    assert system == SYSTEM and tools == json.loads(json.dumps(TOOLS))
    assert messages == [USER, {**ASSISTANT, "calls": [tuple(CALL)]}, TOOL]
    assert json.loads(json.dumps(reply)) == reply  # plain JSON


def _bad_qa() -> list[tuple[Any, str]]:
    user_pii = {"role": "user", "text": PII}
    many = [USER, {"role": "assistant", "text": PII, "calls": []}] * (MAX_MESSAGES // 2) + [USER]
    big = "x" * (MAX_TOOL_CONTENT_CHARS - 20)
    huge = [USER] + [m for i in range(MAX_EVENT_CHARS // MAX_TOOL_CONTENT_CHARS + 1) for m in (
        {"role": "assistant", "text": "", "calls": [[f"c{i}", "policy", "{}"]]},
        {"role": "tool", "id": f"c{i}", "name": "policy", "content": big})]
    return [
        ({"qa": PII}, "exactly the fields"),
        ({"qa": [PII]}, "exactly the fields"),
        ({"qa": {"system": SYSTEM, "messages": [USER], "tools": TOOLS, "extra": PII}}, "exactly the fields"),
        (_event(system=""), "qa.system: must not be empty"),
        (_event(system=["x"]), "qa.system: must be a string"),
        (_event(system="x" * 20_001), "qa.system: longer than"),
        (_event(messages=[]), "qa.messages: must be a list"),
        (_event(messages={"role": "user"}), "qa.messages: must be a list"),
        (_event(messages=many), f"qa.messages: must be a list of 1 to {MAX_MESSAGES}"),
        (_event(messages=[PII]), "qa.messages[0].role"),
        (_event(messages=[{"role": "system", "text": PII}]), "qa.messages[0].role"),
        (_event(messages=[{**user_pii, "name": PII}]), "qa.messages[0]: must be an object with exactly"),
        (_event(messages=[{"role": "user", "text": " "}]), "qa.messages[0].text: must not be empty"),
        (_event(messages=[{"role": "user", "text": 42}]), "qa.messages[0].text: must be a string"),
        (_event(messages=[USER, {"role": "assistant", "text": PII}]), "qa.messages[1]: must be an object"),
        (_event(messages=[USER, {**ASSISTANT, "calls": [["c1", "rescore"]]}, USER]), "qa.messages[1].calls[0]"),
        (_event(messages=[USER, {**ASSISTANT, "calls": [["", "rescore", "{}"]]}, USER]), "calls[0].id"),
        (_event(messages=[USER, {**ASSISTANT, "calls": [["c1", "drop table; --", "{}"]]}, USER]), "calls[0].name"),
        (_event(messages=[USER, {**ASSISTANT, "calls": [["c1", "rescore", {"a": 1}]]}, USER]), "arguments"),
        (_event(messages=[USER, {**ASSISTANT, "calls": [CALL] * 33}, USER]), "at most 32 calls"),
        (_event(messages=[USER, ASSISTANT]), "the last message must be"),
        (_event(messages=[USER, TOOL]), "qa.messages[1].id: answers no open call"),
        (_event(messages=[USER, ASSISTANT, TOOL, TOOL]), "qa.messages[3].id: answers no open call"),
        (_event(messages=[USER, ASSISTANT, {**TOOL, "id": PII}]), "qa.messages[2].id: answers no open call"),
        (_event(messages=[USER, ASSISTANT, {**TOOL, "content": "x" * (MAX_TOOL_CONTENT_CHARS + 1)}]), "content"),
        (_event(messages=huge), TOO_LARGE),
        (_event(tools={}), "qa.tools: must be an object of 1 to 32"),
        (_event(tools=[PII]), "qa.tools: must be an object"),
        (_event(tools={PII: TOOLS["policy"]}), "qa.tools: must be a tool name"),
        (_event(tools={"policy": {"description": PII}}), "qa.tools.policy: must be an object with exactly"),
        (_event(tools={"policy": {"description": "", "parameters": {"type": "object"}}}), "description"),
        (_event(tools={"policy": {"description": "x", "parameters": {"type": "string"}}}), "qa.tools.policy.parameters"),
        ({"qa": {"system": SYSTEM, "messages": [USER], "tools": {"p": {"description": "x", "parameters": {
            "type": "object", "maximum": math.nan}}}}}, "qa: must be plain JSON"),
        ({"qa": {"system": SYSTEM, "messages": [USER], "tools": TOOLS}, "record": {}}, EVENT_FIELDS),
    ]


@pytest.mark.parametrize(("event", "expected"), _bad_qa(), ids=[str(i) for i in range(len(_bad_qa()))])
def test_malformed_qa_events_get_the_functions_refusal_without_values(
        monkeypatch: pytest.MonkeyPatch, event: Any, expected: str) -> None:
    chat = _warm(monkeypatch, StubChat(ToolTurn("never", [])))
    reply = handler(event, None)
    assert reply["ok"] is False and set(reply) == {"ok", "error"}
    assert reply["error"]["kind"] == BAD_REQUEST and expected in reply["error"]["message"], reply
    message = reply["error"]["message"]
    assert "\n" not in message and "Traceback" not in message and PII not in json.dumps(reply)
    assert chat.seen == []  # nothing reached the LLM


def test_a_malformed_qa_event_does_not_build_the_engine() -> None:
    assert handler({"qa": {"system": SYSTEM}}, None)["error"]["kind"] == BAD_REQUEST
    assert lambda_handler._ENGINE is None


def test_the_template_has_no_tool_calling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDITRISK_LLM__PROVIDER", "template")
    assert handler(_event(), None) == {"ok": False, "error": {"kind": CONFIG, "message": NO_TOOL_CALLING}}
    monkeypatch.setattr(lambda_handler, "_ENGINE", None)
    monkeypatch.setenv("CREDITRISK_LLM__PROVIDER", "lambda")  # the function would invoke itself
    assert handler(_event(), None)["error"]["kind"] == CONFIG


@pytest.mark.parametrize(("exc", "kind"), [(ProviderError(TIMEOUT, "read timed out"), TIMEOUT),
                                           (RuntimeError("boom"), "bad_response")])
def test_a_provider_failure_inside_the_function_is_a_refusal_with_its_kind(
        monkeypatch: pytest.MonkeyPatch, exc: Exception, kind: str) -> None:
    _warm(monkeypatch, StubChat(exc))
    reply = handler(_event(), None)
    assert reply["ok"] is False and reply["error"]["kind"] == PROVIDER and reply["error"]["provider_kind"] == kind
    assert reply["error"]["message"].startswith(f"{kind}: ")
