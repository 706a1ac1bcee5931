"""`make run` output: the simulated history's alerts are stored, not printed as raw JSON lines (issue 20).

With no logging configured, Python's last-resort handler printed every opened alert of the replayed months
(``{"alert_event": ...}``) into the middle of `seed-demo`'s progress bar. A deployment that configures logging
still receives them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from backend.platform.adapters.notify_log import LOGGER_NAME, LogNotifier
from backend.simulation.monitors import quiet_simulated_alerts

OPENED = {"event": "opened", "label": "Lowest disparate impact", "message": "0.72 is below 0.80"}


@pytest.fixture
def bare_logging(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Call it in the test body: no handler anywhere, as in a plain `creditrisk` process (pytest adds its own
    capture handler to the root logger when the test body starts, after the fixtures)."""
    logger = logging.getLogger(LOGGER_NAME)
    monkeypatch.setattr(logger, "handlers", [])
    return lambda: monkeypatch.setattr(logging.getLogger(), "handlers", [])


def test_without_logging_configured_the_replayed_alerts_print_nothing(bare_logging, capsys) -> None:
    bare_logging()
    LogNotifier().send(OPENED)
    assert "alert_event" in capsys.readouterr().err  # the noise that `make run` showed
    quiet_simulated_alerts()
    assert LogNotifier().send(OPENED)["ok"]
    assert capsys.readouterr().err == ""


def test_a_configured_log_still_receives_them(bare_logging, monkeypatch) -> None:
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    bare_logging()
    monkeypatch.setattr(logging.getLogger(), "handlers", [Keep()])
    quiet_simulated_alerts()
    LogNotifier().send(OPENED)
    assert seen and "alert_event" in seen[0]
