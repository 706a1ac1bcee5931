"""CloudWatch Embedded Metric Format (EMF): metrics as JSON lines in the logs.

On AWS (ECS/EKS with the awslogs driver or the CloudWatch agent, Lambda) a log line with an
``_aws`` block becomes metrics without an API call. Values are aggregated in memory per label set
(counters summed, histogram observations kept as a value array) and written as one line per label
set::

    {"_aws": {"Timestamp": 1764000000000, "CloudWatchMetrics": [{"Namespace": "creditrisk",
      "Dimensions": [["method", "route", "status"]], "Metrics": [{"Name": "http_requests", "Unit": "Count"}]}]},
     "method": "POST", "route": "/v1/score", "status": "200", "http_requests": 3}

A flush happens every ``flush_seconds`` (a daemon thread, and on the next record when it is due),
as soon as a histogram holds 100 values (EMF's array limit) or ``max_groups`` label sets are
buffered, on :meth:`EmfMetrics.flush` (the API calls it at shutdown) and at interpreter exit.
The timestamp of a line is when its label set's first value of the window was recorded.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import IO

from backend.platform.metrics_catalog import CATALOG, check

log = logging.getLogger("creditrisk.metrics")
MAX_VALUES = 100  # EMF: at most 100 values in one metric's array


@dataclass
class _Group:
    timestamp_ms: int
    values: dict[str, float | list[float]] = field(default_factory=dict)


class _Buffer:
    """The state the flush thread and the finalizer share (never the adapter itself)."""

    def __init__(self, namespace: str, stream: Callable[[], IO[str]], now: Callable[[], float],
                 flush_seconds: float, max_groups: int) -> None:
        self.namespace, self.stream, self.now = namespace, stream, now
        self.flush_seconds, self.max_groups = flush_seconds, max_groups
        self.lock = threading.Lock()
        self.groups: dict[tuple[tuple[str, str], ...], _Group] = {}
        self.last_flush = now()
        self.stop = threading.Event()

    def add(self, name: str, labels: Mapping[str, str], value: float, histogram: bool) -> None:
        key = tuple(sorted((k, str(v)) for k, v in labels.items()))
        with self.lock:
            group = self.groups.get(key)
            if group is None:
                group = self.groups[key] = _Group(int(self.now() * 1000))
            if histogram:
                values = group.values.setdefault(name, [])
                assert isinstance(values, list)
                values.append(float(value))
                full = len(values) >= MAX_VALUES
            else:
                group.values[name] = float(group.values.get(name, 0.0)) + float(value)  # type: ignore[arg-type]
                full = False
            due = full or len(self.groups) >= self.max_groups or self.now() - self.last_flush >= self.flush_seconds
        if due:
            self.flush()

    def flush(self) -> None:
        with self.lock:
            groups, self.groups = self.groups, {}
            self.last_flush = self.now()
        if not groups:
            return
        lines = [json.dumps(document(self.namespace, dict(key), g.values, g.timestamp_ms), separators=(",", ":"))
                 for key, g in groups.items()]
        try:
            out = self.stream()
            out.write("\n".join(lines) + "\n")
            out.flush()
        except Exception as exc:  # noqa: BLE001 - a metrics sink never fails the caller
            log.warning("dropped %d EMF lines: %s", len(lines), type(exc).__name__)

    def run(self) -> None:
        while not self.stop.wait(self.flush_seconds):
            self.flush()

    def close(self) -> None:
        self.stop.set()
        self.flush()


def document(namespace: str, dimensions: Mapping[str, str], values: Mapping[str, float | list[float]],
             timestamp_ms: int) -> dict[str, object]:
    """One EMF document: the ``_aws`` metadata, the dimension values and the metric values."""
    doc: dict[str, object] = {"_aws": {"Timestamp": timestamp_ms, "CloudWatchMetrics": [{
        "Namespace": namespace, "Dimensions": [sorted(dimensions)],
        "Metrics": [{"Name": name, "Unit": CATALOG[name].unit} for name in sorted(values)]}]}}
    doc.update(dimensions)
    doc.update(values)
    return doc


class EmfMetrics:
    backend = "emf"

    def __init__(self, namespace: str = "creditrisk", *, stream: IO[str] | str = "stdout",
                 flush_seconds: float = 60.0, max_groups: int = 200, now: Callable[[], float] = time.time,
                 background: bool = True) -> None:
        if isinstance(stream, str):
            name = stream

            def resolve() -> IO[str]:
                return sys.stderr if name == "stderr" else sys.stdout  # looked up at write time
        else:
            fixed = stream

            def resolve() -> IO[str]:
                return fixed
        self._buffer = _Buffer(namespace, resolve, now, flush_seconds, max_groups)
        self._background = background
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._finalizer = weakref.finalize(self, _Buffer.close, self._buffer)

    def _record(self, name: str, labels: Mapping[str, str], value: float, histogram: bool) -> None:
        if self._background and self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._buffer.run, name="emf-metrics-flush", daemon=True)
                    self._thread.start()
        self._buffer.add(name, labels, value, histogram)

    def inc(self, name: str, labels: Mapping[str, str], value: float = 1.0) -> None:
        check(name, dict(labels))
        if value < 0:
            raise ValueError(f"counter {name!r} cannot decrease (got {value})")
        self._record(name, labels, value, histogram=False)

    def observe(self, name: str, value: float, labels: Mapping[str, str]) -> None:
        spec = check(name, dict(labels))
        if spec.kind != "histogram":
            raise ValueError(f"metric {name!r} is a {spec.kind}, not a histogram")
        self._record(name, labels, value, histogram=True)

    def flush(self) -> None:
        self._buffer.flush()

    def close(self) -> None:
        """Flush and stop the flush thread (also done at interpreter exit)."""
        self._finalizer()

    def exposition(self) -> tuple[bytes, str] | None:
        return None
