"""Alerts end to end on SQLite and PostgreSQL: crafted records make a rule fire (alert opened, audited,
notified), keep firing (no duplicate), clear (resolved by the monitor); people acknowledge and resolve
with the right permission; a halting alert blocks deployments until resolved; the webhook notifier
against a real loopback HTTP receiver (delivered, retried after a 500, timed out on a hung receiver)."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from serving_records import Call, craft

from backend.alerts.rules import FIRING, NO_DATA, OK, AlertSources
from backend.alerts.service import (
    MSG_ALREADY_ACK,
    MSG_ALREADY_RESOLVED,
    MSG_BAD_ID,
    MSG_NAIVE_AT,
    MSG_NO_ALERT,
    MSG_NOT_ALLOWED,
    MSG_NOT_USER,
    MSG_NOTE_BAD,
    MSG_NOTE_SHORT,
    AlertError,
    AlertService,
)
from backend.analytics import ALERT_WINDOW
from backend.container import build_services
from backend.container.adapters import MSG_NO_WEBHOOK_URL, build_notifier
from backend.models.halts import HALT_ACTION, MSG_HALTED, DeploymentsHalted, active_halts, ensure_not_halted
from backend.monitoring.config import MonitoringSettings
from backend.platform.adapters.notify_log import LOGGER_NAME

PASSWORD = "correct horse battery staple"


# -- crafted records (tests/serving_records.py) ----------------------------------------------------------
def slow(i: int) -> list[Call]:
    return [{"ms": 40_000.0}]  # a 40 s explanation: end to end above the 30 s threshold


def fast(i: int) -> list[Call]:
    return [{"ms": 2_500.0}]


def _audit(services, action: str) -> list[dict[str, Any]]:
    return [r for r in services.audit.recent(200) if r["action"] == action]


def _reading(report, rule: str):
    return next(r for r in report.readings if r.rule == rule)


@pytest.fixture
def readers():
    """Fakes of the monitoring services the rules read, each answering "no reading" until a test sets its value:
    crafted requests alone would make e.g. the cost rule fire (fixed monthly costs over 250 requests)."""
    return {name: FakeReader(None) for name in ("performance", "drift", "fairness", "costs")}


@pytest.fixture
def svc(settings, db, clock, readers):
    """The services with the fakes above in place of the real monitoring services (composition-root overrides)."""
    return build_services(settings, db=db, clock=clock, **readers)


# -- lifecycle ----------------------------------------------------------------------------------------
def test_latency_alert_opens_once_and_resolves_when_data_is_fixed(svc, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    now = svc.clock.now()
    craft(svc.db, now, 250, calls=slow)
    rep = svc.alerts.evaluate(refresh=False)
    r = _reading(rep, "latency")
    assert (r.status, r.n) == (FIRING, 250) and r.value == pytest.approx(40.005)
    assert len(rep.opened) == 1 and not rep.all_clear
    alert = svc.alerts.get(rep.opened[0])
    assert (alert.rule, alert.status, alert.action, alert.opened_at, alert.threshold) == (
        "latency", "open", "notify", now, 30.0)
    assert "Decision latency p95 40.0 s is above the threshold 30.0 s" in alert.message
    opened = _audit(svc, "alert_opened")
    assert [(a["actor"], a["role"], a["entity_id"]) for a in opened] == [("monitor", "system", alert.id)]
    assert [n["event"] for n in alert.notifications] == ["opened"] and alert.notifications[0]["ok"]
    logged = [json.loads(rec.getMessage())["alert_event"] for rec in caplog.records if rec.name == LOGGER_NAME]
    assert [(e["event"], e["rule"], e["alert_id"]) for e in logged] == [("opened", "latency", alert.id)]

    svc.clock.advance(hours=6)  # still firing: the same row, a new last_seen_at, no new notification
    rep2 = svc.alerts.evaluate(refresh=False)
    assert rep2.opened == [] and rep2.updated == [alert.id]
    again = svc.alerts.get(alert.id)
    assert again.last_seen_at == now + timedelta(hours=6) and len(again.notifications) == 1
    assert svc.alerts.count("all") == 1 and len(_audit(svc, "alert_opened")) == 1

    svc.clock.advance(days=8)  # the slow week is over: a fast week in its place
    craft(svc.db, svc.clock.now(), 300, calls=fast)
    rep3 = svc.alerts.evaluate(refresh=False)
    assert _reading(rep3, "latency").status == OK and rep3.resolved == [alert.id] and rep3.all_clear
    done = svc.alerts.get(alert.id)
    assert (done.status, done.resolved_by, done.resolved_at) == ("resolved", "monitor", svc.clock.now())
    assert [n["event"] for n in done.notifications] == ["opened", "resolved"]
    assert [(a["actor"], a["payload"]["how"]) for a in _audit(svc, "alert_resolved")] == [("monitor", "cleared")]
    assert svc.audit.verify().ok


def test_no_data_never_fires_and_leaves_an_open_alert_alone(svc):
    now = svc.clock.now()
    craft(svc.db, now, 150, calls=slow)  # fewer than min_rows (200)
    r = _reading(svc.alerts.evaluate(refresh=False), "latency")
    assert (r.status, r.n) == (NO_DATA, 150) and svc.alerts.count("all") == 0
    craft(svc.db, now, 100, calls=slow)
    opened = svc.alerts.evaluate(refresh=False).opened
    svc.clock.advance(days=30)  # nothing in the window now: no data, the alert stays open
    rep = svc.alerts.evaluate(refresh=False)
    assert _reading(rep, "latency").status == NO_DATA and rep.resolved == []
    assert svc.alerts.get(opened[0]).status == "open"


def test_the_latency_rule_reads_the_latency_pages_p95_per_final_decision(services):
    rng = np.random.default_rng(5)
    now = services.clock.now()
    scoring = rng.uniform(1, 50, 240)
    plan = [[{"ms": float(x)} for x in rng.lognormal(8, 0.6, int(k))] for k in rng.integers(0, 3, 240)]
    totals = []
    for i in range(240):  # one request at a time: each its own scoring latency and 0-2 explanation calls
        totals += craft(services.db, now - timedelta(seconds=i), 1, scoring_ms=float(scoring[i]),
                        calls=lambda _i, c=plan[i]: c)
    craft(services.db, now - ALERT_WINDOW, 5, calls=slow, days=3)  # older than the window: not counted
    craft(services.db, now, 30, calls=slow, decided=lambda i: False)  # not decided (yet): not a decision
    rep = services.alerts.evaluate(refresh=False)
    r = _reading(rep, "latency")
    assert r.n == 240 and r.value == pytest.approx(np.percentile(totals, 95) / 1000)  # linear, as percentile_cont
    fig = services.latency.recent(now)
    assert (r.value, r.n, r.extra) == (fig.p95_s, fig.n, {"low": fig.low_s, "high": fig.high_s})
    assert fig.low_s < fig.p95_s < fig.high_s


def test_error_rate_counts_fallbacks_and_llm_failures_without_a_working_fallback(svc):
    timeout = {"ok": None, "error": "timeout: no answer within 10.0 s", "ms": 10_000.0}
    kinds = {0: [timeout, {"provider": "anthropic", "fallback": True}],  # fallback answered: not an error
             1: [timeout, dict(timeout, provider="anthropic", fallback=True)],  # both failed: an error
             2: [{"ok": False, "error": "fact-check failed: number: 42%"}],  # answered; template shown by design
             3: [timeout]}  # the only provider failed: an error
    craft(svc.db, svc.clock.now(), 250, calls=lambda i: kinds.get(i, []),
          fallback=lambda i: "SageMaker endpoint timed out" if i in (10, 11, 12) else None)
    r = _reading(svc.alerts.evaluate(refresh=False), "errors")
    assert r.status == FIRING and r.value == pytest.approx(5 / 250)
    assert r.extra == {"requests": 250, "errors": 5, "scoring_fallbacks": 3, "llm_failures": 2}
    assert svc.alerts.list("open")[0].rule == "errors"


# -- people ---------------------------------------------------------------------------------------------
@pytest.fixture
def people(svc):
    services = svc
    for name, role in (("rita", "risk_manager"), ("mel", "ml_engineer"), ("pat", "product_lead"),
                       ("olly", "loan_officer"), ("gone", "risk_manager")):
        services.users.add(name, role=role, password=PASSWORD)
    services.users.set_disabled("gone", True)
    return services


def test_acknowledge_and_resolve_need_the_permission_a_note_and_leave_audit_rows(people):
    svc = people
    craft(svc.db, svc.clock.now(), 250, calls=slow)
    alert_id = svc.alerts.evaluate(refresh=False).opened[0]
    refusals = [("pat", "checking it now", MSG_NOT_ALLOWED.format(role="product lead")),
                ("olly", "checking it now", MSG_NOT_ALLOWED.format(role="loan officer")),
                ("gone", "checking it now", MSG_NOT_USER.format(username="gone")),
                ("nobody", "checking it now", MSG_NOT_USER.format(username="nobody")),
                ("rita", "  ok ", MSG_NOTE_SHORT)]
    for who, note, msg in refusals:
        with pytest.raises(AlertError) as exc:
            svc.alerts.acknowledge(alert_id, who, note)
        assert str(exc.value) == msg
    for bad_note in ("looking\x00 into it", "looking \ud800 into it"):
        with pytest.raises(AlertError) as exc:
            svc.alerts.acknowledge(alert_id, "rita", bad_note)
        assert str(exc.value) == MSG_NOTE_BAD
    with pytest.raises(AlertError) as exc:
        svc.alerts.evaluate(at=datetime(2026, 1, 15), refresh=False)
    assert str(exc.value) == MSG_NAIVE_AT
    assert svc.alerts.get(alert_id).status == "open" and not _audit(svc, "alert_acknowledged")

    acked = svc.alerts.acknowledge(alert_id, svc.users.get("rita"), "Explainer provider is slow; ticket OPS-12")
    assert (acked.status, acked.acknowledged_by, acked.ack_note) == (
        "acknowledged", "rita", "Explainer provider is slow; ticket OPS-12")
    with pytest.raises(AlertError) as exc:
        svc.alerts.acknowledge(alert_id, "mel", "me too, looking")
    assert str(exc.value) == MSG_ALREADY_ACK.format(id=alert_id, by="rita")
    assert svc.alerts.evaluate(refresh=False).updated == [alert_id]  # acknowledged and still firing: same row

    done = svc.alerts.resolve(alert_id, "mel", "Switched the explainer to the fallback provider")
    assert (done.status, done.resolved_by, done.details["resolve_note"]) == (
        "resolved", "mel", "Switched the explainer to the fallback provider")
    with pytest.raises(AlertError) as exc:
        svc.alerts.resolve(alert_id, "rita", "closing again")
    assert str(exc.value) == MSG_ALREADY_RESOLVED.format(id=alert_id, by="mel")
    ack_rows, res_rows = _audit(svc, "alert_acknowledged"), _audit(svc, "alert_resolved")
    assert [(a["actor"], a["role"], a["entity_id"], a["payload"]["note"]) for a in ack_rows] == [
        ("rita", "risk_manager", alert_id, "Explainer provider is slow; ticket OPS-12")]
    assert [(a["actor"], a["role"], a["payload"]["how"]) for a in res_rows] == [("mel", "ml_engineer", "manual")]

    for bad, msg in (("not-an-id", MSG_BAD_ID.format(id="not-an-id")),
                     (str(uuid.UUID(int=7)), MSG_NO_ALERT.format(id=uuid.UUID(int=7)))):
        with pytest.raises(AlertError) as exc:
            svc.alerts.resolve(bad, "rita", "closing it")
        assert str(exc.value) == msg
    reopened = svc.alerts.evaluate(refresh=False).opened  # resolved by hand but still firing: a new alert
    assert len(reopened) == 1 and reopened[0] != alert_id
    with pytest.raises(AlertError):  # running the checks on someone's behalf needs the permission too
        svc.alerts.evaluate(refresh=False, actor="pat")
    assert svc.audit.verify().ok


# -- halts and the readers of the monitoring services ------------------------------------------------------
class FakeReader:
    """A monitoring service's reading, settable by the test (the real services have their own tests)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def latest_min_di(self, before: datetime) -> Any:
        return None if self.value is None else (self.value, "pilot", {"attribute": "sex", "group": "female"})

    def latest_accuracy(self, before: datetime) -> Any:
        return None if self.value is None else (self.value, "2025-01", 4000)

    def latest_max_psi(self, before: datetime) -> Any:
        return None if self.value is None else (self.value, "2025-W38")

    def recent(self, at: datetime) -> Any:
        """The cost service's window before ``at``: ``per_request`` is the value (None: no reading)."""
        if self.value is None:
            return None
        usage = SimpleNamespace(requests=10_000, start=at - timedelta(days=30), end=at)
        return SimpleNamespace(per_request=self.value, usage=usage)


def test_a_disparate_impact_alert_halts_deployments_until_resolved(people, readers):
    svc = people
    fairness = readers["fairness"]
    fairness.value = 0.71
    rep = svc.alerts.evaluate(refresh=False)
    first = svc.alerts.get(rep.opened[0])
    assert (first.rule, first.action, first.severity, first.halts) == ("fairness", HALT_ACTION, "critical", True)
    with pytest.raises(DeploymentsHalted) as exc:
        ensure_not_halted(svc.db)
    assert str(exc.value) == MSG_HALTED.format(n=1, rules="fairness")
    svc.alerts.acknowledge(first.id, "rita", "Reviewing the pilot's approvals by sex")
    with pytest.raises(DeploymentsHalted):
        ensure_not_halted(svc.db)  # acknowledged is not resolved

    svc.alerts.resolve(first.id, "rita", "Reviewed: small group; resolving")
    ensure_not_halted(svc.db)  # lifted
    assert _audit(svc, "alert_resolved")[0]["payload"]["lifts_halt"] is True
    second = svc.alerts.evaluate(refresh=False).opened  # the rule still fires: halted again
    assert len(second) == 1 and [h.alert_id for h in active_halts(svc.db)] == second

    fairness.value = 0.86  # the disparity is gone: the monitor resolves it and lifts the halt
    rep = svc.alerts.evaluate(refresh=False)
    assert rep.resolved == second and active_halts(svc.db) == []
    ensure_not_halted(svc.db)


@pytest.mark.parametrize("service, rule, bad, good, action", [
    ("performance", "accuracy", 0.84, 0.93, "retrain"), ("drift", "drift", 0.42, 0.07, "notify"),
    ("costs", "cost", 0.91, 0.05, "notify")])
def test_service_backed_rules_open_and_clear(svc, readers, service, rule, bad, good, action):
    reader = readers[service]
    reader.value = bad
    craft(svc.db, svc.clock.now(), 220)  # the cost rule counts requests in its 30 days
    rep = svc.alerts.evaluate(refresh=False)
    assert [svc.alerts.get(i).rule for i in rep.opened] == [rule]
    assert svc.alerts.get(rep.opened[0]).action == action
    reader.value = None  # no reading: nothing changes
    assert svc.alerts.evaluate(refresh=False).resolved == []
    reader.value = good
    assert svc.alerts.evaluate(refresh=False).resolved == rep.opened


MONITORING = ("drift", "performance", "fairness", "costs")


@pytest.mark.parametrize("module", MONITORING)
def test_the_real_monitoring_services_on_an_empty_book(scoring_services, module):
    services = scoring_services  # drift needs a champion model for its reference
    rule = {"drift": "drift", "performance": "accuracy", "fairness": "fairness", "costs": "cost"}[module]
    rep = services.alerts.evaluate()  # refresh on an empty book, then read: no data, nothing opened
    assert [e for e in rep.errors if e.startswith((f"{module} refresh:", f"{rule}:"))] == []
    if module != "costs":
        assert rep.refreshed[module] == "ok"
    assert _reading(rep, rule).status == NO_DATA and rep.opened == []


def test_a_missing_monitoring_service_reads_no_data_not_an_error(services):
    alerts = AlertService(services.db, services.clock, services.settings.monitoring, services.notifier,
                          sources=AlertSources())  # a deployment that runs none of the monitoring summaries
    rep = alerts.evaluate()
    for module, rule in (("drift", "drift"), ("performance", "accuracy"), ("fairness", "fairness"), ("costs", "cost"),
                         ("latency", "latency"), ("latency", "errors")):
        assert _reading(rep, rule).detail == f"the {module} service is not installed yet"
        if module not in ("costs", "latency"):
            assert rep.refreshed[module] == "not installed"
    assert rep.errors == [] and rep.all_clear


def test_the_september_incident_raises_the_drift_alert(sim_services):
    rep = sim_services.alerts.evaluate(at=datetime(2025, 9, 22, 9, 0, tzinfo=UTC))
    assert _reading(rep, "drift").status == FIRING
    assert [sim_services.alerts.get(i).rule for i in rep.opened].count("drift") == 1


# -- the webhook notifier against a real loopback receiver -------------------------------------------------
class Receiver:
    """An HTTP server on a free loopback port answering with the given statuses in turn ("hang": never)."""

    def __init__(self, statuses: list[int | str]) -> None:
        self.statuses, self.bodies, self.release = list(statuses), [], threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                receiver.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                status = receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                if status == "hang":
                    receiver.release.wait(10)
                    return
                self.send_response(int(status))
                self.end_headers()
                self.wfile.write(b"ok" if int(status) < 300 else b"boom")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/T000/secret-token"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Callable[[list[int | str]], Receiver]]:
    made: list[Receiver] = []

    def make(statuses: list[int | str]) -> Receiver:
        made.append(Receiver(statuses))
        return made[-1]

    yield make
    for r in made:
        r.close()


def _webhook_alerts(services, url: str, timeout: float = 2.0) -> AlertService:
    cfg = MonitoringSettings(notifier="webhook", webhook_url=url, webhook_timeout=timeout)
    webhook = build_services(services.settings.model_copy(update={"monitoring": cfg}), db=services.db,
                             clock=services.clock, **{name: services.overrides[name] for name in services.overrides})
    return webhook.alerts


def test_webhook_delivers_json_to_a_loopback_receiver(svc, receiver):
    rx = receiver([200])
    alerts = _webhook_alerts(svc, rx.url)
    craft(svc.db, svc.clock.now(), 250, calls=slow)
    alert = alerts.get(alerts.evaluate(refresh=False).opened[0])
    assert len(rx.bodies) == 1
    body = rx.bodies[0]
    assert body["text"].startswith("[WARNING] Decision latency p95 40.0 s is above the threshold 30.0 s")
    assert alert.id in body["text"]
    assert {k: body[k] for k in ("event", "alert_id", "rule", "status", "action", "threshold")} == {
        "event": "opened", "alert_id": alert.id, "rule": "latency", "status": "open", "action": "notify",
        "threshold": 30.0}
    assert body["value"] == pytest.approx(40.005)
    [d] = alert.notifications
    assert (d["channel"], d["ok"], d["status_code"], d["attempts"], d["error"]) == ("webhook", True, 200, 1, None)
    assert d["target"] == rx.url.split("/hooks")[0]  # the secret path is never stored
    assert datetime.fromisoformat(d["at"]).tzinfo is not None


def test_webhook_retries_after_a_500(svc, receiver):
    rx = receiver([500, 200])
    alerts = _webhook_alerts(svc, rx.url)
    craft(svc.db, svc.clock.now(), 250, calls=slow)
    alert = alerts.get(alerts.evaluate(refresh=False).opened[0])
    assert len(rx.bodies) == 2 and rx.bodies[0] == rx.bodies[1]
    [d] = alert.notifications
    assert (d["ok"], d["status_code"], d["attempts"], d["error"]) == (True, 200, 2, None)


def test_webhook_gives_up_after_bounded_retries_on_5xx_and_not_on_4xx(svc, receiver):
    rx = receiver([503])
    craft(svc.db, svc.clock.now(), 250, calls=slow)
    alert = _webhook_alerts(svc, rx.url).evaluate(refresh=False).unresolved[0]
    [d] = svc.alerts.get(alert.id).notifications
    assert (d["ok"], d["status_code"], d["attempts"], len(rx.bodies)) == (False, 503, 3, 3)
    assert d["error"] == "HTTP 503: boom"
    rx4 = receiver([404])
    from backend.platform.adapters.notify_webhook import WebhookNotifier

    d4 = WebhookNotifier(rx4.url, timeout=2.0).send({"event": "opened", "alert_id": "x"})
    assert (d4["ok"], d4["status_code"], d4["attempts"], len(rx4.bodies)) == (False, 404, 1, 1)


def test_a_hung_receiver_times_out_and_the_alert_is_still_stored(svc, receiver):
    rx = receiver(["hang"])
    alerts = _webhook_alerts(svc, rx.url, timeout=0.3)
    craft(svc.db, svc.clock.now(), 250, calls=slow)
    started = time.monotonic()
    rep = alerts.evaluate(refresh=False)  # never raises into the evaluation
    assert time.monotonic() - started < 30  # bounded: 3 attempts of 0.3 s plus backoff (not a speed claim)
    stored = svc.alerts.get(rep.opened[0])
    assert stored.status == "open"
    [d] = stored.notifications
    assert (d["ok"], d["status_code"], d["attempts"]) == (False, None, 3)
    assert d["error"].startswith("timeout after 0.3 s")


def test_a_refused_connection_is_recorded_and_webhook_needs_its_url(services):
    import socket

    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    from backend.platform.adapters.notify_webhook import WebhookNotifier

    d = WebhookNotifier(f"http://127.0.0.1:{port}/x", timeout=1.0, backoff=0.01).send({"event": "opened"})
    assert (d["ok"], d["attempts"]) == (False, 3) and d["error"].startswith("ConnectError")
    with pytest.raises(ValueError) as exc:
        build_notifier(MonitoringSettings(notifier="webhook"))
    assert str(exc.value) == MSG_NO_WEBHOOK_URL
