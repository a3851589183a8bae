"""What the dashboard shows besides totals: the last results, per-key deliveries, a history.

Kept in memory by each worker, bounded: the last 20 results (with the image's bytes when the
worker fetched it itself and it is small, for a thumbnail that is never fetched again), one
entry per key that received something, and 15 minutes of figures sampled every 5 s.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from app.redact import redact_url

RECENT_RESULTS = 20
HISTORY_STEP_S = 5.0
HISTORY_POINTS = 180  # 15 minutes of 5 s steps
# Why a cap: 20 thumbnails of at most 512 KB keep the page's memory under 11 MB.
THUMBNAIL_MAX_BYTES = 512 * 1024
_IMAGE_MAGIC = {
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
    b"GIF87a": "image/gif",
    b"GIF89a": "image/gif",
}


def image_type(data: bytes) -> str | None:
    """Return the content type of PNG, JPEG, GIF or WebP bytes, else None (not shown)."""
    for magic, content_type in _IMAGE_MAGIC.items():
        if data.startswith(magic):
            return content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


@dataclass
class RecentResult:
    """One ocr_result as the dashboard lists it."""

    id: int
    at: float
    post: str
    image_url: str
    text: str
    addresses: list[str]
    keywords: list[str] = field(default_factory=list)
    thumbnail: bytes | None = None
    thumbnail_type: str | None = None

    def shown(self) -> dict[str, Any]:
        """Return the result as JSON for the page (the thumbnail as a URL, if there is one)."""
        return {
            "at": self.at,
            "post": self.post,
            "image_url": self.image_url,
            "text": self.text,
            "addresses": self.addresses,
            "keywords": self.keywords,
            "thumbnail": f"/dashboard/thumbnail/{self.id}" if self.thumbnail else None,
        }


@dataclass
class KeyActivity:
    """Deliveries to one key on this worker, and the last one's time."""

    deliveries: int = 0
    last_at: float = 0.0


class Activity:
    """The worker's recent activity (see the module docstring); one per process."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._results: OrderedDict[str, RecentResult] = OrderedDict()  # by event id
        self.keys: dict[str, KeyActivity] = {}
        self.history: deque[dict[str, Any]] = deque(maxlen=HISTORY_POINTS)

    def result(
        self, event_id: str, post: str, image_url: str, text: str, addresses: list[str],
        image: bytes | None,
    ) -> None:  # fmt: skip
        """Remember an ocr_result, with its image's bytes if they can be shown small."""
        url = redact_url(image_url)
        shown = image if image and len(image) <= THUMBNAIL_MAX_BYTES else None
        if shown is None:  # read from the cache: the bytes of a listed result of that URL
            shown = next((r.thumbnail for r in self._results.values() if r.image_url == url), None)
        content_type = image_type(shown) if shown else None
        self._results[event_id] = RecentResult(
            next(self._ids), time.time(), post, url, text[:300], addresses,
            thumbnail=shown if content_type else None, thumbnail_type=content_type,
        )  # fmt: skip
        self._results.move_to_end(event_id)
        while len(self._results) > RECENT_RESULTS:
            self._results.popitem(last=False)

    def matched(self, event_id: str, keywords: list[str]) -> None:
        """Add the keywords an ocr_result matched for some key (if it is still listed)."""
        result = self._results.get(event_id)
        if result is not None:
            result.keywords = sorted({*result.keywords, *keywords})

    def delivered(self, key_id: str) -> None:
        """Count one delivery to a key."""
        entry = self.keys.setdefault(key_id, KeyActivity())
        entry.deliveries += 1
        entry.last_at = time.time()

    def recent_results(self) -> list[dict[str, Any]]:
        """Return the last results, newest first."""
        return [result.shown() for result in reversed(self._results.values())]

    def thumbnail(self, result_id: int) -> tuple[bytes, str] | None:
        """Return (bytes, content type) of a listed result's image, if it was kept."""
        for result in self._results.values():
            if result.id == result_id and result.thumbnail and result.thumbnail_type:
                return result.thumbnail, result.thumbnail_type
        return None


class History:
    """Turns counters sampled every step into rates, and latencies into per-step percentiles."""

    def __init__(self, started_at: float) -> None:
        # Why from the start with nothing counted: counters start at zero with the process, so
        # what happened before the first sample is the first point's rate, not lost.
        self._previous: tuple[float, dict[str, float]] = (started_at, {})

    def point(
        self, now: float, counts: dict[str, float], ocr_ms: list[float], lag: dict[str, int]
    ) -> dict[str, Any]:
        """Return one history point: rates since the previous one, this step's OCR times."""
        previous, self._previous = self._previous, (now, counts)
        seconds = max(now - previous[0], 1e-3)
        rates = {
            name: round(max(0.0, value - previous[1].get(name, 0.0)) / seconds, 2)
            for name, value in counts.items()
        }
        return {"t": round(now, 1), "rates": rates, "ocr_ms": percentiles(ocr_ms), "lag": lag}


def percentiles(samples: list[float]) -> dict[str, float | None]:
    """Return p50 and p95 of the samples (None when there are none)."""
    if not samples:
        return {"p50": None, "p95": None}
    if len(samples) == 1:
        return {"p50": round(samples[0], 1), "p95": round(samples[0], 1)}
    cuts = statistics.quantiles(samples, n=20, method="inclusive")
    return {"p50": round(cuts[9], 1), "p95": round(cuts[18], 1)}


activity = Activity()
