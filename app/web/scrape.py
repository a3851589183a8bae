"""What ``/metrics`` reads at scrape time from where it lives: Faust's monitor, lag, the cache."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from app.metrics import Metrics


class WorkerState(Collector):
    """Turns state kept elsewhere into Prometheus families at each scrape (nothing kept twice)."""

    def __init__(
        self,
        metrics: Metrics,
        monitor: Callable[[], Any],
        cache: Callable[[], Any],
        lag: Callable[[], dict[str, int]],
    ) -> None:
        self._metrics = metrics
        self._monitor = monitor
        self._cache = cache
        self._lag = lag

    def collect(self) -> Iterator[Metric]:
        """Yield the families read from the worker's state (called at each scrape)."""
        monitor = self._monitor()
        received = CounterMetricFamily(
            "ocrstream_topic_records_in", "Records read, per topic.", labels=["topic"]
        )
        for topic, n in sorted(dict(monitor.messages_received_by_topic or {}).items()):
            received.add_metric([topic], n)
        yield received
        sent = CounterMetricFamily(
            "ocrstream_topic_records_out", "Records produced, per topic.", labels=["topic"]
        )
        for topic, n in sorted(dict(monitor.messages_sent_by_topic or {}).items()):
            sent.add_metric([topic], n)
        yield sent
        cache = self._cache()
        lookups = CounterMetricFamily(
            "ocrstream_ocr_cache_lookups", "OCR cache lookups.", labels=["result"]
        )
        lookups.add_metric(["hit"], cache.hits)
        lookups.add_metric(["miss"], cache.misses)
        yield lookups
        yield GaugeMetricFamily("ocrstream_ocr_cache_entries", "OCR cache entries.", len(cache))
        lag = GaugeMetricFamily(
            "ocrstream_consumer_lag",
            "Records not yet committed, per consumed partition.",
            labels=["topic", "partition"],
        )
        for name, records in self._lag().items():
            topic, partition = name.rsplit("/", 1)
            lag.add_metric([topic, partition], records)
        yield lag
        yield GaugeMetricFamily(
            "ocrstream_in_flight", "Images and deliveries under way.", len(self._metrics.in_flight)
        )
        yield GaugeMetricFamily(
            "ocrstream_stream_connections",
            "Open live streams (/ws and /stream).",
            self._metrics.live_connections,
        )
        yield GaugeMetricFamily(
            "ocrstream_uptime_seconds",
            "Seconds since the worker started.",
            time.time() - self._metrics.started_at,
        )


def scrape_registry(metrics: Metrics, state: WorkerState) -> CollectorRegistry:
    """Return a registry holding the typed metrics and the worker's state, for ``/metrics``."""
    registry = CollectorRegistry(auto_describe=True)

    class Typed(Collector):
        def collect(self) -> Iterator[Metric]:
            yield from metrics.registry.collect()

    registry.register(Typed())
    registry.register(state)
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """Return the registry's metrics in Prometheus' text exposition format."""
    return generate_latest(registry)
