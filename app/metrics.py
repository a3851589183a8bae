"""In-process counters and OCR timings of this worker, shown by the /status view."""

from __future__ import annotations

import contextvars
import itertools
import statistics
import time
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from app.redact import redact_text

# Why 1000: enough samples for a stable p95, small enough to sort on every request.
_LATENCY_WINDOW = 1000
_RECENT_ERRORS = 20


# Milliseconds; OCR on this kind of machine takes 100-1500 ms, downloads 5-20000 ms.
LATENCY_BUCKETS_MS = (25, 50, 100, 200, 300, 500, 750, 1000, 1500, 2500, 5000, 10000, 20000)


class Histogram:
    """Cumulative latency buckets since start (what Prometheus needs), beside a recent window."""

    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS_MS) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)  # the last one is +Inf
        self.sum = 0.0
        self.recent: deque[float] = deque(maxlen=_LATENCY_WINDOW)

    def observe(self, value: float) -> None:
        """Record one sample."""
        index = next((i for i, bound in enumerate(self.buckets) if value <= bound), -1)
        self.counts[index] += 1
        self.sum += value
        self.recent.append(value)

    def cumulative(self) -> list[tuple[str, int]]:
        """Return (upper bound, samples at or below it) pairs, ending with +Inf."""
        pairs, running = [], 0
        for bound, count in zip([*map(str, self.buckets), "+Inf"], self.counts, strict=True):
            running += count
            pairs.append((bound, running))
        return pairs


@dataclass
class Work:
    """One piece of work under way (an image), and since when (monotonic seconds)."""

    what: str
    stage: str
    since: float
    stage_since: float


class Metrics:
    """Counts of what this worker did since it started, and recent OCR latencies."""

    def __init__(self) -> None:
        self.started_at = time.time()
        self.counts: Counter[str] = Counter()
        self.ocr_ms = Histogram()
        self.fetch_ms = Histogram()
        self.webhook_ms = Histogram()
        self.recent_errors: deque[dict[str, object]] = deque(maxlen=_RECENT_ERRORS)
        self.in_flight: dict[int, Work] = {}
        self.live_connections = 0
        self._ids = itertools.count()

    def count(self, name: str, n: int = 1) -> None:
        """Add ``n`` to the counter ``name``."""
        self.counts[name] += n

    def error(self, stage: str, reason: str) -> None:
        """Remember a recent error for the status page (URLs in it redacted: it is public)."""
        shown = redact_text(reason)[:300]
        self.recent_errors.appendleft({"at": time.time(), "stage": stage, "reason": shown})

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

    def snapshot(self) -> dict[str, object]:
        """Return the counters and latency percentiles as plain JSON data."""
        now = time.monotonic()
        return {
            "uptime_s": round(time.time() - self.started_at, 1),
            "counts": dict(sorted(self.counts.items())),
            "ocr_ms": _percentiles(self.ocr_ms.recent),
            "fetch_ms": _percentiles(self.fetch_ms.recent),
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


def _percentiles(samples: deque[float]) -> dict[str, float | int]:
    if len(samples) < 2:
        return {"n": len(samples), **({"p50": samples[0], "p95": samples[0]} if samples else {})}
    cuts = statistics.quantiles(samples, n=20)
    return {"n": len(samples), "p50": round(cuts[9], 1), "p95": round(cuts[18], 1)}


metrics = Metrics()
