"""The history's weekly monitor runs: in this process, or in a second one while the day loop writes on.

A weekly run (what ``creditrisk monitor run`` under cron would have done that Monday 06:00) reads the
book only up to its time: drift and fairness refresh ``until`` it (applications made before it), the
alert rules read as of it. The day loop writes each day's applications together with their decisions
and explanations, so the book up to a Monday is complete once that Monday is written, and a run
judges the same rows whether the loop has just written that Monday or already the weeks after
(``tests/integration/test_history_monitors.py`` runs every Monday's monitors after the whole book is
written, and in the second process, and finds the alerts, the stored figures and the monitor's audit
entries of in-line runs, on both databases). Nothing the day loop does reads what the monitors write
(an alert can halt deployments, but the history's promotion and rollback are made before the days;
scoring and decisions never read alerts or summaries).

:class:`ProcessMonitors` uses that: the runs go, in order, to a second process with its own services on
the same database, so on two cores the weekly monitoring of the default history (~40 s) overlaps the day
loop instead of interrupting it every week (``creditrisk demo --history``, ``seed-demo``: the day loop
139 -> 114 s, the history 169 -> 148 s on 2 cores; the loop itself slows a little, sharing the database
and the memory bus). :meth:`close` waits for the last run, so everything after the days (feedback,
outcomes, the last monitor run) starts from the same state as in-line. A failed run stops the history at
the next submit or at :meth:`close` with the worker's traceback; nothing is lost (the days are written,
and running again resumes).
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import traceback
from datetime import datetime
from typing import Any, Protocol

from backend.container import Services, build_services
from backend.platform.clock import FixedClock

Refresh = bool | tuple[str, ...]
MSG_FAILED = "the monitor process failed ({why}); the days written so far are kept, and running again resumes:\n{tb}"


class MonitorRuns(Protocol):
    def submit(self, at: datetime, refresh: Refresh) -> None: ...

    def close(self) -> None: ...

    def stop(self) -> None: ...


class MonitorProcessError(RuntimeError):
    """A weekly monitor run failed in the second process (its traceback is in the message)."""


def evaluate(svc: Services, clock: FixedClock, at: datetime, refresh: Refresh) -> None:
    """One monitor run as of ``at``: refresh the summaries named by ``refresh`` and judge the alert rules."""
    clock.at = at
    svc.alerts.evaluate(at=at, refresh=refresh, actor="monitor")


class InlineMonitors:
    """Each run at once, in this process, with the simulation's services and clock."""

    def __init__(self, svc: Services, clock: FixedClock) -> None:
        self.svc, self.clock = svc, clock

    def submit(self, at: datetime, refresh: Refresh) -> None:
        evaluate(self.svc, self.clock, at, refresh)

    def close(self) -> None:
        return None

    def stop(self) -> None:
        return None


class ProcessMonitors:
    """The runs, in the order submitted, in a second (spawned) process on the same database and settings."""

    def __init__(self, svc: Services, *, quiet_alerts: bool = True) -> None:
        ctx = multiprocessing.get_context("spawn")  # never fork a process holding engines, pools and threads
        self._jobs: Any = ctx.Queue()
        self._done: Any = ctx.Queue()
        url = svc.db.engine.url.render_as_string(hide_password=False)
        self._proc = ctx.Process(target=_serve, name="creditrisk-history-monitors", daemon=True,
                                 args=(svc.settings, url, self._jobs, self._done, quiet_alerts))
        self._proc.start()
        self._closed = False

    def submit(self, at: datetime, refresh: Refresh) -> None:
        if not self._proc.is_alive():  # it stopped early: report why now rather than after the last day
            self._raise(self._result(block=False) or ("error", "exited", ""))
        self._jobs.put((at, refresh))

    def close(self) -> None:
        """Wait for every submitted run; raises :class:`MonitorProcessError` if one failed."""
        if self._closed:
            return
        self._closed = True
        self._jobs.put(None)
        result = None
        while result is None:
            result = self._result(block=True)
            if result is None and not self._proc.is_alive():
                result = self._result(block=False) or ("error", f"exited with code {self._proc.exitcode}", "")
        self._proc.join(timeout=30)
        if result[0] != "ok":
            self._raise(result)

    def stop(self) -> None:
        """The history stopped: end the process without waiting for the runs still queued."""
        self._closed = True
        if self._proc.is_alive():
            self._proc.terminate()
        self._proc.join(timeout=10)

    def _result(self, *, block: bool) -> tuple[str, str, str] | None:
        try:
            return self._done.get(timeout=1.0) if block else self._done.get_nowait()  # type: ignore[no-any-return]
        except queue.Empty:
            return None

    def _raise(self, result: tuple[str, str, str]) -> None:
        self._closed = True
        if self._proc.is_alive():
            self._proc.terminate()
        raise MonitorProcessError(MSG_FAILED.format(why=result[1], tb=result[2]))


def _serve(settings: Any, url: str, jobs: Any, done: Any, quiet_alerts: bool) -> None:
    """The second process: its own services on ``url``, one run per job until ``None``."""
    try:
        from backend.platform.adapters.notify_log import LOGGER_NAME
        from backend.platform.db.engine import Database, make_engine

        if quiet_alerts and not logging.getLogger().handlers:  # as the parent (the alerts are stored, not printed)
            logging.getLogger(LOGGER_NAME).addHandler(logging.NullHandler())
        db = Database(make_engine(url))
        clock = FixedClock(datetime.fromtimestamp(0).astimezone())
        svc = build_services(settings, db=db, clock=clock)
        runs = 0
        with db.bulk_load():
            while (job := jobs.get()) is not None:
                evaluate(svc, clock, *job)
                runs += 1
        db.dispose()
        done.put(("ok", str(runs), ""))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which stops the history with it
        done.put(("error", f"{type(exc).__name__}: {exc}", traceback.format_exc()))
