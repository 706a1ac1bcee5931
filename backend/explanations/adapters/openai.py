"""The OpenAI explainer through the official ``openai`` SDK (Chat Completions, streamed or not)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from backend.explanations.providers import (
    BAD_RESPONSE,
    MISSING_SDK,
    SYSTEM_PROMPT,
    ProviderError,
    SDKExplainer,
)
from backend.explanations.qa_llm import ToolStream, ToolTurn
from backend.explanations.record import DecisionRecord


class OpenAIExplainer(SDKExplainer):
    provider = "openai"
    package = "openai"

    def _make_client(self, kwargs: dict[str, Any]) -> Any:
        try:
            import openai
        except ImportError as exc:
            raise ImportError(MISSING_SDK.format(provider=self.provider, package=self.package)) from exc
        return openai.OpenAI(**kwargs)

    def _request(self, record: DecisionRecord) -> dict[str, Any]:
        return {"model": self.model, "temperature": self.settings.temperature, "max_tokens": self.settings.max_tokens,
                "messages": [{"role": "system", "content": SYSTEM_PROMPT},
                             {"role": "user", "content": record.to_prompt_json()}]}

    def _call(self, record: DecisionRecord) -> tuple[str, int | None, int | None]:
        resp = self.client.chat.completions.create(**self._request(record))
        if isinstance(resp, str | bytes) or not getattr(resp, "choices", None):
            raise ProviderError(BAD_RESPONSE, "no choices in the response")
        text = resp.choices[0].message.content or ""
        usage = getattr(resp, "usage", None)
        return text, getattr(usage, "prompt_tokens", None), getattr(usage, "completion_tokens", None)

    def _stream(self, record: DecisionRecord, usage: dict[str, int | None]) -> Iterator[str]:
        events = self.client.chat.completions.create(**self._request(record), stream=True,
                                                     stream_options={"include_usage": True})
        with events:  # closes the HTTP response when the engine stops reading early
            yield from self._openai_chunks(events, usage)

    @staticmethod
    def _openai_chunks(events: Any, usage: dict[str, int | None],
                       calls: dict[int, list[str]] | None = None) -> Iterator[str]:
        """The text deltas; with ``calls``, tool-call deltas are joined there too (index → [id, name, arguments]:
        the id and name come in a call's first delta, its JSON arguments in pieces over the following ones)."""
        for event in events:
            if getattr(event, "usage", None) is not None:
                usage["in"], usage["out"] = event.usage.prompt_tokens, event.usage.completion_tokens
            for choice in getattr(event, "choices", None) or []:
                if choice.delta is None:
                    continue
                if choice.delta.content:
                    yield choice.delta.content
                for call in getattr(choice.delta, "tool_calls", None) or []:
                    if calls is None:  # an explanation asks for no tools
                        break
                    slot = calls.setdefault(call.index, ["", "", ""])
                    slot[0] = call.id or slot[0]
                    if call.function is not None:
                        slot[1] += call.function.name or ""
                        slot[2] += call.function.arguments or ""

    # -- the decision conversation: Chat Completions with function tools ---------------------------------
    @staticmethod
    def _tools_request(system: str, messages: list[dict[str, Any]], tools: dict[str, dict[str, Any]]
                       ) -> dict[str, Any]:
        """The provider-neutral transcript (``qa_llm``) in OpenAI's form, with the tools."""
        wire: list[dict[str, Any]] = [{"role": "system", "content": system}]
        for m in messages:
            if m["role"] == "user":
                wire.append({"role": "user", "content": m["text"]})
            elif m["role"] == "assistant":
                msg: dict[str, Any] = {"role": "assistant", "content": m["text"] or None}
                if m.get("calls"):
                    msg["tool_calls"] = [{"id": i, "type": "function", "function": {"name": n, "arguments": a}}
                                         for i, n, a in m["calls"]]
                wire.append(msg)
            else:
                wire.append({"role": "tool", "tool_call_id": m["id"], "content": m["content"]})
        return {"messages": wire, "tools": [{"type": "function", "function": {"name": n, **spec}}
                                            for n, spec in tools.items()]}

    def chat_tools(self, system: str, messages: list[dict[str, Any]], tools: dict[str, dict[str, Any]]) -> ToolTurn:
        """One Chat Completions call with ``tools``."""
        resp = self.client.chat.completions.create(
            model=self.model, max_tokens=self.settings.max_tokens, temperature=self.settings.temperature,
            **self._tools_request(system, messages, tools))
        if isinstance(resp, str | bytes) or not getattr(resp, "choices", None):
            raise ProviderError(BAD_RESPONSE, "no choices in the response")
        message = resp.choices[0].message
        calls = [(c.id, c.function.name, c.function.arguments or "") for c in (message.tool_calls or [])
                 if getattr(c, "function", None) is not None]
        usage = getattr(resp, "usage", None)
        return ToolTurn(message.content or "", calls, getattr(usage, "prompt_tokens", None),
                        getattr(usage, "completion_tokens", None))

    def stream_tools(self, system: str, messages: list[dict[str, Any]], tools: dict[str, dict[str, Any]]
                     ) -> ToolStream:
        """:meth:`chat_tools` streamed (``stream=True``): text as it comes, tool calls joined from their deltas."""
        started = time.perf_counter()
        usage: dict[str, int | None] = {"in": None, "out": None}
        calls: dict[int, list[str]] = {}

        def chunks() -> Iterator[str]:
            events = self.client.chat.completions.create(
                model=self.model, max_tokens=self.settings.max_tokens, temperature=self.settings.temperature,
                stream=True, stream_options={"include_usage": True}, **self._tools_request(system, messages, tools))
            with events:
                yield from self._openai_chunks(events, usage, calls)

        return ToolStream(chunks(), lambda text: self._completion(text, usage["in"], usage["out"], started,
                                                                  require_text=False), calls)
