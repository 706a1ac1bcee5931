"""ASGI middleware: request ids, one JSON access-log line per request, a last-resort 500, body size.

* :class:`RequestContextMiddleware` (outermost) takes the caller's ``X-Request-ID`` when it is a
  plain token of 8-64 characters, else makes one; sets it on every response (errors included);
  logs one JSON line per request on ``creditrisk.api.access`` with the route *template* (never
  the raw path or query), status, duration, sizes and the authenticated subject: no bodies, no
  headers, no tokens. An exception that escapes the app becomes a 500 problem (logged with its
  traceback under the request id). It also records the request in the services' metrics
  (``http_requests`` by route template, method and status; ``http_request_duration_seconds``;
  ``errors`` for 5xx responses and unhandled exceptions): labels never hold a raw path, a query, an
  id or a header.
* :class:`BodyLimitMiddleware` refuses a body larger than ``max_bytes`` with 413 before the app
  sees it, whether the size is announced (``Content-Length``) or not (chunked): it reads at most
  ``max_bytes + 1`` bytes and hands the app the buffered body.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.api.problems import INTERNAL_DETAIL, PROBLEM_JSON, problem_body
from backend.platform.metrics_catalog import ERRORS, HTTP_DURATION, HTTP_REQUESTS, method_label

access_log = logging.getLogger("creditrisk.api.access")
error_log = logging.getLogger("creditrisk.api")
REQUEST_ID_HEADER = "x-request-id"
_RID_OK = re.compile(r"^[A-Za-z0-9._\-]{8,64}$")
TOO_LARGE = "The body is larger than {n:,} bytes."
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope.get("headers", ()):
        if k.lower() == name:
            try:
                return str(v.decode("latin-1"))
            except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
                return None
    return None


async def send_problem(send: Send, status: int, slug: str, title: str, detail: str, rid: str | None,
                       headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps(problem_body(status, slug, title, detail, rid)).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, REQUEST_ID_HEADER.encode())
        rid = incoming if incoming and _RID_OK.match(incoming) else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        start = time.perf_counter()
        sent = {"status": 500, "bytes": 0, "started": False, "unhandled": False}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                sent["status"], sent["started"] = message["status"], True
                message = {**message, "headers": [*message.get("headers", ()),
                                                  (REQUEST_ID_HEADER.encode(), rid.encode())]}
            elif message["type"] == "http.response.body":
                sent["bytes"] = int(sent["bytes"]) + len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:  # noqa: BLE001 - the last resort: a problem, never a stack trace
            error_log.error("unhandled %s in %s %s (request %s)", type(exc).__name__, scope.get("method"),
                            _route(scope), rid, exc_info=True)
            sent["status"], sent["unhandled"] = 500, True
            if not sent["started"]:
                await send_problem(send_wrapper, 500, "internal-error", "Internal error", INTERNAL_DETAIL, rid)
        finally:
            seconds = time.perf_counter() - start
            _record_metrics(scope, int(sent["status"]), seconds, bool(sent["unhandled"]))
            access_log.info(json.dumps({
                "ts": datetime.now(UTC).isoformat(timespec="milliseconds"), "event": "http_request",
                "request_id": rid, "method": scope.get("method"), "route": _route(scope),
                "status": sent["status"], "duration_ms": round(seconds * 1000, 2),
                "bytes_in": state.get("bytes_in", 0), "bytes_out": sent["bytes"],
                "subject": state.get("principal"), "problem": state.get("problem"),
                "token_refused": state.get("token_refused")}))


def _record_metrics(scope: Scope, status: int, seconds: float, unhandled: bool) -> None:
    """Count the request in the metrics of the app's services (none before the lifespan ran)."""
    app: Any = scope.get("app")
    ctx: Any = getattr(getattr(app, "state", None), "api", None)
    metrics = getattr(getattr(ctx, "services", None), "metrics", None)
    if metrics is None:
        return
    route, method = _route(scope), method_label(scope.get("method"))
    try:
        metrics.inc(HTTP_REQUESTS, {"route": route, "method": method, "status": str(status)})
        metrics.observe(HTTP_DURATION, seconds, {"route": route, "method": method})
        if status >= 500:
            metrics.inc(ERRORS, {"component": "api", "kind": "http_5xx"})
        if unhandled:
            metrics.inc(ERRORS, {"component": "api", "kind": "unhandled"})
    except Exception:  # noqa: BLE001 - metrics never fail a request
        error_log.exception("could not record request metrics")


def _route(scope: Scope) -> str:
    route: Any = scope.get("route")
    return str(getattr(route, "path_format", None) or getattr(route, "path", None) or "(unmatched)")


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = scope.get("state", {}).get("request_id")
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._too_large(send, rid) if declared.isdigit() else await send_problem(
                send, 400, "bad-request", "Bad request", "Content-Length is not a number.", rid)
            return
        if scope.get("method") not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(send, rid)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        scope.setdefault("state", {})["bytes_in"] = size
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send, rid: str | None) -> None:
        await send_problem(send, 413, "payload-too-large", "Payload too large", TOO_LARGE.format(n=self.max_bytes), rid,
                           headers=[(b"connection", b"close")])
