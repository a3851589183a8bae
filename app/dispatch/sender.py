"""One delivery POST: bounded in time, refused for internal targets, never redirected."""

from __future__ import annotations

import json
from dataclasses import dataclass

import aiohttp
from yarl import URL

from app.dispatch.destinations import DeliveryRequest
from app.dispatch.policy import classify_status, parse_retry_after
from app.fetch import (
    FetchError,
    FetchLimits,
    check_url,
    describe_error,
    refusal_in,
    resolver_for,
)

# Why a bound: an error answer is read for its reason only; a huge one is not our problem.
_MAX_ERROR_BODY = 64 * 1024


@dataclass(frozen=True)
class Attempt:
    """What one POST came to: ``delivered``, ``retry``, ``give_up`` or ``inactive``, and why."""

    result: str
    # A stable word for metrics and dead letters: "2xx", "5xx", "4xx", "timeout", ...
    kind: str
    detail: str
    retry_after_s: float | None = None

    @property
    def rate_limited(self) -> bool:
        """Tell whether the endpoint said "too many, come back in N seconds" (a 429 with N)."""
        return self.kind == "429" and self.retry_after_s is not None


def new_webhook_session(
    limits: FetchLimits | None, timeout_s: float, concurrency: int
) -> aiohttp.ClientSession:
    """Return a session deliveries are posted with; ``limits`` None: any address (operator's)."""
    resolver = resolver_for(limits) if limits is not None else None
    # Why twice the slots: the slots, shared fairly per key, may briefly pass their setting
    # (app/dispatch/fair_slots.py); the pool of connections must not queue those sends.
    connector = aiohttp.TCPConnector(resolver=resolver, limit=2 * concurrency, ttl_dns_cache=60)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout_s),
        headers={"User-Agent": "ocrstream-webhooks/0.1"},
    )


async def post_delivery(
    session: aiohttp.ClientSession, request: DeliveryRequest, limits: FetchLimits
) -> Attempt:
    """POST ``request`` once; return what came of it (no secret in its words)."""
    try:
        if request.check_target:
            check_url(URL(request.url), limits)
        async with session.post(
            request.url, data=request.body, headers=request.headers, allow_redirects=False
        ) as answer:
            retry_after = parse_retry_after(answer.headers.get("Retry-After"))
            if not request.check_target:  # the Bot API: its answers are JSON with details
                return await _bot_api_attempt(answer, retry_after)
            return Attempt(
                classify_status(answer.status),
                _kind(answer.status),
                f"HTTP {answer.status}",
                retry_after,
            )
    except FetchError as exc:
        return Attempt("give_up", "refused", _scrub(str(exc), request))
    except TimeoutError:
        return Attempt("retry", "timeout", "no answer in time")
    except aiohttp.ClientError as exc:
        if refusal_in(exc) is not None:
            # Why give up: an address refused after DNS will not become public by retrying.
            return Attempt("give_up", "refused", _scrub(describe_error(exc), request))
        return Attempt("retry", "connection", _scrub(describe_error(exc), request))


async def _bot_api_attempt(answer: aiohttp.ClientResponse, retry_after: float | None) -> Attempt:
    """Read a Bot API answer: 429 says when to come back; 403 means the bot left the chat."""
    status = answer.status
    description = ""
    if status != 200:
        try:
            payload = json.loads(await answer.content.read(_MAX_ERROR_BODY))
            description = str(payload.get("description", ""))[:200]
            wait = (payload.get("parameters") or {}).get("retry_after")
            if isinstance(wait, int | float) and wait >= 0:
                retry_after = float(wait)
        except (ValueError, AttributeError, aiohttp.ClientError):
            pass  # not the Bot API's JSON: the status alone decides
    detail = f"HTTP {status}" + (f" ({description})" if description else "")
    if status == 403:
        return Attempt("inactive", _kind(status), detail)
    return Attempt(classify_status(status), _kind(status), detail, retry_after)


def _kind(status: int) -> str:
    # Why 429 on its own: a rate limit is waited out, not counted as a failed attempt.
    return "429" if status == 429 else f"{status // 100}xx"


def _scrub(detail: str, request: DeliveryRequest) -> str:
    for secret in request.secrets:
        detail = detail.replace(secret, "***")
    return detail
