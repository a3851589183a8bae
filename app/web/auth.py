"""Who is calling: API keys (x-api-key) and the admin key (x-admin-key)."""

from __future__ import annotations

import hmac
import math

from aiohttp import web

from app.keys.apikeys import MalformedKeyError, key_id_of, key_matches
from app.web.context import KEYS, LIMITER, SETTINGS
from app.web.errors import RATE_HEADERS, ApiError
from models.keys import KeyRecord


def authenticate(request: web.Request) -> KeyRecord:
    """Return the caller's key record: 401 without a valid key, 403 for a revoked one."""
    api_key = request.headers.get("x-api-key", "").strip()
    if not api_key:
        raise ApiError(401, "missing x-api-key header")
    try:
        key_id = key_id_of(api_key)
    except MalformedKeyError:
        raise ApiError(401, "invalid API key") from None
    record = request.app[KEYS].get(key_id)
    # Why one message for all three: do not tell a caller which part of a guess was right.
    if record is None or not key_matches(api_key, record.key_hash):
        raise ApiError(401, "invalid API key")
    if record.revoked:
        raise ApiError(403, "API key revoked")
    return record


def rate_limit(request: web.Request, record: KeyRecord, response_headers: dict[str, str]) -> None:
    """Charge one request to the key; 429 with retry_after when it is over its rate."""
    decision = request.app[LIMITER].check(record.key_id)
    response_headers["X-RateLimit-Remaining"] = str(decision.remaining)
    response_headers["X-RateLimit-Reset"] = str(math.ceil(decision.reset_s))
    if not decision.allowed:
        raise retry_later(429, "rate limit exceeded", decision.retry_after_s, response_headers)


def retry_later(
    status: int, message: str, retry_after_s: float, headers: dict[str, str]
) -> ApiError:
    """Return a 429 or 503 answer: ``retry_after`` in the body and Retry-After (whole seconds)."""
    retry_after = max(1, math.ceil(retry_after_s))
    return ApiError(
        status,
        message,
        extra={"retry_after": retry_after},
        headers={**headers, "Retry-After": str(retry_after)},
    )


def require_admin(request: web.Request) -> None:
    """Allow only callers with the admin key (403 otherwise; 401 without the header)."""
    given = request.headers.get("x-admin-key", "")
    if not given:
        raise ApiError(401, "missing x-admin-key header")
    admin_key = request.app[SETTINGS].admin_key
    expected = admin_key.get_secret_value() if admin_key else ""
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise ApiError(403, "invalid admin key")


def api_key_caller(request: web.Request) -> tuple[KeyRecord, dict[str, str]]:
    """Authenticate and rate-limit an API-key request; return its key and rate headers."""
    record = authenticate(request)
    headers: dict[str, str] = {}
    # Why on the request: error answers after this point carry the rate headers too.
    request[RATE_HEADERS] = headers
    rate_limit(request, record, headers)
    return record, headers
