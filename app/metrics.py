"""In-process counters and OCR timings of this worker, shown by the /status view."""

from __future__ import annotations

import statistics
import time
from collections import Counter, deque

# Why 1000: enough samples for a stable p95, small enough to sort on every request.
_LATENCY_WINDOW = 1000
_RECENT_ERRORS = 20


class Metrics:
    """Counts of what this worker did since it started, and recent OCR latencies."""

    def __init__(self) -> None:
        self.started_at = time.time()
        self.counts: Counter[str] = Counter()
        self.ocr_ms: deque[float] = deque(maxlen=_LATENCY_WINDOW)
        self.fetch_ms: deque[float] = deque(maxlen=_LATENCY_WINDOW)
        self.recent_errors: deque[dict[str, object]] = deque(maxlen=_RECENT_ERRORS)

    def count(self, name: str, n: int = 1) -> None:
        """Add ``n`` to the counter ``name``."""
        self.counts[name] += n

    def error(self, stage: str, reason: str) -> None:
        """Remember a recent error for the status page (reasons never hold secrets)."""
        self.recent_errors.appendleft({"at": time.time(), "stage": stage, "reason": reason[:300]})

    def snapshot(self) -> dict[str, object]:
        """Return the counters and latency percentiles as plain JSON data."""
        return {
            "uptime_s": round(time.time() - self.started_at, 1),
            "counts": dict(sorted(self.counts.items())),
            "ocr_ms": _percentiles(self.ocr_ms),
            "fetch_ms": _percentiles(self.fetch_ms),
            "recent_errors": list(self.recent_errors),
        }


def _percentiles(samples: deque[float]) -> dict[str, float | int]:
    if len(samples) < 2:
        return {"n": len(samples), **({"p50": samples[0], "p95": samples[0]} if samples else {})}
    cuts = statistics.quantiles(samples, n=20)
    return {"n": len(samples), "p50": round(cuts[9], 1), "p95": round(cuts[18], 1)}


metrics = Metrics()
