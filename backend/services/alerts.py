"""Alerts: evaluate the rules of :mod:`backend.services.alert_rules`, keep their state, notify.

Lifecycle of the ``alerts`` table (one transaction per change, with its audit row):

* a rule **fires** and has no unresolved alert -> a new row, status ``open`` (``opened_at = at``),
  audit ``alert_opened`` (actor ``monitor``), then one notification;
* it **still fires** -> the open (or acknowledged) row gets the new value and ``last_seen_at``; no
  new notification;
* it **clears** (reads ``ok``) -> status ``resolved``, ``resolved_by = "monitor"``, audit
  ``alert_resolved``, then a "resolved" notification. A rule reading "no data" leaves its alert
  as it is (no evidence either way);
* people holding ``Perm.ACK_ALERTS`` **acknowledge** or **resolve** an alert with a note. A rule
  resolved by hand while it still fires opens a new alert at the next evaluation.

While an alert whose action is ``halt_deployments`` is unresolved, :mod:`backend.services.halts`
refuses promotions; resolving it lifts the halt. Notifications are sent after the commit (a slow
webhook never holds a transaction) and their delivery records appended to the row.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from backend.config_monitoring import MonitoringSettings
from backend.db.engine import Database
from backend.db.repo_audit import AuditRepository
from backend.db.tables import AlertRow, User
from backend.permissions import Perm, allowed
from backend.ports import Clock
from backend.services.alert_rules import (
    FIRING,
    NO_DATA,
    OK,
    READER_SERVICE,
    READERS,
    RULES,
    Measurement,
    ReadContext,
    Reading,
    judge,
    message,
    threshold_for,
)
from backend.services.halts import HALT_ACTION

if TYPE_CHECKING:
    from backend.adapters.notify_factory import Notifier

log = logging.getLogger("creditrisk.alerts")
MONITOR = "monitor"
STATUSES = ("open", "acknowledged", "resolved")
UNRESOLVED = ("open", "acknowledged")
REFRESHED = ("drift", "performance", "fairness", "experiments")
MAX_NOTE = 2000
MIN_NOTE = 5
_LOCK_ID = 7_734_002  # PostgreSQL advisory lock: "the alert lifecycle"

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


class ActorLike(Protocol):
    @property
    def username(self) -> str: ...


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


def _view(r: AlertRow) -> AlertView:
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


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _note(note: str | None) -> str:
    note = (note or "").strip()
    if len(note) < MIN_NOTE:
        raise AlertError(MSG_NOTE_SHORT)
    if len(note) > MAX_NOTE:
        raise AlertError(MSG_NOTE_LONG)
    if "\x00" in note or any("\ud800" <= c <= "\udfff" for c in note):
        raise AlertError(MSG_NOTE_BAD)
    return note


def _not_installed(exc: Exception, service: str) -> bool:
    """The monitoring service's own module is missing (not yet installed): "no data", not a failure."""
    return isinstance(exc, ModuleNotFoundError) and bool(service) and exc.name == f"backend.services.{service}"


def _brief(exc: Exception) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"


def _uuid(alert_id: str | uuid.UUID) -> uuid.UUID:
    try:
        return alert_id if isinstance(alert_id, uuid.UUID) else uuid.UUID(str(alert_id).strip())
    except ValueError:
        raise AlertError(MSG_BAD_ID.format(id=str(alert_id)[:80])) from None


class AlertService:
    def __init__(self, db: Database, clock: Clock, settings: MonitoringSettings, notifier: Notifier, *,
                 services: Any = None) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.notifier = notifier
        self.services = services

    # -- evaluation ----------------------------------------------------------------------------------
    def evaluate(self, *, at: datetime | None = None, refresh: bool | tuple[str, ...] = True,
                 actor: str = MONITOR) -> EvaluationReport:
        """Refresh the monitoring summaries (unless ``refresh=False``; a tuple names which of
        :data:`REFRESHED`), judge every rule as of ``at`` (default now) and open, update or resolve
        alerts. ``actor`` other than ``monitor`` must be a user holding ``Perm.ACK_ALERTS`` (the
        console's "Run checks now")."""
        if at is not None and at.tzinfo is None:
            raise AlertError(MSG_NAIVE_AT)
        at = at or self.clock.now()
        role = "system" if actor == MONITOR else self._role(actor)
        report = EvaluationReport(at, [])
        if refresh:
            self._refresh(at, report, REFRESHED if refresh is True else tuple(refresh or ()))
        report.readings = self._readings(at, report.errors)
        for reading in report.readings:
            self._apply(reading, at, actor, role, report)
        report.unresolved = self.list(status="unresolved", limit=1000)
        return report

    def status(self, at: datetime | None = None) -> list[Reading]:
        """The current reading of every rule (nothing refreshed, nothing written)."""
        if at is not None and at.tzinfo is None:
            raise AlertError(MSG_NAIVE_AT)
        return self._readings(at or self.clock.now(), [])

    def _refresh(self, at: datetime, report: EvaluationReport, names: tuple[str, ...]) -> None:
        for name in names:
            try:
                svc = getattr(self.services, name)
                if name == "drift":
                    svc.refresh_all(until=at)
                else:
                    svc.refresh(until=at)
            except Exception as exc:  # noqa: BLE001 - one failing summary must not stop the other rules
                if _not_installed(exc, name):
                    report.refreshed[name] = "not installed"
                    continue
                log.exception("refreshing the %s summaries failed", name)
                report.refreshed[name] = f"failed: {_brief(exc)}"
                report.errors.append(f"{name} refresh: {_brief(exc)}")
            else:
                report.refreshed[name] = "ok"

    def _readings(self, at: datetime, errors: list[str]) -> list[Reading]:
        ctx = ReadContext(self.services, self.db.read, at)
        out = []
        for rule in RULES:
            m: Measurement | None
            try:
                m = READERS[rule.name](ctx)
            except Exception as exc:  # noqa: BLE001 - a broken reader reads "no data" and is reported
                service = READER_SERVICE.get(rule.name, "")
                if _not_installed(exc, service):
                    m = Measurement(None, detail=NOT_INSTALLED.format(service=service))
                else:
                    log.exception("reading the %s rule failed", rule.name)
                    errors.append(f"{rule.name}: {_brief(exc)}")
                    m = Measurement(None, detail=f"reader failed: {_brief(exc)}")
            out.append(judge(rule, m, threshold_for(rule, self.settings.thresholds), self.settings.thresholds.min_rows))
        return out

    def _lock(self, s: Session) -> None:
        if s.get_bind().dialect.name == "postgresql":
            s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_ID})

    def _apply(self, r: Reading, at: datetime, actor: str, role: str, report: EvaluationReport) -> None:
        if r.status == NO_DATA:
            return
        details = _jsonable({"period": r.period, "n": r.n, "detail": r.detail, "label": r.label, "unit": r.unit,
                             "direction": r.direction, **({"extra": r.extra} if r.extra else {})})
        events: list[dict[str, Any]] = []
        with self.db.transaction() as s:
            self._lock(s)
            rows = list(s.execute(select(AlertRow).where(AlertRow.rule == r.rule, AlertRow.status.in_(UNRESOLVED))
                                  .order_by(AlertRow.opened_at)).scalars())
            audit = AuditRepository(s)
            if r.status == FIRING and not rows:
                row = AlertRow(rule=r.rule, metric=r.metric, severity=r.severity, action=r.action, status="open",
                               value=r.value, threshold=r.threshold, message=message(r), details=details,
                               opened_at=at, last_seen_at=at, notifications=[])
                s.add(row)
                s.flush()
                audit.append(actor=actor, role=role, action="alert_opened", entity_type="alert", entity_id=str(row.id),
                             at=self.clock.now(), payload={"rule": r.rule, "value": r.value, "threshold": r.threshold,
                                                           "action": r.action, "period": r.period, "n": r.n,
                                                           "as_of": at.isoformat(), "message": row.message})
                report.opened.append(str(row.id))
                events.append(self._event("opened", row))
            elif r.status == FIRING:
                for row in rows:
                    row.value, row.threshold, row.last_seen_at = r.value, r.threshold, at
                    row.message, row.details = message(r), {**dict(row.details or {}), **details}
                    report.updated.append(str(row.id))
            elif r.status == OK:
                for row in rows:  # normally one (the lock keeps a rule to one unresolved alert)
                    row.status, row.resolved_by, row.resolved_at, row.last_seen_at = "resolved", MONITOR, at, at
                    row.value = r.value
                    row.details = {**dict(row.details or {}), "cleared": details}
                    audit.append(actor=actor, role=role, action="alert_resolved", entity_type="alert",
                                 entity_id=str(row.id), at=self.clock.now(),
                                 payload={"rule": r.rule, "how": "cleared", "value": r.value, "threshold": r.threshold,
                                          "as_of": at.isoformat(), "lifts_halt": row.action == HALT_ACTION})
                    report.resolved.append(str(row.id))
                    events.append(self._event("resolved", row))
        for event in events:  # after the commit: a slow receiver never holds the transaction
            self._notify(str(event["alert_id"]), event)

    @staticmethod
    def _event(kind: str, row: AlertRow) -> dict[str, Any]:
        return _jsonable({"event": kind, "alert_id": str(row.id), "rule": row.rule, "metric": row.metric,
                          "severity": row.severity, "action": row.action, "status": row.status, "value": row.value,
                          "threshold": row.threshold, "message": row.message,
                          "label": (row.details or {}).get("label", row.rule),
                          "opened_at": row.opened_at, "resolved_at": row.resolved_at,
                          "resolved_by": row.resolved_by, "period": (row.details or {}).get("period", "")})

    def _notify(self, alert_id: str, event: dict[str, Any]) -> None:
        try:
            delivery = dict(self.notifier.send(event))
        except Exception as exc:  # noqa: BLE001 - a notifier must never break the evaluation
            log.exception("notifier raised")
            delivery = {"channel": getattr(self.notifier, "channel", "?"), "ok": False, "attempts": 1,
                        "error": f"{type(exc).__name__}: {str(exc)[:200]}", "at": self.clock.now().isoformat()}
        delivery.setdefault("event", event.get("event"))
        with self.db.transaction() as s:
            row = s.get(AlertRow, uuid.UUID(alert_id))
            if row is not None:
                row.notifications = [*(row.notifications or []), _jsonable(delivery)]

    # -- people ---------------------------------------------------------------------------------------
    def _role(self, username: str, s: Session | None = None) -> str:
        """The user's role from the users table (refused when unknown, disabled or without ACK_ALERTS)."""
        if s is None:
            with self.db.read() as sess:
                return self._role(username, sess)
        user = s.execute(select(User).where(User.username == username)).scalar()
        if user is None or user.disabled:
            raise AlertError(MSG_NOT_USER.format(username=username))
        if not allowed(user.role, Perm.ACK_ALERTS):
            raise AlertError(MSG_NOT_ALLOWED.format(role=user.role.replace("_", " ")))
        return user.role

    def acknowledge(self, alert_id: str | uuid.UUID, actor: ActorLike | str, note: str) -> AlertView:
        """Mark an open alert as seen and being handled (it stays unresolved; a halt stays in force)."""
        return self._change(alert_id, actor, note, resolve=False)

    def resolve(self, alert_id: str | uuid.UUID, actor: ActorLike | str, note: str) -> AlertView:
        """Resolve an open or acknowledged alert by hand (lifts a halt; a rule still firing re-opens)."""
        return self._change(alert_id, actor, note, resolve=True)

    def _change(self, alert_id: str | uuid.UUID, actor: ActorLike | str, note: str, *, resolve: bool) -> AlertView:
        key = _uuid(alert_id)
        text_ = _note(note)
        username = actor if isinstance(actor, str) else actor.username
        now = self.clock.now()
        with self.db.transaction() as s:
            role = self._role(username, s)
            row = s.execute(select(AlertRow).where(AlertRow.id == key).with_for_update()).scalar()
            if row is None:
                raise AlertError(MSG_NO_ALERT.format(id=key))
            if row.status == "resolved":
                raise AlertError(MSG_ALREADY_RESOLVED.format(id=key, by=row.resolved_by))
            if not resolve and row.status == "acknowledged":
                raise AlertError(MSG_ALREADY_ACK.format(id=key, by=row.acknowledged_by))
            before = row.status
            if resolve:
                row.status, row.resolved_by, row.resolved_at = "resolved", username, now
                row.details = {**dict(row.details or {}), "resolve_note": text_}
            else:
                row.status, row.acknowledged_by, row.acknowledged_at, row.ack_note = "acknowledged", username, now, text_
            AuditRepository(s).append(
                actor=username, role=role, action="alert_resolved" if resolve else "alert_acknowledged",
                entity_type="alert", entity_id=str(key), at=now,
                payload={"rule": row.rule, "how": "manual" if resolve else "acknowledged", "from": before,
                         "note": text_, "lifts_halt": resolve and row.action == HALT_ACTION})
            return _view(row)

    # -- reading ------------------------------------------------------------------------------------
    def get(self, alert_id: str | uuid.UUID) -> AlertView:
        key = _uuid(alert_id)
        with self.db.read() as s:
            row = s.get(AlertRow, key)
            if row is None:
                raise AlertError(MSG_NO_ALERT.format(id=key))
            return _view(row)

    @staticmethod
    def _statuses(status: str | None) -> Sequence[str] | None:
        if status in (None, "", "all"):
            return None
        if status == "unresolved":
            return UNRESOLVED
        if status not in STATUSES:
            raise AlertError(MSG_BAD_STATUS.format(status=status))
        return (status,)

    def count(self, status: str | None = None) -> int:
        q = select(func.count()).select_from(AlertRow)
        if (wanted := self._statuses(status)) is not None:
            q = q.where(AlertRow.status.in_(wanted))
        with self.db.read() as s:
            return int(s.execute(q).scalar_one())

    def list(self, status: str | None = None, limit: int = 50, offset: int = 0) -> list[AlertView]:  # noqa: A003
        """Alerts, newest first; ``status``: open, acknowledged, resolved, unresolved or all (None)."""
        q = select(AlertRow)
        if (wanted := self._statuses(status)) is not None:
            q = q.where(AlertRow.status.in_(wanted))
        order = AlertRow.resolved_at.desc() if status == "resolved" else AlertRow.opened_at.desc()
        with self.db.read() as s:
            rows = s.execute(q.order_by(order, AlertRow.opened_at.desc()).limit(max(1, int(limit)))
                             .offset(max(0, int(offset)))).scalars()
            return [_view(r) for r in rows]
