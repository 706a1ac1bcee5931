"""Alert records: the alert as the service returns it, an evaluation's report, the refusals (one-line
messages) and the checks of what people type (notes, ids). Pure: no database, no services."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from backend.alerts.rules import Reading
from backend.models import HALT_ACTION

if TYPE_CHECKING:
    from backend.platform.db.tables_governance import AlertRow

MONITOR = "monitor"
STATUSES = ("open", "acknowledged", "resolved")
UNRESOLVED = ("open", "acknowledged")
MAX_NOTE = 2000
MIN_NOTE = 5

MSG_BAD_ID = "{id!r} is not an alert id (expected a UUID, as shown by `creditrisk monitor alerts`)."
MSG_NO_ALERT = "There is no alert {id}."
MSG_NOT_USER = "{username!r} is not an active user; a named person must acknowledge or resolve an alert."
MSG_NOT_ALLOWED = "A {role} may not acknowledge, resolve or run alert checks."
MSG_NOTE_SHORT = f"A note is required (at least {MIN_NOTE} characters): say what was checked or done."
MSG_NOTE_LONG = f"The note is too long (at most {MAX_NOTE:,} characters)."
MSG_NOTE_BAD = "The note contains a NUL character or an invalid (lone surrogate) character; remove it."
MSG_ALREADY_ACK = "Alert {id} is already acknowledged (by {by})."
MSG_ALREADY_RESOLVED = "Alert {id} is already resolved (by {by})."
MSG_BAD_STATUS = "Unknown status {status!r}: expected open, acknowledged, resolved, unresolved or all."
MSG_NAIVE_AT = "The evaluation moment must be timezone-aware (UTC), e.g. datetime(2025, 9, 22, tzinfo=UTC)."
NOT_INSTALLED = "the {service} service is not installed yet"


class AlertError(ValueError):
    """A refused alert request; the message says why (nothing was written)."""




@dataclass(frozen=True)
class AlertView:
    id: str
    rule: str
    metric: str
    severity: str
    action: str
    status: str
    value: float | None
    threshold: float
    message: str
    details: dict[str, Any]
    opened_at: datetime
    last_seen_at: datetime
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    ack_note: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    notifications: list[dict[str, Any]]

    @property
    def halts(self) -> bool:
        return self.action == HALT_ACTION and self.status in UNRESOLVED


def view_of(r: AlertRow) -> AlertView:
    return AlertView(str(r.id), r.rule, r.metric, r.severity, r.action, r.status, r.value, r.threshold, r.message,
                     dict(r.details or {}), r.opened_at, r.last_seen_at, r.acknowledged_by, r.acknowledged_at,
                     r.ack_note, r.resolved_at, r.resolved_by, [dict(n) for n in (r.notifications or [])])


@dataclass
class EvaluationReport:
    at: datetime
    readings: list[Reading]
    opened: list[str] = field(default_factory=list)  # alert ids
    updated: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    refreshed: dict[str, str] = field(default_factory=dict)  # service -> ok | not installed | failed: ...
    errors: list[str] = field(default_factory=list)
    unresolved: list[AlertView] = field(default_factory=list)  # after this evaluation

    @property
    def all_clear(self) -> bool:
        return not self.unresolved


def jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def checked_note(note: str | None) -> str:
    note = (note or "").strip()
    if len(note) < MIN_NOTE:
        raise AlertError(MSG_NOTE_SHORT)
    if len(note) > MAX_NOTE:
        raise AlertError(MSG_NOTE_LONG)
    if "\x00" in note or any("\ud800" <= c <= "\udfff" for c in note):
        raise AlertError(MSG_NOTE_BAD)
    return note


def brief_error(exc: Exception) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"


def alert_uuid(alert_id: str | uuid.UUID) -> uuid.UUID:
    try:
        return alert_id if isinstance(alert_id, uuid.UUID) else uuid.UUID(str(alert_id).strip())
    except ValueError:
        raise AlertError(MSG_BAD_ID.format(id=str(alert_id)[:80])) from None


