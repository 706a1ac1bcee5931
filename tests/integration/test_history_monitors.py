"""The history's weekly monitor runs judge the book as of their Monday, wherever and whenever they run.

``creditrisk demo --history`` runs them in a second process while the day loop writes the following
weeks (``backend/simulation/monitors.py``). That is only sound if a run reads nothing after its time:
here the same history is written three ways: each run in-line at its Monday; every run *after the
whole book is written* (the worst a second process can lag); and in the second process. The alerts
(opened, updated, resolved, with their values and times), the stored monitoring summaries and the
monitors' audit entries must be identical, on both databases. A failing run stops the history with
the worker's traceback.
"""

from __future__ import annotations

import dataclasses
import math
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from backend.container import Services, build_services
from backend.container.settings import load_settings
from backend.platform.clock import FixedClock
from backend.platform.db.engine import Database
from backend.platform.db.tables_governance import AlertRow, AuditLog, MonitorSnapshot
from backend.simulation.monitors import MonitorProcessError, ProcessMonitors, Refresh, evaluate
from backend.simulation.operations import OperationsSimulator, SimConfig

# three months, the incident in the second (its drift and accuracy alerts open and resolve); 300 a month opens
# and resolves the same kinds of alert as 500 (fairness, drift, cost); in CI it saved little (SQLite 41 -> 35-38 s,
# PostgreSQL 52 -> 53-66 s on a host whose speed moved): the weekly monitor runs, not the volume, take the time
CFG = SimConfig(volume=300, months=3, retrain=False, monitoring=True, incident_month=1,
                start=datetime(2025, 8, 1, tzinfo=UTC))
IDS = ("id", "entity_id", "alert_id")
# what a stored period keeps to skip reading it again (its fingerprint: the book's write tokens when it was last
# read, or a month's token; fairness's read cells, in the order the rows came): when and how it was read, not what it shows;
# every figure computed from the period is compared
WHEN = ("fingerprint", "read", "token")
# DRIFT_READ_AT: a drift period is read again when a month it overlaps has new applications or predictions (its
# scored token, migration 0022). A run that lags behind the book sees those months' final tokens at once and
# reads a period once; the in-line runs read it again each Monday while the month is still being written. The
# figures are the same (each run reads only up to its Monday: compared below); when the period was last read is
# not. (Before 0022 the outcome import touched every month and made the last run read every period again,
# which hid this.)
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _services(root: Path, db: Database, registry: Path) -> Services:
    shutil.copytree(registry, root / "models")
    s = load_settings(data_dir=root, auth={"bcrypt_rounds": 4}, model={"registry_dir": root / "models"})
    return build_services(s, db=db)


class AfterTheBook:
    """Every weekly run held back until the day loop has written the whole history (then run in order, with
    services of their own, as the second process has)."""

    def __init__(self, svc: Services) -> None:
        self.clock = FixedClock(CFG.start)
        self.svc = build_services(svc.settings, db=svc.db, clock=self.clock)
        self.jobs: list[tuple[datetime, Refresh]] = []

    def submit(self, at: datetime, refresh: Refresh) -> None:
        self.jobs.append((at, refresh))

    def close(self) -> None:
        for at, refresh in self.jobs:
            evaluate(self.svc, self.clock, at, refresh)

    def stop(self) -> None:
        self.jobs.clear()


def _plain(value: Any, drop: tuple[str, ...] = IDS) -> Any:
    """``value`` without identifiers (new per run), times as text, lists in one order, and without the wall-clock
    time of each notification."""
    if isinstance(value, dict):
        return {k: _plain(v, (*IDS, "at") if k == "notifications" else IDS) for k, v in value.items()
                if k not in drop and k not in WHEN}
    if isinstance(value, list):
        return sorted((_plain(v, drop) for v in value), key=_rough)  # some are ordered by ids, new in every database
    if isinstance(value, str):
        return UUID.sub("<id>", value)  # the simulated officers' user ids are new in every database
    return value.isoformat() if isinstance(value, datetime) else value


def _monitoring(db: Database) -> dict[str, list[Any]]:
    """What the monitors wrote: alerts, summaries, and the audit entries of the monitor."""
    def rows(model: Any, *where: Any) -> list[Any]:
        cols = [c for c in model.__table__.columns if c.name not in ("id", "seq", "entity_id", "payload_hash",
                                                                       "prev_hash", "row_hash")]
        with db.read() as s:
            out = [_plain({c.name: v for c, v in zip(cols, r, strict=True)})
                   for r in s.execute(select(*cols).where(*where)).all()]
        for row in out:  # when a drift period was last read: see DRIFT_READ_AT
            if row.get("kind") == "drift" and row.get("computed_at") is not None:
                row["computed_at"] = "read at or before its run"
        return sorted(out, key=repr)

    return {"alerts": rows(AlertRow), "snapshots": rows(MonitorSnapshot),
            "audit": rows(AuditLog, AuditLog.actor == "monitor")}


def _rough(value: Any) -> str:
    """A sort key that the last digits of a float do not change."""
    return re.sub(r"\d\.\d{4,}(e-?\d+)?", lambda m: f"{float(m.group()):.3g}", repr(value))


def _same(got: Any, want: Any) -> bool:
    """Equal, floats to a relative 1e-5 (the cost of a request includes measured compute time: its 7th digit
    differs from run to run)."""
    if isinstance(got, float) and isinstance(want, float):
        return math.isclose(got, want, rel_tol=1e-5, abs_tol=1e-12)
    if isinstance(got, dict) and isinstance(want, dict):
        return got.keys() == want.keys() and all(_same(got[k], want[k]) for k in got)
    if isinstance(got, list) and isinstance(want, list):
        return len(got) == len(want) and all(_same(g, w) for g, w in zip(got, want, strict=True))
    return bool(got == want)


def _diff(got: Any, want: Any, path: str = "") -> str:
    """Where ``got`` first differs from ``want`` (the lists are long)."""
    if isinstance(got, dict) and isinstance(want, dict):
        for k in sorted(set(got) | set(want), key=str):
            if not _same(got.get(k), want.get(k)):
                return _diff(got.get(k), want.get(k), f"{path}.{k}")
    elif isinstance(got, list) and isinstance(want, list) and len(got) == len(want):
        for k, (g, w) in enumerate(zip(got, want, strict=True)):
            if not _same(g, w):
                ctx = {n: g.get(n) for n in ("kind", "granularity", "period", "rule", "action")} if isinstance(g, dict) else ""
                return _diff(g, w, f"{path}[{k}]{ctx or ''}")
    return f"{path}: {got!r} != {want!r}"[:600]


def _history(tmp_path: Path, name: str, db: Database, registry: Path, how: str) -> dict[str, list[Any]]:
    root = tmp_path / name
    root.mkdir()
    svc = _services(root, db, registry)
    if how == "after the book":
        sim = OperationsSimulator(svc, CFG, progress=None, monitors=AfterTheBook(svc))
    else:
        cfg = CFG if how == "in-line" else dataclasses.replace(CFG, monitor_process=True)
        sim = OperationsSimulator(svc, cfg, progress=None)
    report = sim.run()
    assert report.monitor_runs >= 12  # every Monday of three months, and the run after the outcomes
    return _monitoring(db)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_weekly_runs_read_only_their_past(tmp_path: Path, kind: str, another_database: Any, model_registry: Path):
    inline = _history(tmp_path, "inline", another_database(kind), model_registry, "in-line")
    assert inline["alerts"] and inline["snapshots"] and inline["audit"], "the history should open alerts"
    assert any(a["status"] == "resolved" for a in inline["alerts"])
    for how in ("after the book", "second process"):
        got = _history(tmp_path, how.replace(" ", "_"), another_database(kind), model_registry, how)
        for part in ("alerts", "snapshots", "audit"):
            assert _same(got[part], inline[part]), (
                f"{how}: the {part} differ from the in-line runs: {_diff(got[part], inline[part])}")


def test_a_failing_run_stops_the_history_with_its_traceback(tmp_path: Path, sqlite_database: Database,
                                                             model_registry: Path):
    svc = _services(tmp_path, sqlite_database, model_registry)
    runs = ProcessMonitors(svc)
    runs.submit(datetime(2025, 8, 4, 6, tzinfo=UTC), ("drift",))  # fine: nothing to read yet
    runs.submit(datetime(2025, 8, 11, 6), ("drift",))  # a time without its zone: the alert service refuses it
    with pytest.raises(MonitorProcessError) as err:
        runs.close()
    assert "AlertError" in str(err.value) and "Traceback" in str(err.value)
    assert "running again resumes" in str(err.value)
    with pytest.raises(MonitorProcessError):  # it stays stopped: a later run is refused at once
        runs.submit(datetime(2025, 8, 18, 6, tzinfo=UTC), ("drift",))
