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
import os
import pickle  # nosec B403 - jobs and the result between this process and its own child, over a pipe
import subprocess  # nosec B404 - runs this interpreter on this module
import sys
import traceback
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn, Protocol

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


def quiet_simulated_alerts() -> None:
    """The history opens and resolves its alerts at their historical times (they are stored, and the Alerts page
    shows them); with no logging configured, Python's last-resort handler printed each as a raw JSON line in the
    middle of the progress bar of `make run`. A configured log (a handler anywhere) still receives them. Called by
    the CLI and by the monitor process (whose alerts would print the same way)."""
    from backend.platform.adapters.notify_log import LOGGER_NAME

    logger = logging.getLogger(LOGGER_NAME)
    if not logging.getLogger().handlers and not logger.handlers:
        logger.addHandler(logging.NullHandler())


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
    """The runs, in the order submitted, in a second Python process (``python -m backend.simulation.monitors``) on
    the same database and settings. A fresh interpreter, not :mod:`multiprocessing`: its "spawn" runs the parent's
    ``__main__`` again in the child (a console script, or under pytest a Streamlit page a test ran as a script).
    The jobs go down its stdin and the result comes back on its stdout, pickled: a pipe between this process and
    its own child, nothing stored."""

    def __init__(self, svc: Services, *, quiet_alerts: bool = True) -> None:
        env = dict(os.environ)  # the child imports this very code, whatever the current directory is
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(Path(__file__).resolve().parents[2]),
                                                        env.get("PYTHONPATH", "")) if p)
        self._proc = subprocess.Popen([sys.executable, "-m", "backend.simulation.monitors"], env=env,  # noqa: S603
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._closed = False
        self._send((svc.settings, svc.db.engine.url.render_as_string(hide_password=False), quiet_alerts))

    def submit(self, at: datetime, refresh: Refresh) -> None:
        if self._closed or self._proc.poll() is not None:  # it stopped early: say why now, not after the last day
            self._raise(self._result())
        self._send((at, refresh))

    def close(self) -> None:
        """Wait for every submitted run; raises :class:`MonitorProcessError` if one failed."""
        if self._closed:
            return
        self._send(None)
        result = self._result()
        self._closed = True
        self._proc.wait(timeout=30)
        if result[0] != "ok":
            self._raise(result)

    def stop(self) -> None:
        """The history stopped: end the process without waiting for the runs still queued."""
        self._closed = True
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait(timeout=30)

    def _send(self, obj: Any) -> None:
        assert self._proc.stdin is not None
        try:
            pickle.dump(obj, self._proc.stdin)
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self._raise(self._result())

    def _result(self) -> tuple[str, str, str]:
        assert self._proc.stdout is not None
        try:
            return pickle.load(self._proc.stdout)  # type: ignore[no-any-return]  # noqa: S301  # nosec B301 - our child's pipe
        except (EOFError, pickle.UnpicklingError):
            return "error", f"exited with code {self._proc.wait()}", "(its standard error has the details)"

    def _raise(self, result: tuple[str, str, str]) -> NoReturn:
        self.stop()
        raise MonitorProcessError(MSG_FAILED.format(why=result[1], tb=result[2]))


def _serve() -> None:
    """The second process: its own services on the parent's database, one run per job until ``None``; the result
    (runs done, or the error and its traceback) pickled on the original stdout (which nothing else writes to)."""
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print goes to stderr, never into the result
    jobs = sys.stdin.buffer
    try:
        from backend.platform.db.engine import Database, make_engine

        settings, url, quiet_alerts = pickle.load(jobs)  # noqa: S301  # nosec B301 - the parent's pipe
        if quiet_alerts:
            quiet_simulated_alerts()
        db = Database(make_engine(url))
        clock = FixedClock(datetime.fromtimestamp(0).astimezone())
        svc = build_services(settings, db=db, clock=clock)
        runs = 0
        with db.bulk_load():
            while (job := pickle.load(jobs)) is not None:  # noqa: S301  # nosec B301
                evaluate(svc, clock, *job)
                runs += 1
        db.dispose()
        result = ("ok", str(runs), "")
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which stops the history with it
        result = ("error", f"{type(exc).__name__}: {exc}", traceback.format_exc())
    pickle.dump(result, out)
    out.flush()


if __name__ == "__main__":
    _serve()
