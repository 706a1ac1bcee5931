"""A private copy of a built data dir for the benches that click through it (decision_open, run_checks, fairness_shares); :func:`copied_services` builds the services on it.

:func:`copied_book` copies ``creditrisk.db`` through SQLite's backup API (a consistent copy, the WAL included) into a
temporary data dir, links the install's keys into it and points ``CREDITRISK_DATA_DIR`` and
``CREDITRISK_MODEL__REGISTRY_DIR`` at it and at the registry: what a bench writes (refreshes, indexes it drops) never
touches the real data dir. It prints the machine's load and the copy's size and time, for the bench's report.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def book_arguments(ap: argparse.ArgumentParser) -> None:
    """``--data-dir`` and ``--registry-dir`` of the built data dir a bench copies (default: the environment's,
    else ``var`` and ``models``)."""
    ap.add_argument("--data-dir", type=Path, default=Path(os.environ.get("CREDITRISK_DATA_DIR", "var")))
    ap.add_argument("--registry-dir", type=Path,
                    default=Path(os.environ.get("CREDITRISK_MODEL__REGISTRY_DIR", "models")))


@contextmanager
def copied_book(data_dir: Path, registry_dir: Path) -> Iterator[Path]:
    src = data_dir / "creditrisk.db"
    print(f"load: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        with sqlite3.connect(f"file:{src}?mode=ro", uri=True) as a, sqlite3.connect(Path(tmp) / "creditrisk.db") as b:
            a.backup(b)
        print(f"copied {src} ({src.stat().st_size / 1e6:,.0f} MB) in {time.perf_counter() - t0:.1f} s")
        for name in ("secrets", "cookie_key"):
            if (data_dir / name).exists():
                os.symlink((data_dir / name).resolve(), Path(tmp) / name)
        os.environ["CREDITRISK_DATA_DIR"] = tmp
        os.environ["CREDITRISK_MODEL__REGISTRY_DIR"] = str(registry_dir.resolve())
        yield Path(tmp)


@contextmanager
def copied_services(data_dir: Path, registry_dir: Path) -> Iterator[Any]:
    """The product's services on a :func:`copied_book` (the schema as the copy has it: nothing migrated)."""
    with copied_book(data_dir, registry_dir):
        from backend.container import build_services, load_settings

        yield build_services(load_settings(), migrate=False)
