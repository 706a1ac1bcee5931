"""A loopback fake of OpenAI's ``/v1/chat/completions`` and Anthropic's ``/v1/messages`` that calls tools.

Each request gets the next scripted reply: a callable of the request body returning ``("tools", [(name,
arguments_json_or_dict), ...])`` (optionally a third item: text written before the calls), ``("text", str)``,
``("status", code)`` or ``("die", str)`` (streamed only: that text, then the connection drops mid-body).
:func:`last_tool_text` reads the newest tool result in a request (so an honest script can quote it).

A request with ``"stream": true`` gets the reply as server-sent events, in each provider's wire format, cut
into small pieces: OpenAI ``chat.completion.chunk`` deltas (a tool call's id and name first, then its
arguments a few characters per chunk, then the usage chunk and ``[DONE]``); Anthropic ``message_start``,
``content_block_*`` events (``text_delta``, or a ``tool_use`` block whose input arrives as ``input_json_delta``
pieces), ``message_delta`` and ``message_stop``. Importable by test modules (tests/ is on sys.path); the real
SDKs talk to it over HTTP.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = Callable[[dict[str, Any]], tuple[Any, ...]]


def last_tool_text(body: dict[str, Any]) -> str:
    """The ``text`` of the newest tool result in an OpenAI or Anthropic request."""
    for msg in reversed(body.get("messages", [])):
        if msg.get("role") == "tool":
            return json.loads(msg["content"])["text"]
        content = msg.get("content")
        if isinstance(content, list):
            for block in reversed(content):
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    return json.loads(block["content"])["text"]
    return ""


class FakeToolLLM:
    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.requests: list[tuple[str, dict[str, Any]]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                fake.requests.append((self.path, body))
                reply = fake.script.pop(0)(body) if fake.script else ("text", "")
                if reply[0] == "status":
                    self._send(reply[1], {"error": {"message": "scripted failure", "type": "server_error"}})
                    return
                anthropic = self.path.endswith("/messages")
                if body.get("stream"):
                    self._stream((_anthropic_sse if anthropic else _openai_sse)(reply), die=reply[0] == "die")
                    return
                self._send(200, _anthropic(reply) if anthropic else _openai(reply))

            def _stream(self, events: Iterator[str], *, die: bool) -> None:
                data = "".join(events).encode()
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                # a dying provider promises more than it sends: the SDK sees the body end too early
                self.send_header("content-length", str(len(data) + (4096 if die else 0)))
                self.end_headers()
                try:
                    for line in data.splitlines(keepends=True):
                        self.wfile.write(line)
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):  # the reader stopped early
                    pass
                self.close_connection = True

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _raw(args: Any) -> str:
    return args if isinstance(args, str) else json.dumps(args)


def _openai(reply: tuple[Any, ...]) -> dict[str, Any]:
    kind, value = reply[0], reply[1]
    msg: dict[str, Any] = {"role": "assistant", "content": value if kind == "text" else (reply[2:] or [None])[0]}
    if kind == "tools":
        msg["tool_calls"] = [{"id": f"call_{i}", "type": "function", "function": {"name": n, "arguments": _raw(a)}}
                             for i, (n, a) in enumerate(value)]
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "gpt-4o",
            "choices": [{"index": 0, "finish_reason": "tool_calls" if kind == "tools" else "stop", "message": msg}],
            "usage": {"prompt_tokens": 700, "completion_tokens": 60, "total_tokens": 760}}


def _anthropic(reply: tuple[Any, ...]) -> dict[str, Any]:
    kind, value = reply[0], reply[1]
    if kind == "tools":
        content: list[dict[str, Any]] = [{"type": "text", "text": reply[2]}] if len(reply) > 2 else []
        for i, (n, a) in enumerate(value):
            try:
                args = json.loads(a) if isinstance(a, str) else a
            except ValueError:
                args = {"raw": a}  # Anthropic sends an object; a malformed one arrives as unexpected keys
            content.append({"type": "tool_use", "id": f"toolu_{i}", "name": n, "input": args})
    else:
        content = [{"type": "text", "text": value}]
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5", "content": content,
            "stop_reason": "tool_use" if kind == "tools" else "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": 700, "output_tokens": 60}}


PIECE = 7  # characters per streamed text delta; tool arguments go 5 characters per chunk


def _cut(text: str, n: int = PIECE) -> list[str]:
    return [text[i:i + n] for i in range(0, len(text), n)]


def _openai_sse(reply: tuple[Any, ...]) -> Iterator[str]:
    kind, value = reply[0], reply[1]
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": "gpt-4o"}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        return "data: " + json.dumps({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}) + "\n\n"

    yield chunk({"role": "assistant", "content": ""})
    text = value if kind in ("text", "die") else (reply[2] if len(reply) > 2 else "")
    for piece in _cut(text):
        yield chunk({"content": piece})
    if kind == "die":
        return
    if kind == "tools":
        for i, (name, args) in enumerate(value):
            yield chunk({"tool_calls": [{"index": i, "id": f"call_{i}", "type": "function",
                                         "function": {"name": name, "arguments": ""}}]})
            for piece in _cut(_raw(args), 5):
                yield chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]})
    yield chunk({}, "tool_calls" if kind == "tools" else "stop")
    yield "data: " + json.dumps({**base, "choices": [], "usage": {"prompt_tokens": 700, "completion_tokens": 60,
                                                                 "total_tokens": 760}}) + "\n\n"
    yield "data: [DONE]\n\n"


def _anthropic_sse(reply: tuple[Any, ...]) -> Iterator[str]:
    kind, value = reply[0], reply[1]

    def ev(name: str, data: dict[str, Any]) -> str:
        return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n"

    yield ev("message_start", {"message": {"id": "msg_1", "type": "message", "role": "assistant",
                                           "model": "claude-sonnet-4-5", "content": [], "stop_reason": None,
                                           "stop_sequence": None, "usage": {"input_tokens": 700, "output_tokens": 1}}})
    text = value if kind in ("text", "die") else (reply[2] if len(reply) > 2 else "")
    index = 0
    if text:
        yield ev("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
        for piece in _cut(text):
            yield ev("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": piece}})
        if kind == "die":
            return
        yield ev("content_block_stop", {"index": 0})
        index = 1
    if kind == "tools":
        for i, (name, args) in enumerate(value):
            yield ev("content_block_start", {"index": index, "content_block": {"type": "tool_use", "id": f"toolu_{i}",
                                                                               "name": name, "input": {}}})
            for piece in _cut(_raw(args), 5):
                yield ev("content_block_delta", {"index": index, "delta": {"type": "input_json_delta",
                                                                           "partial_json": piece}})
            yield ev("content_block_stop", {"index": index})
            index += 1
    yield ev("message_delta", {"delta": {"stop_reason": "tool_use" if kind == "tools" else "end_turn",
                                         "stop_sequence": None}, "usage": {"output_tokens": 60}})
    yield ev("message_stop", {})
