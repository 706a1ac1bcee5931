"""Tables for the Alerts page (pure functions: service views in, DataFrames or CSV text out)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd

from backend.alerts.records import AlertView
from backend.alerts.rules import ACTION_LABELS, STATUS_LABELS, Reading, fmt
from backend.domain import safe_csv_text

STATUS_MARKS = {"ok": "ok", "firing": "FIRING", "no_data": "no data"}  # plain text: not every font has colour emoji
CSV_FIELDS = ("id", "rule", "status", "severity", "action", "value", "threshold", "message", "opened_at",
              "last_seen_at", "acknowledged_by", "acknowledged_at", "ack_note", "resolved_by", "resolved_at",
              "resolve_note", "notifications")


def readings_frame(readings: Sequence[Reading]) -> pd.DataFrame:
    """One row per rule: its figure against its threshold and the verdict."""
    frame = pd.DataFrame([{
        "rule": r.label, "status": STATUS_MARKS.get(r.status, STATUS_LABELS.get(r.status, r.status)),
        "value": fmt(r.value, r.unit), "fires when": ("< " if r.direction == "below" else "> ") + fmt(r.threshold, r.unit),
        "action when firing": ACTION_LABELS.get(r.action, r.action), "rows": r.n, "period": r.period,
        "detail": r.detail} for r in readings])
    if len(frame):
        frame["rows"] = frame["rows"].astype("Int64")
    return frame


def _when(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M}" if at else ""


def alert_label(a: AlertView) -> str:
    return f"{a.details.get('label', a.rule)} · {a.status} · opened {_when(a.opened_at)} · {a.id[:8]}"


def alerts_frame(alerts: Sequence[AlertView]) -> pd.DataFrame:
    """Alerts as a table (times UTC); text stays plain (dataframes never render markup)."""
    return pd.DataFrame([{
        "alert": a.id[:8], "rule": a.details.get("label", a.rule), "status": a.status, "severity": a.severity,
        "action": ACTION_LABELS.get(a.action, a.action), "value": fmt(a.value, str(a.details.get("unit", ""))),
        "threshold": fmt(a.threshold, str(a.details.get("unit", ""))), "opened (UTC)": _when(a.opened_at),
        "last seen (UTC)": _when(a.last_seen_at), "acknowledged by": a.acknowledged_by or "",
        "note": a.details.get("resolve_note") or a.ack_note or "", "resolved by": a.resolved_by or "",
        "resolved (UTC)": _when(a.resolved_at), "message": a.message} for a in alerts],
        columns=["alert", "rule", "status", "severity", "action", "value", "threshold", "opened (UTC)",
                 "last seen (UTC)", "acknowledged by", "note", "resolved by", "resolved (UTC)", "message"])


def deliveries_frame(a: AlertView) -> pd.DataFrame:
    """The notification deliveries recorded on one alert."""
    return pd.DataFrame([{
        "event": n.get("event", ""), "channel": n.get("channel", ""), "delivered": bool(n.get("ok")),
        "attempts": n.get("attempts"), "status code": n.get("status_code"), "error": n.get("error") or "",
        "receiver": n.get("target") or n.get("logger") or "", "at (UTC)": str(n.get("at", ""))[:19]}
        for n in a.notifications],
        columns=["event", "channel", "delivered", "attempts", "status code", "error", "receiver", "at (UTC)"])


def alerts_csv(alerts: Sequence[AlertView]) -> str:
    """Every alert as spreadsheet-safe CSV (times ISO 8601 UTC)."""
    def row(a: AlertView) -> dict[str, Any]:
        return {"id": a.id, "rule": a.rule, "status": a.status, "severity": a.severity, "action": a.action,
                "value": a.value, "threshold": a.threshold, "message": a.message,
                "opened_at": a.opened_at.isoformat(), "last_seen_at": a.last_seen_at.isoformat(),
                "acknowledged_by": a.acknowledged_by or "",
                "acknowledged_at": a.acknowledged_at.isoformat() if a.acknowledged_at else "",
                "ack_note": a.ack_note or "", "resolved_by": a.resolved_by or "",
                "resolved_at": a.resolved_at.isoformat() if a.resolved_at else "",
                "resolve_note": a.details.get("resolve_note", ""),
                "notifications": "; ".join(f"{n.get('event')} via {n.get('channel')}: "
                                           f"{'ok' if n.get('ok') else 'failed'}" for n in a.notifications)}
    return safe_csv_text((row(a) for a in alerts), CSV_FIELDS)
