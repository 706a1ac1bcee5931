"""A loopback fake of OpenAI's ``/v1/chat/completions`` and Anthropic's ``/v1/messages`` that calls tools.

Each request gets the next scripted reply: a callable of the request body returning ``("tools", [(name,
arguments_json_or_dict), ...])``, ``("text", str)`` or ``("status", code)``. :func:`last_tool_text` reads the
newest tool result in a request (so an honest script can quote it). Importable by test modules (tests/ is on
sys.path); the real SDKs talk to it over HTTP.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = Callable[[dict[str, Any]], tuple[str, Any]]


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
                self._send(200, _anthropic(reply) if anthropic else _openai(reply))

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


def _openai(reply: tuple[str, Any]) -> dict[str, Any]:
    kind, value = reply
    msg: dict[str, Any] = {"role": "assistant", "content": value if kind == "text" else None}
    if kind == "tools":
        msg["tool_calls"] = [{"id": f"call_{i}", "type": "function", "function": {"name": n, "arguments": _raw(a)}}
                             for i, (n, a) in enumerate(value)]
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "gpt-4o",
            "choices": [{"index": 0, "finish_reason": "tool_calls" if kind == "tools" else "stop", "message": msg}],
            "usage": {"prompt_tokens": 700, "completion_tokens": 60, "total_tokens": 760}}


def _anthropic(reply: tuple[str, Any]) -> dict[str, Any]:
    kind, value = reply
    if kind == "tools":
        content = []
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
