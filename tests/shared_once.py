"""Build an expensive test fixture (a trained model, a simulated history) once per test run, not once per
pytest-xdist worker.

``make test`` runs files in parallel workers; each worker has its own pytest session, so a
``scope="session"`` fixture would be built by every worker. :func:`once` builds it in a folder shared by
all workers of the run (the parent of the workers' base temp folders), under an exclusive file lock; the
first worker builds, the others wait and reuse. Users copy what they change, as before.
``tests/`` is on ``sys.path`` (see ``proc_helpers``), so any conftest may import this.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

RUN_ENV = "CRT_TEST_RUN"  # not CREDITRISK_*: tests clear those


def run_id() -> str:
    """One id per test run, the same in every worker (set by the controller before workers start)."""
    value = os.environ.get(RUN_ENV)
    if not value:
        value = os.environ[RUN_ENV] = uuid.uuid4().hex[:8]
    return value


def shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextmanager
def _exclusive(lock: Path) -> Iterator[None]:
    with open(lock, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """The folder ``name`` built by ``build(folder)`` exactly once for the whole run (all workers)."""
    root = shared_dir(tmp_path_factory) / f"shared-{name}"
    built = root.parent / f"shared-{name}.built"  # beside the folder: users copy the folder whole
    with _exclusive(root.parent / f"shared-{name}.lock"):
        if not built.exists():
            if root.exists():
                shutil.rmtree(root)  # a build that failed half-way in another worker
            root.mkdir(parents=True)
            build(root)
            built.write_text(os.environ.get("PYTEST_XDIST_WORKER", "main"))
    return root
