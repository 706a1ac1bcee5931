"""Group commit: concurrent writers share one transaction instead of queueing for one each.

Under load, every request that scores one application must write it (application, prediction, audit
row) before it answers. One transaction per request makes the commit, the audit chain's lock and,
on SQLite, the single write lock the bottleneck. :class:`GroupCommit` lets the threads that arrive
while a transaction is being written wait for it and then go together in the next one:

* ``submit(job)`` from a thread: when nobody is writing, the caller becomes the *leader*: it takes
  every job queued so far (its own included, at most ``max_batch``), calls ``run_batch(jobs)`` (one
  transaction) and hands each waiting thread its result; otherwise the caller waits for a leader to
  do that. A lone request is written at once (no timer, no added latency); batches grow only with
  concurrency. Each caller returns only after the transaction holding its job has committed.
* :class:`BatchWorker` does the same for callers on an event loop: ``await submit(job)`` queues the
  job and one thread of its own runs the batches, so a request needs no thread-pool slot of its own.
* ``run_batch`` must be all-or-nothing (one transaction). When a batch of several jobs fails, each
  job is run again on its own, so one bad job (say, a conflicting application id) fails only its
  own request, with its own exception; the others are written as if they had come alone.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

J = TypeVar("J")
R = TypeVar("R")


class _Slot(Generic[J, R]):
    __slots__ = ("job", "result", "error", "done")

    def __init__(self, job: J) -> None:
        self.job = job
        self.result: R | None = None
        self.error: BaseException | None = None
        self.done = False


class GroupCommit(Generic[J, R]):
    def __init__(self, run_batch: Callable[[Sequence[J]], Sequence[R]], *, max_batch: int = 128) -> None:
        self._run = run_batch
        self.max_batch = max_batch
        self._cond = threading.Condition()
        self._queue: list[_Slot[J, R]] = []
        self._busy = False
        self.batches = 0  # transactions written (for tests and benchmarks)
        self.jobs = 0

    def submit(self, job: J) -> R:
        slot: _Slot[J, R] = _Slot(job)
        with self._cond:
            self._queue.append(slot)
            while not slot.done:
                if self._busy:
                    self._cond.wait()
                    continue
                self._busy = True
                batch, self._queue = self._queue[:self.max_batch], self._queue[self.max_batch:]
                self._cond.release()
                try:
                    self._execute(batch)
                finally:
                    self._cond.acquire()
                    self._busy = False
                    self._cond.notify_all()
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]

    def _execute(self, batch: list[_Slot[J, R]]) -> None:
        try:
            try:
                results = self._run([s.job for s in batch])
                for s, r in zip(batch, results, strict=True):
                    s.result = r
                self.batches += 1
            except Exception as exc:  # handed to the callers, never swallowed
                if len(batch) == 1:
                    batch[0].error = exc
                    return
                for s in batch:  # nothing of the batch was written: each job again, alone
                    try:
                        s.result = self._run([s.job])[0]
                        self.batches += 1
                    except Exception as one:
                        s.error = one
        except BaseException as exc:  # interrupted: every caller of the batch hears of it
            for s in batch:
                s.error = s.error or exc
            raise
        finally:
            self.jobs += len(batch)
            for s in batch:
                s.done = True


class BatchWorker(Generic[J, R]):
    """Group commit for asyncio callers. ``await submit(job)`` queues the job; one thread (started on
    first use, named ``name``) takes every queued job (at most ``max_batch``), calls
    ``run_batch(jobs)`` and settles each caller's future on the caller's loop. ``run_batch`` returns
    one item per job: its result, or an :class:`Exception` instance that fails that job alone (so
    per-job errors need no retry); if it raises, every job of the batch fails with that exception.
    :meth:`close` finishes the queued jobs and stops the thread."""

    def __init__(self, run_batch: Callable[[Sequence[J]], Sequence[R | Exception]], *, max_batch: int = 128,
                 name: str = "batch-worker") -> None:
        self._run = run_batch
        self.max_batch = max_batch
        self.name = name
        self._cond = threading.Condition()
        self._queue: list[tuple[J, asyncio.Future[R], asyncio.AbstractEventLoop]] = []
        self._thread: threading.Thread | None = None
        self._closing = False
        self.batches = 0
        self.jobs = 0

    async def submit(self, job: J) -> R:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[R] = loop.create_future()
        with self._cond:
            if self._closing:
                raise RuntimeError(f"{self.name} is closed")
            self._queue.append((job, fut, loop))
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name=self.name, daemon=True)
                self._thread.start()
            self._cond.notify()
        return await fut

    def close(self, timeout: float = 30.0) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue:
                    return
                batch, self._queue = self._queue[:self.max_batch], self._queue[self.max_batch:]
            try:
                outcomes: Sequence[Any] = self._run([job for job, _, _ in batch])
                if len(outcomes) != len(batch):
                    raise RuntimeError(f"{self.name}: {len(outcomes)} results for {len(batch)} jobs")
            except Exception as exc:  # every caller of the batch hears of it
                log.exception("%s: a batch of %d failed", self.name, len(batch))
                outcomes = [exc] * len(batch)
            self.batches += 1
            self.jobs += len(batch)
            for (_, fut, loop), outcome in zip(batch, outcomes, strict=True):
                try:
                    loop.call_soon_threadsafe(_settle, fut, outcome)
                except RuntimeError:  # the caller's loop is closed: nobody is waiting any more
                    pass


def _settle(fut: asyncio.Future[Any], outcome: Any) -> None:
    if fut.done():  # the caller was cancelled
        return
    if isinstance(outcome, Exception):
        fut.set_exception(outcome)
    else:
        fut.set_result(outcome)
