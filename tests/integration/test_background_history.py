"""`make run`'s history beside the console (`creditrisk demo --history --background`): today's applications come
first (in the arm of the phase in force now), the history is written by a process of its own that records its
progress, a second start does not start a second writer, a killed writer reads as stopped (never as running),
and the next start finishes it from where it stopped, nothing written twice. A real process, killed for real."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from backend.cli import app
from backend.container import build_services
from backend.container.settings import load_settings
from backend.decisioning import ProgressFile
from backend.decisioning.preparation import DONE, RUNNING, STOPPED
from backend.platform.db.tables_book import Application

VOLUME = 30  # per month: the behaviour, not the story (tests/integration/test_operations_sim.py has the story)
WAIT_S = 300  # a loaded CI machine; a run here takes ~30 s


def _wait(file: ProgressFile, until, what: str):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        p = file.read()
        if p is not None and until(p):
            return p
        time.sleep(0.2)
    log = Path(p.log).read_text() if p is not None and p.log and Path(p.log).exists() else "(no log)"
    raise AssertionError(f"no {what} within {WAIT_S} s; last record {p}; log:\n{log[-3000:]}")


def _start() -> str:
    result = CliRunner().invoke(app, ["demo", "--history", "--background", "--volume", str(VOLUME), "--rows", "3"])
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def _stop_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)  # the writer and its monitor process (a session of their own)
    except ProcessLookupError:
        pass


@pytest.fixture
def data_dir(tmp_path, monkeypatch, model_registry) -> Path:
    shutil.copytree(model_registry, tmp_path / "models")
    monkeypatch.setenv("CREDITRISK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CREDITRISK_MODEL__REGISTRY_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("CREDITRISK_AUTH__BCRYPT_ROUNDS", "4")
    monkeypatch.delenv("CREDITRISK_DATABASE__URL", raising=False)
    return tmp_path


def test_history_beside_the_console_stops_resumes_and_finishes(data_dir):
    file = ProgressFile(data_dir)
    out = _start()
    assert "simulated applications: 3 added" in out and "being written in the background by process" in out
    first = file.read()
    assert first is not None and first.running, first  # recorded before the new process has even started up
    pids = [first.pid]
    try:
        # today's applications were scored before any day of the history, in the arm of the phase in force now
        svc = build_services(load_settings())
        with svc.db.read() as s:
            today = s.execute(select(Application.phase, Application.arm)).all()
        assert len(today) == 3 and all(phase and arm for phase, arm in today), today
        assert {phase for phase, _ in today} == {svc.rollout.active().phase} - {"default"}
        # the incident's retrained model was promoted and rolled back before the command returned (before the
        # console opens): it never serves the console while the history is written
        champion_before = svc.models.registry().resolve("champion")
        actions = [e["action"] for e in svc.models.registry().aliases()["events"]]
        assert actions[-2:] == ["promote", "rollback"], actions
        assert "rolled back" in out

        again = _start()  # a second `make run` while it writes: no second writer
        assert f"already being written by process {first.pid}" in again
        assert file.read().pid == first.pid

        writing = _wait(file, lambda p: p.day >= 20, "days written")
        assert writing.running and writing.pid == first.pid
        _stop_group(first.pid)
        stopped = _wait(file, lambda p: p.state not in RUNNING, "stop")
        assert stopped.state == STOPPED and stopped.day >= 20 and "stopped at day" in stopped.sentence()
        with svc.db.read() as s:
            kept = s.execute(select(func.count()).select_from(Application)).scalar_one()
        assert kept > 3  # the days written before the kill are kept

        resumed = _start()
        assert "being written in the background" in resumed
        pids.append(file.read().pid)
        assert pids[1] != pids[0]
        done = _wait(file, lambda p: p.state not in RUNNING, "finished history")
        assert done.state == DONE, done
        assert "days already present" in (done.message or "") and "simulated history (" in done.message
        with svc.db.read() as s:
            ids = s.execute(select(func.count(), func.count(func.distinct(Application.external_id)))
                            .select_from(Application)).one()
        assert ids[0] == ids[1] and ids[0] > kept  # finished, nothing written twice
        assert svc.models.registry().resolve("champion") == champion_before  # the writer promoted nothing more
        assert [e["action"] for e in svc.models.registry().aliases()["events"]][-2:] == ["promote", "rollback"]
        finished = _start()  # a third `make run` the same day: the history is complete, nothing is started
        assert "the simulated history is complete" in finished and file.read() == done
        (data_dir / "creditrisk.db").rename(data_dir / "elsewhere.db")  # the book replaced: its history is not there
        for suffix in ("-wal", "-shm"):
            (data_dir / f"creditrisk.db{suffix}").unlink(missing_ok=True)
        fresh = _start()
        assert "being written in the background" in fresh
        pids.append(file.read().pid)
        assert _wait(file, lambda p: p.state not in RUNNING, "history in the new book").state == DONE
        log = (data_dir / "history.log").read_text()
        assert "Traceback" not in log and "simulated history (" in log
        svc.close()
    finally:
        for pid in pids:
            _stop_group(pid)


def test_background_without_history_is_refused_before_anything_is_written(data_dir):
    result = CliRunner().invoke(app, ["demo", "--background", "--rows", "3"])
    assert result.exit_code != 0 and "use it with --history" in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert not (data_dir / "creditrisk.db").exists() and not (data_dir / "history_status.json").exists()
