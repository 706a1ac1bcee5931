"""`creditrisk demo --history --background` (what `make run` does): the simulated history written by a process
of its own while the console opens.

The process is ``creditrisk seed-demo`` (resumable by day: what a stopped run wrote is kept, the rest is written
by the next), in a session of its own so that stopping the console (Ctrl-C) does not stop it half-way; its output
goes to ``<data_dir>/history.log`` and its progress to ``<data_dir>/history_status.json``
(:mod:`backend.decisioning.preparation`), which the console's pages read. One runs at a time: while one is
writing, another start only reports how far it has got.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from backend.decisioning import ProgressFile, ProgressRecorder
from backend.simulation.config import SimConfig

LOG_FILE = "history.log"
#: set for the process :func:`start_history` starts: where its output goes (its progress record names it)
LOG_ENV = "CREDITRISK_HISTORY_LOG"


def start_history(data_dir: Path, cfg: SimConfig, *, book_has_history: bool = True) -> str:
    """Start the history's process (``cfg``: its rolling defaults at ``cfg.volume`` a month) unless one is
    already writing, or the one recorded finished the same history (``book_has_history``: the book holds it,
    e.g. the database was not replaced since); what to tell the person who ran `make run`."""
    file = ProgressFile(data_dir)
    progress = file.read()
    if progress is not None and progress.running:
        return (f"the simulated history is already being written by process {progress.pid} (day {progress.day:,} "
                f"of {progress.days:,}); the console's pages say how far it has got")
    last_day = (cfg.end - timedelta(days=1)).date().isoformat()
    if progress is not None and progress.complete and progress.last_day == last_day and book_has_history:
        return f"the simulated history is complete ({progress.first_day} to {progress.last_day})"
    log = Path(data_dir) / LOG_FILE
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, LOG_ENV: str(log.resolve())}
    with open(log, "ab") as out:
        proc = subprocess.Popen(  # noqa: S603 - our own CLI, by the interpreter running this one
            [sys.executable, "-m", "backend", "seed-demo", "--volume", str(cfg.volume)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    # recorded now, not when the new process has started up (seconds): the console and a second start know
    ProgressRecorder(file, first_day=cfg.start.date(), last_day=(cfg.end - timedelta(days=1)).date(),
                     days=(cfg.end - cfg.start).days, log=log, pid=proc.pid)
    return (f"the simulated history (six months up to yesterday) is being written in the background by process "
            f"{proc.pid} (a few minutes on 2 cores; log: {log}). The console opens meanwhile: its pages say how far "
            "the history has got, and their figures grow until it is complete.")
