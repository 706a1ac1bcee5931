"""The console's own alert schedule: the rules are judged every ``check_every_minutes`` in the console
process (not only by cron or a button), and the monitoring summaries they read are recomputed every
``refresh_every_hours`` (``CREDITRISK_MONITORING__CHECK_EVERY_MINUTES``, ``__REFRESH_EVERY_HOURS``; 0 turns
either off). One daemon thread per console process; a failed run is logged and the next one tries again."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

log = logging.getLogger(__name__)


class AlertSchedule:
    def __init__(self, alerts: Callable[[], Any], now: Callable[[], datetime], *, check_every: timedelta,
                 refresh_every: timedelta | None, hold: Callable[[], bool] | None = None) -> None:
        """``hold``: while it answers True a scheduled run is skipped (the console's: while the simulated history
        is being written, whose own weekly runs judge the rules at their historical times and whose last run
        judges them as of today: a run in between would judge a half-written book)."""
        self.alerts, self.now, self.hold = alerts, now, hold
        self.check_every, self.refresh_every = check_every, refresh_every
        self.last_refresh: datetime | None = None
        self.runs = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> Any:
        """One scheduled run: a full refresh when it is due (then the rules), else the rules alone."""
        now = self.now()
        due = self.refresh_every is not None and (self.last_refresh is None or now - self.last_refresh >= self.refresh_every)
        report = self.alerts().evaluate(refresh=due)
        if due:
            self.last_refresh = now
        self.runs += 1
        return report

    def _loop(self) -> None:
        while not self._stop.wait(self.check_every.total_seconds()):
            try:
                if self.hold is not None and self.hold():
                    log.info("the scheduled alert check waits: the simulated history is being written")
                    continue
                self.run_once()
            except Exception:  # noqa: BLE001 - a schedule must outlive one bad run
                log.exception("the scheduled alert check failed; the next one tries again")

    def start(self) -> AlertSchedule:
        """Start the thread (the first run after one interval: the console's first page is not slowed)."""
        if self._thread is None and self.check_every.total_seconds() > 0:
            self.last_refresh = self.now()  # the first full refresh comes one refresh period after start
            self._thread = threading.Thread(target=self._loop, name="alert-schedule", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
