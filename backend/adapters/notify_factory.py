"""Choose the alert notifier from ``CREDITRISK_MONITORING__NOTIFIER`` (``log`` or ``webhook``).

A notifier has one method, ``send(event: dict) -> dict``: it delivers one alert event and returns a
delivery record (``channel``, ``ok``, ``attempts``, ``at``, and ``status_code``/``error`` for the
webhook), never raising. The alert service appends the record to the alert's ``notifications``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import httpx

from backend.adapters.notify_log import LogNotifier
from backend.adapters.notify_webhook import WebhookNotifier
from backend.config_monitoring import MonitoringSettings

MSG_NO_WEBHOOK_URL = ("CREDITRISK_MONITORING__NOTIFIER=webhook needs CREDITRISK_MONITORING__WEBHOOK_URL "
                      "(an http:// or https:// URL of the chat or paging tool's incoming webhook).")


class Notifier(Protocol):
    channel: str

    def send(self, event: Mapping[str, Any]) -> dict[str, Any]: ...


def build_notifier(settings: MonitoringSettings, *, transport: httpx.BaseTransport | None = None) -> Notifier:
    """The configured notifier; ``transport`` is for tests (an httpx transport for the webhook)."""
    if settings.notifier == "webhook":
        if not settings.webhook_url:
            raise ValueError(MSG_NO_WEBHOOK_URL)
        return WebhookNotifier(settings.webhook_url, timeout=settings.webhook_timeout, transport=transport)
    return LogNotifier()
