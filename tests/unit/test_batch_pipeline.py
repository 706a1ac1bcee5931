"""The read-ahead and background-write stages of batch scoring (backend/scoring/batch_pipeline.py): order,
errors raised where the serial loop raised them, bounded look-ahead, nothing left running."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from backend.scoring.batch_pipeline import BackgroundWriter, ahead


def _live() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith("creditrisk-")}


def _settled() -> set[str]:
    for _ in range(100):
        if not _live():
            break
        time.sleep(0.01)
    return _live()


def test_ahead_keeps_order_and_ends() -> None:
    assert list(ahead(iter(range(1000)))) == list(range(1000))
    assert list(ahead(iter([]))) == []
    assert list(ahead(iter([None, 0, ""]))) == [None, 0, ""]  # falsy items are items, not the end
    assert not _settled()


def test_ahead_raises_a_source_error_at_its_place() -> None:
    def source() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("row 40,001: not a number")

    got: list[int] = []
    with pytest.raises(ValueError, match="row 40,001"):
        for x in ahead(source()):
            got.append(x)
    assert got == [1, 2]
    assert not _settled()


def test_ahead_reads_at_most_depth_items_ahead() -> None:
    made: list[int] = []

    def source() -> Iterator[int]:
        for i in range(100):
            made.append(i)
            yield i

    it = ahead(source(), depth=1)
    assert next(it) == 0
    time.sleep(0.2)  # the producer is free to run on
    # item 0 consumed, item 1 in the queue, item 2 made and waiting to be put: never more
    assert len(made) <= 3, made
    it.close()
    assert not _settled()


def test_ahead_closes_its_source_when_the_consumer_stops_early() -> None:
    closed = threading.Event()

    def source() -> Iterator[int]:
        try:
            yield from range(10_000)
        finally:
            closed.set()  # e.g. the Parquet file the reader holds open

    for x in ahead(source()):
        if x == 3:
            break
    assert closed.wait(2)
    assert not _settled()

    closed.clear()
    with pytest.raises(RuntimeError):  # the consumer fails (e.g. a conflict in a recorded run)
        for x in ahead(source()):
            if x == 5:
                raise RuntimeError("consumer failed")
    assert closed.wait(2)
    assert not _settled()


class Sink:
    def __init__(self, fail_at: int | None = None) -> None:
        self.rows: list[Any] = []
        self.closed = False
        self.fail_at = fail_at
        self.json = "attribute of the sink"

    def write(self, table: Any, results: Any) -> None:
        if self.fail_at is not None and len(self.rows) == self.fail_at:
            raise OSError("No space left on device")
        time.sleep(0.001)
        self.rows.append((table, results))

    def close(self) -> None:
        self.closed = True


def test_background_writer_writes_everything_in_order_before_close_returns() -> None:
    sink = Sink()
    w = BackgroundWriter(sink)
    assert w.json == "attribute of the sink"
    for i in range(200):
        w.write(i, None)
    w.close()
    assert [t for t, _ in sink.rows] == list(range(200)) and sink.closed
    w.close()  # twice is harmless
    assert not _settled()


def test_background_writer_raises_the_first_write_error_and_writes_nothing_after_it() -> None:
    sink = Sink(fail_at=3)
    w = BackgroundWriter(sink)
    raised = 0
    for i in range(50):
        try:
            w.write(i, None)
        except OSError:
            raised += 1
    assert raised, "a later write() reports the failed one"
    with pytest.raises(OSError, match="No space left"):  # and close() still does, after closing the sink
        w.close()
    assert [t for t, _ in sink.rows] == [0, 1, 2] and sink.closed
    assert not _settled()


def test_background_writer_close_reports_an_error_of_the_last_write() -> None:
    sink = Sink(fail_at=0)
    w = BackgroundWriter(sink)
    w.write("only", None)
    with pytest.raises(OSError):
        w.close()
    assert sink.closed and sink.rows == []
    assert not _settled()
