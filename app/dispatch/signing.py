"""HMAC-SHA256 signatures of webhook bodies, and their verification (what receivers do)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

SIGNATURE_HEADER = "X-Ocrstream-Signature"
DELIVERY_HEADER = "X-Ocrstream-Delivery"
ATTEMPT_HEADER = "X-Ocrstream-Attempt"
# Why five minutes: long enough for clock skew, short enough that a captured request
# cannot be replayed later (the timestamp is inside the signed text).
DEFAULT_TOLERANCE_S = 300


def new_secret() -> str:
    """Return a fresh webhook signing secret (shown to the admin once)."""
    return "whsec_" + secrets.token_urlsafe(32)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """Return the signature header value: ``t=<unix seconds>,v1=<hex HMAC of "t.body">``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify(
    secret: str,
    header: str,
    body: bytes,
    now: float | None = None,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> bool:
    """Tell whether ``header`` signs ``body`` with ``secret`` and is recent enough."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))
