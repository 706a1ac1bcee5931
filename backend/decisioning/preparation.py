"""How far the simulated history has been written: ``<data_dir>/history_status.json``.

`make run` opens the console as soon as the demo users, the model, the rollout phases and today's example
applications exist, and writes the six-month simulated history in a process of its own beside it
(``creditrisk seed-demo``, resumable by day). That process records its progress here; every page that shows
book data reads it (:meth:`backend.decisioning.BookService.history_progress`) and says, while the history is
still being written, that its figures cover only the days written so far, and, when the process ended before
finishing, how to finish it. A foreground ``seed-demo`` records its progress too.

The file is written atomically (a temporary file renamed over it), at most about once a second. A reader
treats a record whose process is gone as *stopped*, whatever the record says, so a killed writer never
leaves the console claiming that work is under way.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

STATUS_FILE = "history_status.json"
WRITING, FINISHING, DONE, STOPPED, FAILED = "writing", "finishing", "done", "stopped", "failed"
RUNNING = (WRITING, FINISHING)


@dataclass(frozen=True)
class HistoryProgress:
    """One record of the history's preparation (see the module docstring)."""

    state: str
    pid: int
    pid_started: int | None  # the process's start time in clock ticks (/proc): a reused process id is not it
    started_at: str  # ISO time, UTC
    updated_at: str
    first_day: str  # YYYY-MM-DD: the history's first and last day
    last_day: str
    days: int  # days in the history
    day: int = 0  # days handled so far (written, or found already written)
    through: str | None = None  # the last day handled
    log: str | None = None  # where the process writes its output
    message: str | None = None  # the summary when done, the error when failed

    @property
    def running(self) -> bool:
        return self.state in RUNNING

    @property
    def complete(self) -> bool:
        return self.state == DONE

    def sentence(self) -> str:
        """What a page says about the history (the console shows it above the page's figures)."""
        through = f", through {_day(self.through)}" if self.through else ""
        span = f"{_day(self.first_day)} to {_day(self.last_day)}"
        if self.state == WRITING and not self.day:
            return (f"The simulated history ({span}) is being prepared: its writer is starting. Figures on this "
                    "page change as its days are written (a few minutes on a 2-core machine); reload the page to "
                    "see more.")
        if self.state == WRITING:
            return (f"The simulated history ({span}) is still being written: day {self.day:,} of {self.days:,}"
                    f"{through}. Figures on this page cover only what is written so far and change until it "
                    "finishes (a few minutes on a 2-core machine); reload the page to see more.")
        if self.state == FINISHING:
            return (f"The simulated history ({span}) has all its days; its feedback, loan outcomes, incident "
                    "and last monitor run are being written. Figures on this page change until it finishes; "
                    "reload the page in a minute.")
        if self.state == STOPPED:
            return (f"The simulated history ({span}) stopped at day {self.day:,} of {self.days:,}{through}: "
                    "the process writing it ended before it finished. Figures on this page cover only what was "
                    "written. `make run` (or `creditrisk seed-demo`) finishes it, keeping the days written.")
        if self.state == FAILED:
            where = f" (details: {self.log})" if self.log else ""
            return (f"Writing the simulated history ({span}) failed at day {self.day:,} of {self.days:,}: "
                    f"{self.message or 'no reason recorded'}{where}. Figures on this page cover only what "
                    "was written; `creditrisk seed-demo` tries again, keeping the days written.")
        return f"The simulated history ({span}) is complete."


class ProgressFile:
    """Reads and writes the record in ``data_dir`` (:data:`STATUS_FILE`)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / STATUS_FILE

    def read(self) -> HistoryProgress | None:
        """The record, or None when there is none (or it cannot be read: a page never fails over it). A
        running record whose process is gone reads as :data:`STOPPED`."""
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            fields = {k: raw[k] for k in HistoryProgress.__dataclass_fields__ if k in raw}
            progress = HistoryProgress(**fields)
        except (OSError, ValueError, TypeError, KeyError):
            return None
        if not _well_formed(progress):
            return None
        if progress.running and not process_alive(progress.pid, progress.pid_started):
            return replace(progress, state=STOPPED)
        return progress

    def write(self, progress: HistoryProgress) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(asdict(progress), indent=1), encoding="utf-8")
        os.replace(tmp, self.path)


class ProgressRecorder:
    """What a history run calls as it goes: :meth:`day` after each day (written at most every ``every``
    seconds, and always for the last day), :meth:`finishing`, :meth:`done` and :meth:`failed`."""

    def __init__(self, file: ProgressFile, *, first_day: date, last_day: date, days: int,
                 log: Path | None = None, every: float = 1.0, pid: int | None = None) -> None:
        """``pid``: the process writing the history (default: this one; the parent that starts it records it
        at once, so the console knows before the new process has started up)."""
        self.file, self.every = file, every
        now = _now()
        pid = os.getpid() if pid is None else pid
        self.progress = HistoryProgress(state=WRITING, pid=pid, pid_started=process_started(pid),
                                        started_at=now, updated_at=now,
                                        first_day=first_day.isoformat(), last_day=last_day.isoformat(),
                                        days=days, log=str(log) if log else None)
        self._last = 0.0
        self._save()

    def day(self, through: str, done: int, total: int) -> None:
        self.progress = replace(self.progress, day=done, days=total, through=through)
        if done >= total or time.monotonic() - self._last >= self.every:
            self._save()

    def finishing(self) -> None:
        self._set(FINISHING)

    def done(self, summary: str) -> None:
        self._set(DONE, message=summary)

    def failed(self, error: str) -> None:
        self._set(FAILED, message=error[:500])

    def _set(self, state: str, **extra: Any) -> None:
        self.progress = replace(self.progress, state=state, **extra)
        self._save()

    def _save(self) -> None:
        self.progress = replace(self.progress, updated_at=_now())
        self.file.write(self.progress)
        self._last = time.monotonic()


def process_alive(pid: int, started: int | None = None) -> bool:
    """Whether process ``pid`` runs, and (where ``/proc`` tells) is the one that started at ``started``."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        pass
    if started is None:
        return True
    stat = _stat(pid)
    if stat is None:  # gone since the signal check, or no /proc here (then the signal check is all there is)
        return not Path("/proc/self").exists()
    state, now = stat
    return state not in ("Z", "X") and now == started  # a zombie answers signals but writes nothing


def process_started(pid: int) -> int | None:
    """Process ``pid``'s start time in clock ticks since boot (``/proc/<pid>/stat`` field 22), or None."""
    stat = _stat(pid)
    return stat[1] if stat is not None else None


def _stat(pid: int) -> tuple[str, int] | None:
    """Process ``pid``'s state letter and start time from ``/proc/<pid>/stat``, or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()  # (the name may hold spaces)
        return fields[0], int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def _well_formed(p: HistoryProgress) -> bool:
    """Every field of the type the writer gives it (a hand-edited or foreign file is no record)."""
    ints = (p.pid, p.day, p.days) + (() if p.pid_started is None else (p.pid_started,))
    texts = (p.state, p.started_at, p.updated_at, p.first_day, p.last_day)
    optional = (p.through, p.log, p.message)
    return (all(type(v) is int for v in ints) and all(isinstance(v, str) for v in texts)
            and all(v is None or isinstance(v, str) for v in optional)
            and p.state in (*RUNNING, DONE, STOPPED, FAILED))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _day(iso: str) -> str:
    try:
        d = date.fromisoformat(iso[:10])
    except ValueError:
        return iso
    return f"{d.day} {d:%B %Y}"
