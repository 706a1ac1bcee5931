"""Webhook notifier: POST one JSON body per alert event to a chat or paging tool.

The body carries a ``text`` field (what Slack incoming webhooks and Teams connectors display) and
the structured fields of the event (``event``, ``alert_id``, ``rule``, ``value``, ``threshold``,
``action``, ...) for tools that route on them. Each POST has ``timeout`` seconds; a 5xx, 429,
timeout or connection error is retried up to ``retries`` times (default 2) with exponential
backoff; a 4xx is not retried. :meth:`WebhookNotifier.send` never raises: it returns the delivery
record (ok, status code or error, attempts, at), which the alert service stores on the alert. The
record names the receiver by scheme and host only (webhook paths often embed a secret).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

RETRIES = 2
BACKOFF_S = 0.5
RETRY_STATUSES = frozenset({429})
ACTION_WORDS = {"notify": "", "retrain": " Action: retrain the model.",
                "halt_deployments": " Action: deployments are halted until it is resolved."}


def text_for(event: Mapping[str, Any]) -> str:
    """The human line shown by the chat tool."""
    kind = str(event.get("event", "event"))
    label = str(event.get("label") or event.get("rule") or "alert")
    if kind == "resolved":
        by = event.get("resolved_by") or "monitor"
        return f"[RESOLVED] {label}: back within its threshold (resolved by {by}). Alert {event.get('alert_id')}."
    severity = str(event.get("severity") or "warning").upper()
    return (f"[{severity}] {event.get('message') or label}{ACTION_WORDS.get(str(event.get('action')), '')} "
            f"Alert {event.get('alert_id')}.")


def _target(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"


class WebhookNotifier:
    channel = "webhook"

    def __init__(self, url: str, *, timeout: float = 5.0, retries: int = RETRIES, backoff: float = BACKOFF_S,
                 transport: httpx.BaseTransport | None = None, client: httpx.Client | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.url = url
        self.timeout = float(timeout)
        self.retries = max(0, int(retries))
        self.backoff = float(backoff)
        self.transport = transport
        self.client = client
        self.sleep = sleep

    def send(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """POST the event; bounded retries; return the delivery record (never raises)."""
        body = {**{k: v for k, v in event.items() if k != "text"}, "text": text_for(event)}
        record: dict[str, Any] = {"channel": self.channel, "target": _target(self.url), "event": event.get("event"),
                                  "ok": False, "attempts": 0, "status_code": None, "error": None}
        try:
            if self.client is not None:
                self._attempts(self.client, body, record)
            else:
                with httpx.Client(transport=self.transport, timeout=self.timeout) as client:
                    self._attempts(client, body, record)
        except Exception as exc:  # noqa: BLE001 - never raise into the evaluation
            record["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
        record["at"] = datetime.now(UTC).isoformat()
        return record

    def _attempts(self, client: httpx.Client, body: dict[str, Any], record: dict[str, Any]) -> None:
        for attempt in range(self.retries + 1):
            if attempt:
                self.sleep(self.backoff * 2 ** (attempt - 1))
            record["attempts"] = attempt + 1
            try:
                resp = client.post(self.url, json=body, timeout=self.timeout)
            except httpx.TimeoutException as exc:
                record["status_code"], record["error"] = None, f"timeout after {self.timeout:g} s ({type(exc).__name__})"
                continue
            except httpx.TransportError as exc:
                record["status_code"], record["error"] = None, f"{type(exc).__name__}: {str(exc)[:200]}"
                continue
            record["status_code"] = resp.status_code
            if resp.is_success:
                record["ok"], record["error"] = True, None
                return
            record["error"] = f"HTTP {resp.status_code}: {resp.text[:200]}"
            if resp.status_code < 500 and resp.status_code not in RETRY_STATUSES:
                return  # a 4xx will not get better by asking again
