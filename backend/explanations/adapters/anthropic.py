"""The Anthropic explainer through the official ``anthropic`` SDK (Messages API, streamed or not)."""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Iterator
from typing import Any

from backend.explanations.providers import (
    BAD_RESPONSE,
    MISSING_SDK,
    SERVER_ERROR,
    SYSTEM_PROMPT,
    ProviderError,
    SDKExplainer,
)
from backend.explanations.qa_llm import ToolStream, ToolTurn
from backend.explanations.record import DecisionRecord


class AnthropicExplainer(SDKExplainer):
    provider = "anthropic"
    package = "anthropic"

    def _make_client(self, kwargs: dict[str, Any]) -> Any:
        try:
            import anthropic
        except ImportError as exc:
            raise ImportError(MISSING_SDK.format(provider=self.provider, package=self.package)) from exc
        return anthropic.Anthropic(**kwargs)

    def _request(self, record: DecisionRecord) -> dict[str, Any]:
        req: dict[str, Any] = {"model": self.model, "max_tokens": self.settings.max_tokens, "system": SYSTEM_PROMPT,
                               "messages": [{"role": "user", "content": record.to_prompt_json()}]}
        # Recent Anthropic SDKs (2.x) dropped the sampling parameters from messages.create: the
        # temperature setting is sent only when the installed SDK still accepts it.
        if "temperature" in inspect.signature(self.client.messages.create).parameters:
            req["temperature"] = self.settings.temperature
        return req

    def _call(self, record: DecisionRecord) -> tuple[str, int | None, int | None]:
        resp = self.client.messages.create(**self._request(record))
        blocks = getattr(resp, "content", None)
        if isinstance(resp, str | bytes) or not isinstance(blocks, list):
            raise ProviderError(BAD_RESPONSE, "no content blocks in the response")
        text = "".join(getattr(b, "text", "") or "" for b in blocks if getattr(b, "type", "") == "text")
        usage = getattr(resp, "usage", None)
        return text, getattr(usage, "input_tokens", None), getattr(usage, "output_tokens", None)

    def _stream(self, record: DecisionRecord, usage: dict[str, int | None]) -> Iterator[str]:
        with self.client.messages.create(**self._request(record), stream=True) as events:
            yield from self._anthropic_chunks(events, usage)

    @staticmethod
    def _anthropic_chunks(events: Any, usage: dict[str, int | None],
                          calls: dict[int, list[str]] | None = None) -> Iterator[str]:
        """The text deltas; with ``calls``, ``tool_use`` blocks are collected there too (block index → [id, name,
        the joined ``input_json_delta`` pieces of its input])."""
        for event in events:
            kind = getattr(event, "type", "")
            if kind == "message_start":
                usage["in"] = getattr(event.message.usage, "input_tokens", None)
                usage["out"] = getattr(event.message.usage, "output_tokens", None)
            elif kind == "message_delta" and getattr(event, "usage", None) is not None:
                usage["out"] = event.usage.output_tokens
            elif kind == "content_block_start" and calls is not None and event.content_block.type == "tool_use":
                calls[event.index] = [event.content_block.id, event.content_block.name, ""]
            elif kind == "content_block_delta" and getattr(event.delta, "type", "") == "text_delta":
                yield event.delta.text
            elif kind == "content_block_delta" and calls is not None and event.index in calls:
                calls[event.index][2] += getattr(event.delta, "partial_json", "") or ""
            elif kind == "error":
                raise ProviderError(SERVER_ERROR, str(getattr(event, "error", event)))

    # -- the decision conversation: Messages API with tool use ------------------------------------------
    def _tools_request(self, system: str, messages: list[dict[str, Any]], tools: dict[str, dict[str, Any]]
                       ) -> dict[str, Any]:
        """The provider-neutral transcript in Anthropic's form: tool results go back as ``tool_result`` blocks
        in a user turn."""
        wire: list[dict[str, Any]] = []
        for m in messages:
            if m["role"] == "user":
                wire.append({"role": "user", "content": m["text"]})
            elif m["role"] == "assistant":
                blocks: list[dict[str, Any]] = [{"type": "text", "text": m["text"]}] if m["text"] else []
                blocks += [{"type": "tool_use", "id": i, "name": n, "input": _input(a)} for i, n, a in m.get("calls", [])]
                wire.append({"role": "assistant", "content": blocks or m["text"] or "(no text)"})
            else:
                result = {"type": "tool_result", "tool_use_id": m["id"], "content": m["content"]}
                if wire and wire[-1]["role"] == "user" and isinstance(wire[-1]["content"], list):
                    wire[-1]["content"].append(result)
                else:
                    wire.append({"role": "user", "content": [result]})
        return {"model": self.model, "max_tokens": self.settings.max_tokens, "system": system,
                "messages": wire, "tools": [{"name": n, "description": spec["description"],
                                             "input_schema": spec["parameters"]} for n, spec in tools.items()]}

    def chat_tools(self, system: str, messages: list[dict[str, Any]], tools: dict[str, dict[str, Any]]) -> ToolTurn:
        """One Messages call with ``tools``."""
        resp = self.client.messages.create(**self._tools_request(system, messages, tools))
        blocks_out = getattr(resp, "content", None)
        if isinstance(resp, str | bytes) or not isinstance(blocks_out, list):
            raise ProviderError(BAD_RESPONSE, "no content blocks in the response")
        text = "".join(getattr(b, "text", "") or "" for b in blocks_out if getattr(b, "type", "") == "text")
        calls = [(b.id, b.name, json.dumps(b.input)) for b in blocks_out if getattr(b, "type", "") == "tool_use"]
        usage = getattr(resp, "usage", None)
        return ToolTurn(text, calls, getattr(usage, "input_tokens", None), getattr(usage, "output_tokens", None))

    def stream_tools(self, system: str, messages: list[dict[str, Any]], tools: dict[str, dict[str, Any]]
                     ) -> ToolStream:
        """:meth:`chat_tools` streamed (``stream=True``): text deltas as they come, each ``tool_use`` block's input
        joined from its ``input_json_delta`` pieces."""
        started = time.perf_counter()
        usage: dict[str, int | None] = {"in": None, "out": None}
        calls: dict[int, list[str]] = {}

        def chunks() -> Iterator[str]:
            with self.client.messages.create(**self._tools_request(system, messages, tools), stream=True) as events:
                yield from self._anthropic_chunks(events, usage, calls)

        return ToolStream(chunks(), lambda text: self._completion(text, usage["in"], usage["out"], started,
                                                                  require_text=False), calls)


def _input(raw: str) -> Any:
    try:
        return json.loads(raw) if raw else {}
    except ValueError:
        return {}
