"""A loopback fake of OpenAI's ``POST /v1/chat/completions`` for the console's browser tests.

The console runs in another process (``streamlit run``) with ``CREDITRISK_LLM__BASE_URL`` pointing
here, so the real ``openai`` SDK code paths are exercised: the plain JSON answer and the streaming
one (``stream=true``: server-sent events, a usage chunk, then ``data: [DONE]``). Which answer the
next request gets is scripted by the test (``fake.replies``): ``"good"`` writes a correct
explanation from the decision record in the request (the user message is the record's JSON, see
``backend/explanations/adapters/openai.py``), ``"hallucinated"`` the same with one invented sentence
(:data:`HALLUCINATION`, a promise of approval, which the fact-check must reject). An empty script
answers ``"good"``. A request with tools is the decision Q&A: it answers :data:`QA_ANSWER` (streamed when
asked), or that and :data:`QA_LIE` when ``fake.qa_replies`` says ``"lie"``. Adapted from the fake in tests/integration/test_llm_providers.py.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

IN_TOK, OUT_TOK = 640, 90
PATH = "/v1/chat/completions"
#: First sentence of every correct fake explanation: shows on screen that the LLM's text is displayed.
OPENING = "Here is how the model assessed this application."
#: The invented sentence of a hallucinated answer (a promise of approval; never to be shown).
HALLUCINATION = "With a slightly smaller loan this applicant is guaranteed approval."
RECOMMENDATION_SENTENCES = {"deny": "The model recommends denial.", "approve": "The model recommends approval.",
                            "manual_review": "The model recommends a manual review."}


def good_explanation(record: dict[str, Any]) -> str:
    """A correct explanation of the prompt's decision record (every claim is in the record)."""
    lines = [OPENING, RECOMMENDATION_SENTENCES[record["recommendation"]],
             f"The estimated probability of default is {record['probability_of_default_percent']:.1f}%, which is "
             f"{record['probability_of_default_band']}."]
    for reason in record["principal_reasons"][:2]:
        for fact in reason["features"][:1]:
            lines.append(f"The {fact['feature']} ({fact['applicant_value']}) raised the estimated risk.")
    return " ".join(lines)


def hallucinated_explanation(record: dict[str, Any]) -> str:
    return good_explanation(record) + " " + HALLUCINATION


QA_ANSWER = "Recommendation: deny."  # the Q&A fake's whole answer: true for the flow's denied application
#: The Q&A fake's lie, after its true first sentence when ``qa_replies`` says "lie" (never to be shown).
QA_LIE = "This applicant would be approved with a smaller loan."


class FakeOpenAI:
    """Threaded HTTP server on 127.0.0.1; ``requests`` keeps every request body received."""

    def __init__(self) -> None:
        self.replies: list[str] = []
        self.requests: list[dict[str, Any]] = []
        self.answers: list[str] = []
        self.qa_requests: list[dict[str, Any]] = []  # the Q&A's tool-calling requests, kept apart
        self.qa_replies: list[str] = []  # "honest" (the default) or "lie": the next Q&A answer
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                if self.path != PATH:
                    fake._send(self, 404, {"error": {"type": "not_found", "message": self.path}})
                    return
                if body.get("tools"):  # the Q&A's conversation (issue 17): answers plainly, no tool call, and
                    with fake._lock:   # never takes an explanation's queued reply
                        fake.qa_requests.append(body)
                        lie = (fake.qa_replies.pop(0) if fake.qa_replies else "honest") == "lie"
                    answer = QA_ANSWER + (" " + QA_LIE if lie else "")
                    try:
                        if body.get("stream"):  # the console streams the answer (checked sentence by sentence)
                            fake._stream(self, answer, body)
                        else:
                            fake._send(self, 200, _completion(answer, body))
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    return
                with fake._lock:
                    mode = fake.replies.pop(0) if fake.replies else "good"
                    record = json.loads(body["messages"][-1]["content"])
                    text = good_explanation(record) if mode == "good" else hallucinated_explanation(record)
                    fake.requests.append(body)
                    fake.answers.append(text)
                try:
                    if body.get("stream"):
                        fake._stream(self, text, body)
                    else:
                        fake._send(self, 200, _completion(text, body))
                except (BrokenPipeError, ConnectionResetError):  # the engine stops reading a failed answer
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("content-type", "application/json")
        h.send_header("content-length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    @staticmethod
    def _stream(h: BaseHTTPRequestHandler, text: str, body: dict[str, Any]) -> None:
        h.send_response(200)
        h.send_header("content-type", "text/event-stream")
        h.send_header("cache-control", "no-cache")
        h.send_header("connection", "close")
        h.end_headers()
        h.close_connection = True
        for event in _sse(text, body):
            h.wfile.write(event.encode())
            h.wfile.flush()


def _usage() -> dict[str, int]:
    return {"prompt_tokens": IN_TOK, "completion_tokens": OUT_TOK, "total_tokens": IN_TOK + OUT_TOK}


def _completion(text: str, req: dict[str, Any]) -> dict[str, Any]:
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": req.get("model", ""),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": _usage()}


def _sse(text: str, req: dict[str, Any]) -> Iterator[str]:
    base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": req.get("model", "")}
    yield "data: " + json.dumps({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}) + "\n\n"
    for i in range(0, len(text), 16):
        yield "data: " + json.dumps({**base, "choices": [{"index": 0, "delta": {"content": text[i:i + 16]}}]}) + "\n\n"
    yield "data: " + json.dumps({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}) + "\n\n"
    yield "data: " + json.dumps({**base, "choices": [], "usage": _usage()}) + "\n\n"
    yield "data: [DONE]\n\n"
