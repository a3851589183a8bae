"""One webhook POST: signed, bounded in time, refused for internal targets, never redirected."""

from __future__ import annotations

import time
from dataclasses import dataclass

import aiohttp
from yarl import URL

from app.fetch import (
    FetchError,
    FetchLimits,
    check_url,
    describe_error,
    refusal_in,
    resolver_for,
)
from app.webhooks.policy import classify_status, parse_retry_after
from app.webhooks.signing import ATTEMPT_HEADER, DELIVERY_HEADER, SIGNATURE_HEADER, sign


@dataclass(frozen=True)
class Attempt:
    """What one POST came to: ``delivered``, ``retry`` or ``give_up``, and why."""

    result: str
    # A stable word for metrics and dead letters: "2xx", "5xx", "4xx", "timeout", ...
    kind: str
    detail: str
    retry_after_s: float | None = None


def new_webhook_session(
    limits: FetchLimits, timeout_s: float, concurrency: int
) -> aiohttp.ClientSession:
    """Return the session webhooks are posted with (one per worker)."""
    connector = aiohttp.TCPConnector(
        resolver=resolver_for(limits), limit=concurrency, ttl_dns_cache=60
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout_s),
        headers={"User-Agent": "ocrstream-webhooks/0.1"},
    )


async def post_delivery(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    secret: str,
    delivery_id: str,
    attempt: int,
    limits: FetchLimits,
) -> Attempt:
    """POST ``body`` to ``url`` once, signed with ``secret``; return what came of it."""
    headers = {
        "Content-Type": "application/json",
        DELIVERY_HEADER: delivery_id,
        ATTEMPT_HEADER: str(attempt),
        SIGNATURE_HEADER: sign(secret, int(time.time()), body),
    }
    try:
        check_url(URL(url), limits)
        async with session.post(url, data=body, headers=headers, allow_redirects=False) as answer:
            result = classify_status(answer.status)
            retry_after = parse_retry_after(answer.headers.get("Retry-After"))
            return Attempt(
                result, f"{answer.status // 100}xx", f"HTTP {answer.status}", retry_after
            )
    except FetchError as exc:
        return Attempt("give_up", "refused", str(exc))
    except TimeoutError:
        return Attempt("retry", "timeout", "no answer in time")
    except aiohttp.ClientError as exc:
        if refusal_in(exc) is not None:
            # Why give up: an address refused after DNS will not become public by retrying.
            return Attempt("give_up", "refused", describe_error(exc))
        return Attempt("retry", "connection", describe_error(exc))
