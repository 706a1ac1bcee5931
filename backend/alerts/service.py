"""Alerts: evaluate the rules of :mod:`backend.alerts.rules`, keep their state, notify.

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

While an alert whose action is ``halt_deployments`` is unresolved, :mod:`backend.models.halts`
refuses promotions; resolving it lifts the halt. Notifications are sent after the commit (a slow
webhook never holds a transaction) and their delivery records appended to the row.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from backend.alerts import queries as q
from backend.alerts.records import (
    MAX_NOTE,
    MIN_NOTE,
    MONITOR,
    MSG_ALREADY_ACK,
    MSG_ALREADY_RESOLVED,
    MSG_BAD_ID,
    MSG_BAD_STATUS,
    MSG_NAIVE_AT,
    MSG_NO_ALERT,
    MSG_NOT_ALLOWED,
    MSG_NOT_USER,
    MSG_NOTE_BAD,
    MSG_NOTE_LONG,
    MSG_NOTE_SHORT,
    NOT_INSTALLED,
    STATUSES,
    UNRESOLVED,
    AlertError,
    AlertView,
    EvaluationReport,
    alert_uuid,
    brief_error,
    checked_note,
    jsonable,
    view_of,
)
from backend.alerts.rules import (
    FIRING,
    NO_DATA,
    OK,
    READER_SERVICE,
    READERS,
    RULES,
    AlertSources,
    Measurement,
    ReadContext,
    Reading,
    SourceMissing,
    judge,
    message,
    threshold_for,
)
from backend.compliance import AuditRepository
from backend.domain import Actor, Perm, allowed
from backend.models import HALT_ACTION
from backend.monitoring import MonitoringSettings
from backend.platform.db.engine import Database
from backend.platform.ports import Clock, Notifier

if TYPE_CHECKING:
    from backend.platform.db.tables_governance import AlertRow

log = logging.getLogger("creditrisk.alerts")
REFRESHED = ("drift", "performance", "fairness", "experiments")
__all__ = ["MAX_NOTE", "MIN_NOTE", "MONITOR", "MSG_ALREADY_ACK", "MSG_ALREADY_RESOLVED", "MSG_BAD_ID", "MSG_BAD_STATUS",
           "MSG_NAIVE_AT", "MSG_NO_ALERT", "MSG_NOTE_BAD", "MSG_NOTE_LONG", "MSG_NOTE_SHORT", "MSG_NOT_ALLOWED",
           "MSG_NOT_USER", "NOT_INSTALLED", "REFRESHED", "STATUSES", "UNRESOLVED", "AlertError", "AlertService",
           "AlertView", "EvaluationReport"]


class AlertService:
    def __init__(self, db: Database, clock: Clock, settings: MonitoringSettings, notifier: Notifier, *,
                 sources: AlertSources | None = None) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.notifier = notifier
        self.sources = sources or AlertSources()
        self._inside = threading.local()  # set while this thread evaluates (a refresh inside it judges nothing)

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
        self._inside.on = True
        try:
            if refresh:
                self._refresh(at, report, REFRESHED if refresh is True else tuple(refresh or ()))
            report.readings = self._readings(at, report.errors)
            for reading in report.readings:
                self._apply(reading, at, actor, role, report)
        finally:
            self._inside.on = False
        report.unresolved = self.list(status="unresolved", limit=1000)
        return report

    def after_recompute(self) -> EvaluationReport | None:
        """Judge every rule now on the summaries as they are (nothing refreshed), as the monitor: called
        after each recompute of a summary, and on the console's schedule. Nothing when this thread is
        already evaluating (the refresh is part of that evaluation). A failure is logged, never raised:
        the recompute that called it succeeded."""
        if getattr(self._inside, "on", False):
            return None
        try:
            return self.evaluate(refresh=False)
        except Exception:  # noqa: BLE001 - the caller's recompute stands; the next check tries again
            log.exception("judging the alert rules after a recompute failed")
            return None

    def status(self, at: datetime | None = None) -> list[Reading]:
        """The current reading of every rule (nothing refreshed, nothing written)."""
        if at is not None and at.tzinfo is None:
            raise AlertError(MSG_NAIVE_AT)
        return self._readings(at or self.clock.now(), [])

    def _refresh(self, at: datetime, report: EvaluationReport, names: tuple[str, ...]) -> None:
        for name in names:
            try:
                svc = self.sources.get(name)
                if name == "drift":
                    svc.refresh_all(until=at)
                else:
                    svc.refresh(until=at)
            except Exception as exc:  # noqa: BLE001 - one failing summary must not stop the other rules
                if isinstance(exc, SourceMissing):
                    report.refreshed[name] = "not installed"
                    continue
                log.exception("refreshing the %s summaries failed", name)
                report.refreshed[name] = f"failed: {brief_error(exc)}"
                report.errors.append(f"{name} refresh: {brief_error(exc)}")
            else:
                report.refreshed[name] = "ok"

    def _readings(self, at: datetime, errors: list[str]) -> list[Reading]:
        ctx = ReadContext(self.sources, at)
        out = []
        for rule in RULES:
            m: Measurement | None
            try:
                m = READERS[rule.name](ctx)
            except Exception as exc:  # noqa: BLE001 - a broken reader reads "no data" and is reported
                service = READER_SERVICE.get(rule.name, "")
                if isinstance(exc, SourceMissing):
                    m = Measurement(None, detail=NOT_INSTALLED.format(service=service))
                else:
                    log.exception("reading the %s rule failed", rule.name)
                    errors.append(f"{rule.name}: {brief_error(exc)}")
                    m = Measurement(None, detail=f"reader failed: {brief_error(exc)}")
            out.append(judge(rule, m, threshold_for(rule, self.settings.thresholds), self.settings.thresholds.min_rows))
        return out

    def _apply(self, r: Reading, at: datetime, actor: str, role: str, report: EvaluationReport) -> None:
        if r.status == NO_DATA:
            return
        details = jsonable({"period": r.period, "n": r.n, "detail": r.detail, "label": r.label, "unit": r.unit,
                             "direction": r.direction, **({"extra": r.extra} if r.extra else {})})
        events: list[dict[str, Any]] = []
        with self.db.transaction() as s:
            q.lock(s)
            rows = q.unresolved(s, r.rule, UNRESOLVED)
            audit = AuditRepository(s)
            if r.status == FIRING and not rows:
                row = q.open_alert(s, rule=r.rule, metric=r.metric, severity=r.severity, action=r.action,
                                   value=r.value, threshold=r.threshold, message=message(r), details=details, at=at)
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
        return jsonable({"event": kind, "alert_id": str(row.id), "rule": row.rule, "metric": row.metric,
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
            row = q.by_id(s, uuid.UUID(alert_id))
            if row is not None:
                row.notifications = [*(row.notifications or []), jsonable(delivery)]

    # -- people ---------------------------------------------------------------------------------------
    def _role(self, username: str, s: Session | None = None) -> str:
        """The user's role from the users table (refused when unknown, disabled or without ACK_ALERTS)."""
        if s is None:
            with self.db.read() as sess:
                return self._role(username, sess)
        user = q.user(s, username)
        if user is None or user.disabled:
            raise AlertError(MSG_NOT_USER.format(username=username))
        if not allowed(user.role, Perm.ACK_ALERTS):
            raise AlertError(MSG_NOT_ALLOWED.format(role=user.role.replace("_", " ")))
        return user.role

    def acknowledge(self, alert_id: str | uuid.UUID, actor: Actor | str, note: str) -> AlertView:
        """Mark an open alert as seen and being handled (it stays unresolved; a halt stays in force)."""
        return self._change(alert_id, actor, note, resolve=False)

    def resolve(self, alert_id: str | uuid.UUID, actor: Actor | str, note: str) -> AlertView:
        """Resolve an open or acknowledged alert by hand (lifts a halt; a rule still firing re-opens)."""
        return self._change(alert_id, actor, note, resolve=True)

    def _change(self, alert_id: str | uuid.UUID, actor: Actor | str, note: str, *, resolve: bool) -> AlertView:
        key = alert_uuid(alert_id)
        text_ = checked_note(note)
        username = actor if isinstance(actor, str) else actor.username
        now = self.clock.now()
        with self.db.transaction() as s:
            role = self._role(username, s)
            row = q.for_update(s, key)
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
            return view_of(row)

    # -- reading ------------------------------------------------------------------------------------
    def get(self, alert_id: str | uuid.UUID) -> AlertView:
        key = alert_uuid(alert_id)
        with self.db.read() as s:
            row = q.by_id(s, key)
            if row is None:
                raise AlertError(MSG_NO_ALERT.format(id=key))
            return view_of(row)

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
        with self.db.read() as s:
            return q.count(s, self._statuses(status))

    def list(self, status: str | None = None, limit: int = 50, offset: int = 0) -> list[AlertView]:  # noqa: A003
        """Alerts, newest first; ``status``: open, acknowledged, resolved, unresolved or all (None)."""
        with self.db.read() as s:
            return [view_of(r) for r in q.page(s, self._statuses(status), by_resolved=status == "resolved", limit=limit,
                                              offset=offset)]
