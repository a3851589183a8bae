"""When to retry a webhook delivery, and how long to wait first. Pure functions."""

from __future__ import annotations

import random

# Why these: 408/425/429 say "later", 5xx say "not now"; any other answer will not change
# by itself, so repeating it would only delay the dead letter.
_RETRYABLE_STATUSES = {408, 425, 429}


def classify_status(status: int) -> str:
    """Return ``delivered``, ``retry`` or ``give_up`` for an HTTP answer to a delivery."""
    if 200 <= status < 300:
        return "delivered"
    if status in _RETRYABLE_STATUSES or status >= 500:
        return "retry"
    return "give_up"  # 3xx (redirects are not followed), 4xx


def backoff_delay(
    attempt: int,
    base_s: float,
    max_s: float,
    retry_after_s: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Return seconds to wait after failed ``attempt`` (1-based): exponential, full jitter.

    Full jitter (a uniform draw below the exponential cap) spreads the retries of many
    deliveries that failed together, so a recovering endpoint is not hit all at once. A
    ``Retry-After`` from the endpoint is honoured, up to ``max_s``.
    """
    ceiling = min(max_s, base_s * 2 ** (attempt - 1))
    delay = (rng or random).uniform(0, ceiling)
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, max_s))
    return delay


def parse_retry_after(value: str | None) -> float | None:
    """Return the seconds of a ``Retry-After: <seconds>`` header, or None."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None  # the HTTP-date form is rare for webhooks; the backoff applies instead
    return seconds if seconds >= 0 else None
