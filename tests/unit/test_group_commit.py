"""Group commit (backend/platform/db/group_commit.py): concurrent jobs share batches, each caller gets its own
result or its own error, and a failed batch never fails the jobs that would have succeeded alone."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

import pytest

from backend.platform.db.group_commit import BatchWorker, GroupCommit

T = TypeVar("T")


class Bad(ValueError):
    pass


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on a thread of its own: an earlier test in the same process (the browser
    tests' sync Playwright) may leave an event loop marked running on the main thread."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result(10)


def _until(cond: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 5
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


class Recorder:
    """A ``run_batch`` that is all-or-nothing: one bad job fails the whole batch."""

    def __init__(self, hold: threading.Event | None = None) -> None:
        self.batches: list[list[int]] = []
        self.hold = hold
        self.lock = threading.Lock()

    def __call__(self, jobs: Sequence[int]) -> list[int]:
        if self.hold is not None:
            self.hold.wait(5)
        if any(j < 0 for j in jobs):
            raise Bad(f"bad job among {sorted(jobs)}")
        with self.lock:
            self.batches.append(list(jobs))
        return [j * 10 for j in jobs]


def test_waiting_jobs_share_the_next_batch_and_each_gets_its_own_result():
    hold = threading.Event()
    run = Recorder(hold)
    gc = GroupCommit(run)
    first = threading.Thread(target=gc.submit, args=(1,))
    first.start()  # the leader, held inside its batch while the others queue up
    _until(lambda: gc._busy)
    rest = list(range(2, 12))
    threads = {j: threading.Thread(target=lambda j=j: results.__setitem__(j, gc.submit(j))) for j in rest}
    results: dict[int, int] = {}
    for t in threads.values():
        t.start()
    _until(lambda: len(gc._queue) == len(rest))
    hold.set()
    first.join(5)
    for t in threads.values():
        t.join(5)
    assert results == {j: j * 10 for j in rest}
    assert run.batches[0] == [1] and sorted(run.batches[1]) == rest  # ten callers, one transaction
    assert gc.batches == 2 and gc.jobs == 11


def test_a_bad_job_fails_alone_and_the_others_are_written_once():
    hold = threading.Event()
    run = Recorder(hold)
    gc = GroupCommit(run)
    leader = threading.Thread(target=gc.submit, args=(100,))
    leader.start()
    _until(lambda: gc._busy)
    out: dict[int, object] = {}

    def one(j: int) -> None:
        try:
            out[j] = gc.submit(j)
        except Bad as exc:
            out[j] = exc

    threads = [threading.Thread(target=one, args=(j,)) for j in (1, -2, 3)]
    for t in threads:
        t.start()
    _until(lambda: len(gc._queue) == 3)
    hold.set()
    leader.join(5)
    for t in threads:
        t.join(5)
    assert out[1] == 10 and out[3] == 30 and isinstance(out[-2], Bad) and "[-2]" in str(out[-2])
    written = [j for b in run.batches for j in b]
    assert sorted(written) == [1, 3, 100]  # nothing written twice, the bad one never


def test_batch_worker_settles_each_caller_and_isolates_errors():
    seen: list[list[int]] = []

    def run(jobs: Sequence[int]) -> list[int | Exception]:
        seen.append(list(jobs))
        return [Bad("negative") if j < 0 else j + 1 for j in jobs]

    worker: BatchWorker[int, int] = BatchWorker(run, name="test-worker")

    async def main() -> list[object]:
        return await asyncio.gather(*(worker.submit(j) for j in (1, 2, -3, 4)), return_exceptions=True)

    try:
        out = _run(main())
    finally:
        worker.close()
    assert out[:2] == [2, 3] and isinstance(out[2], Bad) and out[3] == 5
    assert sorted(j for b in seen for j in b) == [-3, 1, 2, 4] and worker.jobs == 4
    with pytest.raises(RuntimeError, match="closed"):
        _run(worker.submit(5))


def test_batch_worker_fails_the_whole_batch_when_run_batch_raises():
    def run(jobs: Sequence[int]) -> list[int]:
        raise Bad("the database is down")

    worker: BatchWorker[int, int] = BatchWorker(run)

    async def main() -> list[object]:
        return await asyncio.gather(*(worker.submit(j) for j in (1, 2)), return_exceptions=True)

    try:
        out = _run(main())
    finally:
        worker.close()
    assert all(isinstance(o, Bad) for o in out)
