"""The simulated history's progress record (backend/decisioning/preparation.py): what the console says while
`make run`'s history is written beside it. Written to be wrong about: a killed writer, a reused process id, a
torn or foreign file, a burst of days."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import date

import pytest

from backend.decisioning import HistoryProgress, ProgressFile, ProgressRecorder
from backend.decisioning.preparation import (
    DONE,
    FAILED,
    FINISHING,
    STOPPED,
    WRITING,
    process_alive,
    process_started,
)


def _recorder(tmp_path, **kw) -> ProgressRecorder:
    return ProgressRecorder(ProgressFile(tmp_path), first_day=date(2026, 6, 7), last_day=date(2026, 12, 6),
                            days=183, **kw)


def test_a_run_records_each_state_in_order(tmp_path):
    file = ProgressFile(tmp_path)
    assert file.read() is None  # nothing recorded: the pages say nothing
    rec = _recorder(tmp_path, every=0.0)
    first = file.read()
    assert first is not None and first.state == WRITING and first.pid == os.getpid() and first.day == 0
    assert "is being prepared: its writer is starting" in first.sentence()
    rec.day("2026-06-07", 1, 183)
    rec.day("2026-09-10", 96, 183)
    p = file.read()
    assert (p.state, p.day, p.days, p.through) == (WRITING, 96, 183, "2026-09-10")
    assert "day 96 of 183, through 10 September 2026" in p.sentence()
    assert "7 June 2026 to 6 December 2026" in p.sentence()
    rec.finishing()
    assert file.read().state == FINISHING and "outcomes" in file.read().sentence()
    rec.done("simulated history (...): 120,000 applications")
    done = file.read()
    assert done.state == DONE and not done.running and done.message.endswith("120,000 applications")


def test_days_are_written_at_most_once_a_second_but_the_last_one_always(tmp_path):
    rec = _recorder(tmp_path, every=3600.0)
    for d in range(1, 183):
        rec.day(f"day-{d}", d, 183)
    assert ProgressFile(tmp_path).read().day == 0  # throttled: one write an hour at most
    rec.day("2026-12-06", 183, 183)
    assert ProgressFile(tmp_path).read().day == 183  # the last day is never lost


def test_a_killed_writer_reads_as_stopped_not_as_running(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _recorder(tmp_path, pid=child.pid, every=0.0).day("2026-07-01", 25, 183)
        assert ProgressFile(tmp_path).read().state == WRITING  # alive: running
    finally:
        child.kill()
        child.wait()
    p = ProgressFile(tmp_path).read()
    assert p.state == STOPPED and not p.running
    assert "stopped at day 25 of 183, through 1 July 2026" in p.sentence()
    assert "make run" in p.sentence()


def test_a_reused_process_id_is_not_the_writer(tmp_path):
    """The record's process id now belongs to another process (this one, started at another time)."""
    _recorder(tmp_path)
    raw = json.loads((tmp_path / "history_status.json").read_text())
    raw["pid_started"] = (raw["pid_started"] or 0) + 12345
    (tmp_path / "history_status.json").write_text(json.dumps(raw))
    assert ProgressFile(tmp_path).read().state == STOPPED
    assert process_alive(os.getpid(), process_started(os.getpid()))
    assert not process_alive(os.getpid(), (process_started(os.getpid()) or 0) + 1)
    assert not process_alive(0) and not process_alive(-1)


@pytest.mark.parametrize("content", ["", "{", "[]", "null", '{"state": "writing"}', "\x00\xff", '{"pid": "x"}'])
def test_a_torn_or_foreign_file_reads_as_no_record(tmp_path, content):
    (tmp_path / "history_status.json").write_text(content, encoding="latin-1")
    assert ProgressFile(tmp_path).read() is None  # a page never fails over it


@pytest.mark.parametrize(("field", "value"), [("pid", "x"), ("pid", None), ("pid", 1.5), ("day", "96"),
                                              ("days", None), ("state", "paused"), ("state", 3), ("through", 20),
                                              ("pid_started", "soon"), ("pid", True)])
def test_a_record_with_a_field_of_the_wrong_type_reads_as_no_record(tmp_path, field, value):
    _recorder(tmp_path)
    raw = json.loads((tmp_path / "history_status.json").read_text())
    raw[field] = value
    (tmp_path / "history_status.json").write_text(json.dumps(raw))
    assert ProgressFile(tmp_path).read() is None


def test_a_failure_is_recorded_with_its_reason_and_log(tmp_path):
    rec = _recorder(tmp_path, log=tmp_path / "history.log")
    rec.day("2026-08-01", 56, 183)
    rec.failed("OperationalError: database or disk is full" + "x" * 2000)
    p = ProgressFile(tmp_path).read()
    assert p.state == FAILED and len(p.message) == 500
    assert "failed at day 56 of 183: OperationalError: database or disk is full" in p.sentence()
    assert str(tmp_path / "history.log") in p.sentence()


def test_the_file_is_replaced_whole(tmp_path):
    """A reader never sees half a record: the writer renames a complete temporary file over it."""
    rec = _recorder(tmp_path, every=0.0)
    for d in range(1, 50):
        rec.day(f"2026-06-{d % 28 + 1:02d}", d, 183)
        assert isinstance(ProgressFile(tmp_path).read(), HistoryProgress)
    assert [f.name for f in tmp_path.iterdir()] == ["history_status.json"]  # no temporary file left


def test_a_killed_child_not_yet_reaped_is_not_the_writer(tmp_path):
    """A zombie (killed, its parent has not waited for it yet) still answers signals: it writes nothing."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _recorder(tmp_path, pid=child.pid, every=0.0).day("2026-07-01", 25, 183)
        child.kill()
        deadline = time.monotonic() + 10
        while process_alive(child.pid, process_started(child.pid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ProgressFile(tmp_path).read().state == STOPPED
        assert child.poll() is not None  # (reaped only now)
    finally:
        child.kill()
        child.wait()
