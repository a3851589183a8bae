"""Every number a worker reports: typed Prometheus metrics, and what the status page shows now.

Counters and histograms are declared here, once, with their names, help and labels, and
incremented where things happen (``metrics.posts.inc()``); ``/metrics`` exports them as they
are and ``/status/`` reads its totals from them. Besides them the status page keeps a short
recent view: the work in flight, the last errors, and the latest latencies for percentiles.
Figures that live elsewhere (Faust's monitor, consumer lag, the OCR cache) are read at scrape
time by ``app/web/status.py``.
"""

from __future__ import annotations

import contextvars
import itertools
import statistics
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram

from app.redact import redact_text

# Why 1000: enough samples for a stable p95, small enough to sort on every request.
_LATENCY_WINDOW = 1000
_RECENT_ERRORS = 20
# Seconds; OCR on this kind of machine takes 0.1-1.5 s, downloads 0.005-20 s.
LATENCY_BUCKETS_S = (0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2.5, 5, 10, 20)


@dataclass
class Work:
    """One piece of work under way (an image), and since when (monotonic seconds)."""

    what: str
    stage: str
    since: float
    stage_since: float


class Latency:
    """A Prometheus histogram beside a window of the latest samples, for p50/p95 now."""

    def __init__(self, histogram: Histogram) -> None:
        self.histogram = histogram
        self.recent: deque[float] = deque(maxlen=_LATENCY_WINDOW)
        # The samples since the dashboard's history last took them (bounded all the same).
        self._step: deque[float] = deque(maxlen=_LATENCY_WINDOW)

    def observe_ms(self, ms: float) -> None:
        """Record one sample, in milliseconds."""
        self.histogram.observe(ms / 1000)
        self.recent.append(ms)
        self._step.append(ms)

    def take_step(self) -> list[float]:
        """Return the samples since the last call, and start a new step."""
        samples = list(self._step)
        self._step.clear()
        return samples

    def percentiles(self) -> dict[str, float | int]:
        """Return n, p50 and p95 (ms) of the latest samples."""
        samples = self.recent
        if len(samples) < 2:
            return {
                "n": len(samples),
                **({"p50": samples[0], "p95": samples[0]} if samples else {}),
            }
        cuts = statistics.quantiles(samples, n=20)
        return {"n": len(samples), "p50": round(cuts[9], 1), "p95": round(cuts[18], 1)}


class Metrics:
    """The worker's metrics (see the module docstring); one per process, in ``metrics``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

        def counter(name: str, help_text: str, *labels: str) -> Counter:
            return Counter(name, help_text, labels, registry=registry)

        def histogram(name: str, help_text: str) -> Latency:
            return Latency(Histogram(name, help_text, buckets=LATENCY_BUCKETS_S, registry=registry))

        self.posts = counter("ocrstream_posts", "Posts read from the posts topic.")
        self.image_jobs = counter(
            "ocrstream_image_jobs", "Image jobs emitted (one per image of a post)."
        )
        self.ocr_results = counter("ocrstream_ocr_results", "ocr_result events produced.")
        self.image_errors = counter(
            "ocrstream_image_errors", "Images that could not be read (ocr_error), by kind.", "kind"
        )
        self.dead_letters = counter(
            "ocrstream_dead_letters", "Records sent to the dead-letter topic.", "stage"
        )
        self.record_errors = counter(
            "ocrstream_record_errors",
            "Records whose handling failed unexpectedly (dead-lettered; traceback in the log).",
            "stage",
        )
        self.deliveries = counter(
            "ocrstream_deliveries",
            "Deliveries to API keys: sent, filtered (no keyword matched), refused (a channel).",
            "outcome",
        )
        self.ocr_cache_hits = counter(
            "ocrstream_ocr_cache_hits",
            "Images answered from the OCR cache: by the same URL, the same bytes, or a similar "
            "picture (a re-encoded or resized copy).",
            "by",
        )
        self.partition_rereads = counter(
            "ocrstream_partition_rereads",
            "Partitions read again from their committed offset after they stopped advancing.",
        )
        self.http_responses = counter(
            "ocrstream_http_responses", "HTTP API answers (and every 5xx), by status.", "status"
        )
        self.ocr_requests = counter(
            "ocrstream_ocr_requests", "POST /ocr requests answered with the text."
        )
        self.webhook_deliveries = counter(
            "ocrstream_webhook_deliveries",
            "Webhook attempts by answer (2xx, 5xx, timeout, ...) and jobs by outcome.",
            "outcome",
        )
        self.stream_events = counter(
            "ocrstream_stream_events",
            "Live-stream events: sent to a client, or dropped because it read too slowly.",
            "outcome",
        )
        self.ocr_ms = histogram("ocrstream_ocr_seconds", "OCR time per image.")
        self.fetch_ms = histogram("ocrstream_fetch_seconds", "Image download time.")
        self.webhook_ms = histogram("ocrstream_webhook_seconds", "Webhook POST time per attempt.")

        self.started_at = time.time()
        self.recent_errors: deque[dict[str, object]] = deque(maxlen=_RECENT_ERRORS)
        self.in_flight: dict[int, Work] = {}
        self.live_connections = 0
        self._ids = itertools.count()

    def error(self, stage: str, reason: str, kind: str = "") -> None:
        """Remember a recent error for the status page (URLs in it redacted: it is public)."""
        shown = redact_text(reason)[:300]
        self.recent_errors.appendleft(
            {"at": time.time(), "stage": stage, "kind": kind or stage, "reason": shown}
        )

    @contextmanager
    def tracking(self, what: str, stage: str) -> Iterator[None]:
        """Show ``what`` as work in flight (with its stage and age) until the block ends."""
        work_id = next(self._ids)
        now = time.monotonic()
        self.in_flight[work_id] = Work(redact_text(what)[:200], stage, now, now)
        token = _current_work.set(work_id)
        try:
            yield
        finally:
            _current_work.reset(token)
            del self.in_flight[work_id]

    def stage(self, stage: str) -> None:
        """Move the work tracked by the current task (if any) to ``stage``."""
        work = self.in_flight.get(_current_work.get())
        if work is not None:
            work.stage = stage
            work.stage_since = time.monotonic()

    def totals(self) -> dict[str, int | float]:
        """Return every counter's value by name and labels (``name{label=value}``)."""
        totals: dict[str, int | float] = {}
        for family in self.registry.collect():
            if family.type != "counter":
                continue
            for sample in family.samples:
                if not sample.name.endswith("_total"):
                    continue
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                name = sample.name.removeprefix("ocrstream_").removesuffix("_total")
                value = int(sample.value) if sample.value.is_integer() else sample.value
                totals[f"{name}{{{labels}}}" if labels else name] = value
        return dict(sorted(totals.items()))

    def snapshot(self) -> dict[str, object]:
        """Return the totals, latency percentiles, recent errors and work in flight as JSON."""
        now = time.monotonic()
        return {
            "uptime_s": round(time.time() - self.started_at, 1),
            "counts": self.totals(),
            "ocr_ms": self.ocr_ms.percentiles(),
            "fetch_ms": self.fetch_ms.percentiles(),
            "recent_errors": list(self.recent_errors),
            # Oldest first: a stuck image shows at the top with its stage and how long.
            "in_flight": [
                {
                    "what": work.what,
                    "stage": work.stage,
                    "age_s": round(now - work.since, 1),
                    "stage_age_s": round(now - work.stage_since, 1),
                }
                for work in self.in_flight.values()
            ],
        }


_current_work: contextvars.ContextVar[int] = contextvars.ContextVar("current_work", default=-1)

metrics = Metrics(CollectorRegistry(auto_describe=True))
