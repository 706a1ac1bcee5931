"""Overlap the three stages of scoring a file: reading, scoring, writing (issue 21 item 7).

Reading a chunk (pyarrow's decoding, the array checks of
:func:`~backend.scoring.batch_chunks.convert_chunk`) and writing one (pyarrow's CSV writer) spend most of
their time in code that releases the GIL, so on a second core they run beside the scoring of the chunk in
between. :func:`ahead` reads one chunk ahead in a thread; :class:`BackgroundWriter` writes the previous
chunk in a thread. Order is kept (one thread per stage, queues of one), memory grows by at most two
chunks, and an error in either thread is raised in the caller, at the place the serial loop would have
raised it: a reading error when the failing chunk is asked for, a writing error at the next write or at
``close()``, after which nothing more is written.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
_DONE = object()


def _put(q: queue.Queue[Any], item: Any, stop: threading.Event) -> bool:
    """Put ``item`` unless ``stop`` is set first (the consumer went away); False when it was not put."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.05)
            return True
        except queue.Full:
            continue
    return False


def ahead(items: Iterator[T], depth: int = 1) -> Generator[T, None, None]:
    """The items of ``items``, produced in a background thread up to ``depth`` ahead of the consumer.

    An exception raised by ``items`` is raised here when its place comes. When the consumer stops early (a
    ``break``, an exception, ``close()``), the thread stops at its next item and closes ``items`` (so a
    file it holds open is closed)."""
    q: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def run() -> None:
        try:
            for item in items:
                if not _put(q, (True, item), stop):
                    return
            _put(q, (True, _DONE), stop)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            _put(q, (False, exc), stop)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=run, name="creditrisk-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            ok, item = q.get()
            if not ok:
                raise item
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        thread.join()


class BackgroundWriter:
    """``write(*args)`` hands the arguments to ``sink.write`` in a thread (one call at a time, in order);
    ``close()`` waits for the pending calls, then closes ``sink``. The first error of ``sink.write`` is
    raised by the next ``write`` or by ``close`` (the sink is still closed); later calls are not made."""

    def __init__(self, sink: Any) -> None:
        self.sink = sink
        self._q: queue.Queue[tuple[Any, ...] | None] = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="creditrisk-writer", daemon=True)
        self._thread.start()
        self._closed = False

    def __getattr__(self, name: str) -> Any:  # the sink's attributes (e.g. Writer.json)
        return getattr(self.sink, name)

    def _run(self) -> None:
        while True:
            args = self._q.get()
            if args is None:
                return
            if self._error is None:
                try:
                    self.sink.write(*args)
                except BaseException as exc:  # noqa: BLE001 - raised in the caller
                    self._error = exc

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def write(self, *args: Any) -> None:
        self._raise()
        self._q.put(args)

    def close(self) -> None:
        """Wait for the pending writes and close the sink; raise the first write error, if any."""
        if self._closed:
            return
        self._closed = True
        self._q.put(None)
        self._thread.join()
        try:
            self._raise()
        finally:
            self.sink.close()
