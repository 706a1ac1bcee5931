"""The alerts feature.

What other features, the entry points and the console may use; everything else in this package is
its own business (``lint-imports`` holds the line).
"""

from __future__ import annotations

from backend.alerts.records import MAX_NOTE, AlertError
from backend.alerts.rules import AlertSources, Reading
from backend.alerts.schedule import AlertSchedule
from backend.alerts.service import AlertService
from backend.alerts.views import alert_label, alerts_csv, alerts_frame, deliveries_frame, readings_frame

__all__ = [
    "alert_label",
    "AlertError",
    "alerts_csv",
    "alerts_frame",
    "AlertSchedule",
    "AlertService",
    "AlertSources",
    "deliveries_frame",
    "MAX_NOTE",
    "Reading",
    "readings_frame",
]
