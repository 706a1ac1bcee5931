"""Alerts are their rules (issue 20, item 3), on the simulated history (SQLite and PostgreSQL): a recompute of
a summary judges the rules at once, so every firing rule has an unresolved alert and no unresolved alert's rule
reads ok; the console's schedule judges them too; a refresh inside an evaluation does not judge twice."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from backend.alerts import AlertSchedule
from backend.platform.db.tables_governance import AuditLog


def _same_fact(svc) -> tuple[set[str], set[str]]:
    readings = svc.alerts.status()
    firing = {r.rule for r in readings if r.status == "firing"}
    clear = {r.rule for r in readings if r.status == "ok"}
    unresolved = {a.rule for a in svc.alerts.list(status="unresolved")}
    assert firing <= unresolved, f"firing without an alert: {firing - unresolved}"
    assert not (unresolved & clear), f"an alert whose rule reads ok: {unresolved & clear}"
    return firing, unresolved


def _opened(svc) -> int:
    with svc.db.read() as s:
        return s.execute(sa.select(sa.func.count()).select_from(AuditLog)
                         .where(AuditLog.action == "alert_opened")).scalar_one()


def test_a_recompute_judges_the_rules_so_the_page_and_the_alerts_agree(sim_services) -> None:
    svc = sim_services
    assert svc.alerts.list(status="unresolved") == []  # the history was built without the monitors
    svc.fairness.refresh()  # what "Recompute now" on the Fairness page calls
    svc.drift.refresh_all()
    firing, unresolved = _same_fact(svc)
    assert unresolved, "the small history fires at least one rule (cost, drift or fairness)"
    opened = _opened(svc)
    svc.performance.refresh()  # another recompute: the same rules still fire, nothing is opened twice
    _same_fact(svc)
    assert _opened(svc) == opened
    # an as-of (historical) refresh judges nothing now
    before = len(svc.alerts.list(status="all", limit=1000))
    svc.fairness.refresh(until=svc.clock.now() - timedelta(days=60))
    assert len(svc.alerts.list(status="all", limit=1000)) == before


def test_an_evaluation_with_a_refresh_judges_once(sim_services) -> None:
    svc = sim_services
    rep = svc.alerts.evaluate(refresh=True)
    assert rep.opened and _opened(svc) == len(rep.opened)  # the refresh inside it did not evaluate again
    _same_fact(svc)


def test_the_console_schedule_judges_the_rules_and_refreshes_when_due(sim_services) -> None:
    svc = sim_services
    sched = AlertSchedule(lambda: svc.alerts, svc.clock.now, check_every=timedelta(minutes=15),
                          refresh_every=timedelta(hours=24))
    rep = sched.run_once()  # never refreshed: a full refresh, then the rules
    assert sched.last_refresh == svc.clock.now() and rep.refreshed.get("fairness") == "ok"
    _same_fact(svc)
    rep = sched.run_once()  # refresh not due: the rules alone
    assert rep.refreshed == {} and sched.runs == 2
    off = AlertSchedule(lambda: svc.alerts, svc.clock.now, check_every=timedelta(0), refresh_every=None).start()
    assert off._thread is None  # 0 minutes: no thread
