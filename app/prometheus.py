"""The worker's numbers in Prometheus' text format, for ``GET /metrics``.

Everything is read at scrape time from what the worker already keeps (Faust's monitor, our
counters and histograms, the OCR cache), so there is one source of truth and no second
bookkeeping on the hot path.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from app.metrics import Histogram, Metrics

# Our counter name prefix -> (metric, help, label): "ocr_errors.timeout" -> kind="timeout".
_LABELLED_COUNTERS = {
    "ocr_errors.": ("ocrstream_image_errors", "Images that could not be read, by kind.", "kind"),
    "dead_letters.": ("ocrstream_dead_letters", "Records sent to the dead-letter topic.", "stage"),
    "record_errors.": (
        "ocrstream_record_errors",
        "Records whose handling failed unexpectedly (dead-lettered; traceback in the log).",
        "stage",
    ),
    "deliveries.": ("ocrstream_deliveries", "Deliveries to API keys, by outcome.", "outcome"),
    "webhooks.": (
        "ocrstream_webhook_deliveries",
        "Webhook attempts by answer (2xx, 5xx, timeout, ...) and deliveries by outcome.",
        "outcome",
    ),
    "http.": ("ocrstream_http_responses", "HTTP API answers, by status code.", "status"),
    "stream.": (
        "ocrstream_stream_events",
        "Live-stream events: sent to a client, or dropped because it read too slowly.",
        "outcome",
    ),
}
_PLAIN_COUNTERS = {
    "posts_in": ("ocrstream_posts", "Posts read from the posts topic."),
    "images_out": ("ocrstream_image_jobs", "Image jobs emitted (one per image of a post)."),
    "ocr_results": ("ocrstream_ocr_results", "ocr_result events produced."),
    "stalls.reread": (
        "ocrstream_partition_rereads",
        "Partitions read again from their committed offset because they had stopped advancing.",
    ),
}


class WorkerCollector(Collector):
    """Turns the worker's state into Prometheus metric families at each scrape."""

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
        """Yield every metric family (called by the registry at each scrape)."""
        yield from self._topic_counters()
        yield from self._counters()
        yield _histogram("ocrstream_ocr_seconds", "OCR time per image.", self._metrics.ocr_ms)
        yield _histogram("ocrstream_fetch_seconds", "Image download time.", self._metrics.fetch_ms)
        yield _histogram(
            "ocrstream_webhook_seconds", "Webhook POST time per attempt.", self._metrics.webhook_ms
        )
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
            "ocrstream_uptime_seconds", "Seconds since the worker started.", self._uptime()
        )

    def _uptime(self) -> float:
        return time.time() - self._metrics.started_at

    def _topic_counters(self) -> Iterable[Metric]:
        monitor = self._monitor()
        received = CounterMetricFamily(
            "ocrstream_topic_records_in", "Records read, per topic.", labels=["topic"]
        )
        for topic, n in sorted(dict(monitor.messages_received_by_topic or {}).items()):
            received.add_metric([topic], n)
        sent = CounterMetricFamily(
            "ocrstream_topic_records_out", "Records produced, per topic.", labels=["topic"]
        )
        for topic, n in sorted(dict(monitor.messages_sent_by_topic or {}).items()):
            sent.add_metric([topic], n)
        return [received, sent]

    def _counters(self) -> Iterable[Metric]:
        counts = dict(self._metrics.counts)
        families: list[Metric] = []
        for name, (metric, help_text) in _PLAIN_COUNTERS.items():
            families.append(CounterMetricFamily(metric, help_text, counts.get(name, 0)))
        for prefix, (metric, help_text, label) in _LABELLED_COUNTERS.items():
            family = CounterMetricFamily(metric, help_text, labels=[label])
            for name, n in sorted(counts.items()):
                if name.startswith(prefix):
                    family.add_metric([name.removeprefix(prefix)], n)
            families.append(family)
        return families


def _histogram(name: str, help_text: str, histogram: Histogram) -> HistogramMetricFamily:
    # Why seconds: Prometheus' base unit; we record milliseconds.
    buckets = [
        (bound if bound == "+Inf" else str(float(bound) / 1000), count)
        for bound, count in histogram.cumulative()
    ]
    return HistogramMetricFamily(name, help_text, buckets=buckets, sum_value=histogram.sum / 1000)


def render(registry: CollectorRegistry) -> bytes:
    """Return the registry's metrics in Prometheus' text exposition format."""
    return generate_latest(registry)
