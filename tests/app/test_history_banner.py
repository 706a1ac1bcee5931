"""While `make run`'s simulated history is written beside the console, every page with book figures says so
(and Home too); a writer that died is said to have stopped, with the way to finish; a finished history adds
nothing. The console's alert schedule waits while the history is written."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta

import pytest

from backend.alerts import AlertSchedule
from backend.decisioning import ProgressFile, ProgressRecorder

PAGES = [("loan_officer", "home.py"), ("loan_officer", "decisions.py"), ("product_lead", "phases.py"),
         ("risk_manager", "fairness.py"), ("ml_engineer", "drift.py")]


def _texts(at) -> tuple[list[str], list[str]]:  # noqa: ANN001
    return [e.value for e in at.info], [e.value for e in at.warning]


@pytest.fixture
def writer():  # noqa: ANN201 - a live process standing in for the history's writer
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield child
    child.kill()
    child.wait()


@pytest.mark.parametrize(("role", "page"), PAGES)
def test_pages_say_the_history_is_being_written_then_that_it_stopped(console, writer, role, page):
    from app.navigation import PAGES_DIR

    rec = ProgressRecorder(ProgressFile(console.data_dir), first_day=date(2026, 6, 7), last_day=date(2026, 12, 6),
                           days=183, pid=writer.pid, every=0.0)
    rec.day("2026-09-10", 96, 183)
    at = console.open_page(role, PAGES_DIR / page)
    infos, warnings = _texts(at)
    assert any("still being written: day 96 of 183, through 10 September 2026" in t for t in infos), infos
    assert not any("stopped" in t for t in warnings)

    writer.kill()
    writer.wait()
    at.run()
    infos, warnings = _texts(at)
    assert not any("still being written" in t for t in infos), infos
    assert any("stopped at day 96 of 183" in t and "make run" in t for t in warnings), warnings

    rec.done("simulated history (...)")
    at.run()
    infos, warnings = _texts(at)
    assert not any("simulated history (" in t for t in infos + warnings)


def test_no_record_no_banner(console):
    from app.navigation import PAGES_DIR

    at = console.open_page("loan_officer", PAGES_DIR / "home.py")
    assert not any("simulated history (" in t for t in _texts(at)[0] + _texts(at)[1])


def test_the_alert_schedule_waits_while_the_history_is_written():
    calls: list[bool] = []

    class Alerts:
        def evaluate(self, refresh: bool) -> None:
            calls.append(refresh)

    writing = threading.Event()
    writing.set()
    sched = AlertSchedule(Alerts, lambda: datetime.now(UTC), check_every=timedelta(seconds=0.02), refresh_every=None,
                          hold=writing.is_set).start()
    try:
        time.sleep(0.3)
        assert calls == [] and sched.runs == 0  # held: not one run
        writing.clear()
        deadline = time.monotonic() + 10
        while not calls and time.monotonic() < deadline:
            time.sleep(0.02)
        assert calls and sched.runs >= 1  # released: the rules are judged again
    finally:
        sched.stop()


def test_cached_figures_are_recomputed_as_days_are_written_and_once_done(console, writer, monkeypatch):
    """"Reload the page to see more" holds: a page's cached report (Costs: five minutes) is keyed on the
    history's progress, so each day recorded and the end of the run read the book again; then it caches."""
    from app.navigation import PAGES_DIR
    from backend.analytics.costs import CostService

    calls: list[int] = []
    real = CostService.report
    monkeypatch.setattr(CostService, "report", lambda self: calls.append(1) or real(self))
    rec = ProgressRecorder(ProgressFile(console.data_dir), first_day=date(2026, 6, 7), last_day=date(2026, 12, 6),
                           days=183, pid=writer.pid, every=0.0)
    rec.day("2026-06-16", 10, 183)
    at = console.open_page("product_lead", PAGES_DIR / "costs.py")
    assert len(calls) == 1
    at.run()
    assert len(calls) == 1  # the same day: cached
    rec.day("2026-06-17", 11, 183)
    at.run()
    assert len(calls) == 2  # a day more: read again
    rec.done("simulated history (...)")
    at.run()
    at.run()
    assert len(calls) == 3  # done: read once more, then cached
