"""Per-key token buckets: a burst, then a sustained rate (per worker process)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass


@dataclass
class Decision:
    """The outcome of one request against a bucket."""

    allowed: bool
    remaining: int
    retry_after_s: float  # until one token is back (0 when allowed)
    reset_s: float  # until the bucket is full again


class RateLimiter:
    """Token buckets keyed by key id; memory is bounded by the number of active keys."""

    def __init__(self, per_minute: float, burst: int) -> None:
        self._rate = per_minute / 60.0
        self._burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, updated_at)

    def check(self, key: str, now: float | None = None) -> Decision:
        """Take one token for ``key`` if there is one; say what is left and when to retry."""
        now = time.monotonic() if now is None else now
        tokens, updated = self._buckets.get(key, (float(self._burst), now))
        tokens = min(self._burst, tokens + (now - updated) * self._rate)
        allowed = tokens >= 1
        if allowed:
            tokens -= 1
        self._buckets[key] = (tokens, now)
        retry_after = 0.0 if allowed else (1 - tokens) / self._rate
        reset = (self._burst - tokens) / self._rate
        return Decision(allowed, math.floor(tokens), retry_after, reset)
