"""Prometheus metrics: one :class:`CollectorRegistry` per instance (never the global default), so two
``Services`` in one process (tests, console + API) never share or clash.

``exposition()`` renders the text format 0.0.4 (``text/plain; version=0.0.4``) that ``GET /metrics``
serves. Multi-worker uvicorn (``creditrisk serve --workers N``): start the server with
``PROMETHEUS_MULTIPROC_DIR`` pointing at an empty directory (wipe it at every start); each worker
then writes its values to files there and any worker's ``/metrics`` renders the sum over all of
them (``prometheus_client.multiprocess.MultiProcessCollector``). Without it each worker answers
with its own counts, and a scraper would see whichever worker the load balancer picked.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from backend.platform.metrics_catalog import CATALOG, check

log = logging.getLogger("creditrisk.metrics")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class PrometheusMetrics:
    backend = "prometheus"

    def __init__(self, namespace: str = "creditrisk", *, registry: Any = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.namespace = namespace
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self._metrics: dict[str, Any] = {}
        for spec in CATALOG.values():
            if spec.kind == "counter":
                self._metrics[spec.name] = Counter(spec.name, spec.help, spec.labels, namespace=namespace,
                                                   registry=self.registry)
            else:
                self._metrics[spec.name] = Histogram(spec.name, spec.help, spec.labels, namespace=namespace,
                                                     registry=self.registry, buckets=spec.buckets)

    def inc(self, name: str, labels: Mapping[str, str], value: float = 1.0) -> None:
        check(name, dict(labels))
        if value < 0:
            raise ValueError(f"counter {name!r} cannot decrease (got {value})")
        self._metrics[name].labels(**labels).inc(value)

    def observe(self, name: str, value: float, labels: Mapping[str, str]) -> None:
        spec = check(name, dict(labels))
        if spec.kind != "histogram":
            raise ValueError(f"metric {name!r} is a {spec.kind}, not a histogram")
        self._metrics[name].labels(**labels).observe(value)

    def flush(self) -> None:
        return None

    def exposition(self) -> tuple[bytes, str]:
        from prometheus_client import generate_latest
        from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

        registry = self.registry
        if os.environ.get(MULTIPROC_ENV):
            from prometheus_client import CollectorRegistry
            from prometheus_client.multiprocess import MultiProcessCollector

            registry = CollectorRegistry()
            MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_PLAIN_0_0_4
