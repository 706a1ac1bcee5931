"""The default notifier: one JSON line per alert event through :mod:`logging`.

Logger ``creditrisk.alerts``: an opened alert logs at WARNING, anything else at INFO, so a log
shipper (journald, CloudWatch, Loki) can route alerts without a chat tool.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

LOGGER_NAME = "creditrisk.alerts"


class LogNotifier:
    channel = "log"

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger(LOGGER_NAME)

    def send(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """Log the event as one JSON line; return the delivery record (never raises)."""
        at = datetime.now(UTC).isoformat()
        try:
            line = json.dumps({"alert_event": dict(event)}, sort_keys=True, default=str, ensure_ascii=True)
            self.logger.log(logging.WARNING if event.get("event") == "opened" else logging.INFO, line)
        except Exception as exc:  # noqa: BLE001 - a notifier never raises into the evaluation
            return {"channel": self.channel, "ok": False, "attempts": 1, "at": at, "event": event.get("event"),
                    "error": f"{type(exc).__name__}: {str(exc)[:200]}"}
        return {"channel": self.channel, "ok": True, "attempts": 1, "at": at, "event": event.get("event"),
                "logger": self.logger.name}
