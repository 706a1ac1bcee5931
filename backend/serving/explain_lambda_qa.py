"""The explanation function's second event: one LLM round of the decision conversation, with tools.

Event (``qa_llm``'s provider-neutral transcript)::

    {"qa": {"system": str,
            "messages": [{"role": "user", "text": str},
                         {"role": "assistant", "text": str, "calls": [[id, name, raw JSON arguments], ...]},
                         {"role": "tool", "id": str, "name": str, "content": str}, ...],
            "tools": {name: {"description": str, "parameters": {"type": "object", ...}}}}}

Reply::

    {"ok": true, "text": str, "calls": [{"id", "name", "arguments"}], "provider", "model",
     "usage": [{"provider", "model", "input_tokens", "output_tokens", "cost_usd", "latency_ms"}]}

The function asks its own configured provider (OpenAI or Anthropic, through their adapters' ``chat_tools``)
and returns what the LLM wrote and which tools it called. It never runs a tool: the service runs the tools
against its own database and sends the next round with their results. Every field is checked strictly and
sizes are bounded; errors name the field, never a value from the event.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from backend.explanations import cost_usd

#: Bounds on an event (a Lambda RequestResponse payload may be up to 6 MB; a real turn is a few kB).
MAX_EVENT_CHARS = 1_000_000
MAX_SYSTEM_CHARS = 20_000
MAX_MESSAGES = 128  # 6 earlier turns (12), the question, 3 tool rounds of up to MAX_CALLS calls: 112
MAX_TEXT_CHARS = 20_000
MAX_TOOL_CONTENT_CHARS = 200_000
MAX_CALLS = 32
MAX_ID_CHARS = 200
MAX_ARGUMENTS_CHARS = 20_000
MAX_TOOLS = 32
MAX_DESCRIPTION_CHARS = 2_000
MAX_PARAMETERS_CHARS = 20_000
TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
ROLES = ("user", "assistant", "tool")
QA_FIELDS = 'the "qa" event must have exactly the fields "system", "messages" and "tools"'
TOO_LARGE = f"the event is larger than {MAX_EVENT_CHARS:,} characters of JSON"


class QAEventError(ValueError):
    """A malformed ``qa`` event; the message names the field, never a value."""


def _text(value: Any, where: str, limit: int, *, required: bool = False) -> str:
    if not isinstance(value, str):
        raise QAEventError(f"{where}: must be a string")
    if len(value) > limit:
        raise QAEventError(f"{where}: longer than {limit:,} characters")
    if required and not value.strip():
        raise QAEventError(f"{where}: must not be empty")
    return value


def _fields(value: Any, where: str, expected: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict) or set(value) != expected:
        names = ", ".join(f'"{k}"' for k in sorted(expected))
        raise QAEventError(f"{where}: must be an object with exactly the fields {names}")
    return value


def _calls(value: Any, where: str) -> list[tuple[str, str, str]]:
    if not isinstance(value, list) or len(value) > MAX_CALLS:
        raise QAEventError(f"{where}: must be a list of at most {MAX_CALLS} calls")
    out = []
    for i, call in enumerate(value):
        w = f"{where}[{i}]"
        if not isinstance(call, list) or len(call) != 3:
            raise QAEventError(f"{w}: must be [id, name, arguments]")
        out.append((_text(call[0], f"{w}.id", MAX_ID_CHARS, required=True), _name(call[1], f"{w}.name"),
                    _text(call[2], f"{w}.arguments", MAX_ARGUMENTS_CHARS)))
    return out


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not TOOL_NAME.match(value):
        raise QAEventError(f"{where}: must be a tool name (1-64 letters, digits, _ or -)")
    return value


def _messages(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_MESSAGES:
        raise QAEventError(f"qa.messages: must be a list of 1 to {MAX_MESSAGES} messages")
    out: list[dict[str, Any]] = []
    open_calls: set[str] = set()  # the ids of the latest assistant message's calls not yet answered
    for i, m in enumerate(value):
        w = f"qa.messages[{i}]"
        role = m.get("role") if isinstance(m, dict) else None
        if role not in ROLES:
            raise QAEventError(f"{w}.role: must be user, assistant or tool")
        if role == "user":
            m = _fields(m, w, {"role", "text"})
            out.append({"role": "user", "text": _text(m["text"], f"{w}.text", MAX_TEXT_CHARS, required=True)})
            open_calls = set()
        elif role == "assistant":
            m = _fields(m, w, {"role", "text", "calls"})
            calls = _calls(m["calls"], f"{w}.calls")
            out.append({"role": "assistant", "text": _text(m["text"], f"{w}.text", MAX_TEXT_CHARS), "calls": calls})
            open_calls = {c[0] for c in calls}
        else:
            m = _fields(m, w, {"role", "id", "name", "content"})
            call_id = _text(m["id"], f"{w}.id", MAX_ID_CHARS, required=True)
            if call_id not in open_calls:
                raise QAEventError(f"{w}.id: answers no open call of the assistant message before it")
            open_calls.discard(call_id)
            out.append({"role": "tool", "id": call_id, "name": _name(m["name"], f"{w}.name"),
                        "content": _text(m["content"], f"{w}.content", MAX_TOOL_CONTENT_CHARS)})
    if out[-1]["role"] == "assistant":
        raise QAEventError("qa.messages: the last message must be the user's or a tool result")
    return out


def _tools(value: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(value, dict) or not 1 <= len(value) <= MAX_TOOLS:
        raise QAEventError(f"qa.tools: must be an object of 1 to {MAX_TOOLS} tools")
    out = {}
    for name, spec in value.items():
        _name(name, "qa.tools")
        w = f"qa.tools.{name}"
        spec = _fields(spec, w, {"description", "parameters"})
        params = spec["parameters"]
        if not isinstance(params, dict) or params.get("type") != "object":
            raise QAEventError(f'{w}.parameters: must be a JSON schema object with "type": "object"')
        if len(json.dumps(params)) > MAX_PARAMETERS_CHARS:
            raise QAEventError(f"{w}.parameters: longer than {MAX_PARAMETERS_CHARS:,} characters of JSON")
        out[name] = {"description": _text(spec["description"], f"{w}.description", MAX_DESCRIPTION_CHARS,
                                          required=True), "parameters": params}
    return out


def parse_qa(qa: Any) -> tuple[str, list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """``(system, messages, tools)`` of a ``qa`` event's body; raises :class:`QAEventError`."""
    try:
        size = len(json.dumps(qa, allow_nan=False))
    except (TypeError, ValueError):
        raise QAEventError("qa: must be plain JSON") from None
    if size > MAX_EVENT_CHARS:
        raise QAEventError(TOO_LARGE)
    if not isinstance(qa, dict) or set(qa) != {"system", "messages", "tools"}:
        raise QAEventError(QA_FIELDS)
    return (_text(qa["system"], "qa.system", MAX_SYSTEM_CHARS, required=True), _messages(qa["messages"]),
            _tools(qa["tools"]))


def answer(chat: Any, system: str, messages: list[dict[str, Any]], tools: dict[str, dict[str, Any]]
           ) -> dict[str, Any]:
    """One ``chat_tools`` round as the reply (raises what the adapter raises)."""
    started = time.perf_counter()
    turn = chat.chat_tools(system, messages, tools)
    latency = (time.perf_counter() - started) * 1000
    usage = {"provider": chat.provider, "model": chat.model, "input_tokens": turn.input_tokens,
             "output_tokens": turn.output_tokens, "latency_ms": latency,
             "cost_usd": cost_usd(getattr(chat, "prices", None) or {}, chat.model, turn.input_tokens,
                                  turn.output_tokens)}
    return {"ok": True, "text": turn.text, "provider": chat.provider, "model": chat.model,
            "calls": [{"id": str(i), "name": str(n), "arguments": str(a)} for i, n, a in turn.calls],
            "usage": [usage]}
