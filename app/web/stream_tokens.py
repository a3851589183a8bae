"""Stream tokens: what a browser's ``EventSource`` (which cannot send headers) opens /stream with.

A token names its key and its expiry, signed with HMAC-SHA256 under a secret no client knows:
the server's ``OCRSTREAM_STREAM_TOKEN_SECRET`` (if set) together with the key's own stored hash.
So any worker can check a token without shared state, a token is scoped to its key, and it dies
with the key: a revoked key is refused, and a key made again gets another hash. Pure.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from dataclasses import dataclass

from models.keys import KeyRecord

PREFIX = "ost"
_TOKEN = re.compile(r"^ost_([a-z0-9]{8,32})_([0-9]{1,12})_([A-Za-z0-9_-]{43})$")


class TokenError(ValueError):
    """The token is not one this server signed, or it has expired."""


@dataclass(frozen=True)
class Token:
    """A minted token and when it stops working (Unix seconds)."""

    token: str
    expires_at: int


def mint(record: KeyRecord, ttl_s: float, server_secret: str, now: float | None = None) -> Token:
    """Return a token opening ``record``'s stream for ``ttl_s`` seconds."""
    expires_at = int((time.time() if now is None else now) + ttl_s)
    signature = _sign(record, expires_at, server_secret)
    return Token(f"{PREFIX}_{record.key_id}_{expires_at}_{signature}", expires_at)


def key_id_of(token: str) -> str:
    """Return the key id a token names; raise TokenError for anything else."""
    match = _TOKEN.fullmatch(token)
    if match is None:
        raise TokenError("not a stream token")
    return match.group(1)


def verify(
    token: str, record: KeyRecord | None, server_secret: str, now: float | None = None
) -> None:
    """Raise TokenError unless ``token`` was signed for ``record`` and has not expired."""
    match = _TOKEN.fullmatch(token)
    if match is None or record is None or record.key_id != match.group(1):
        raise TokenError("invalid stream token")
    expires_at = int(match.group(2))
    expected = _sign(record, expires_at, server_secret)
    if not hmac.compare_digest(expected.encode(), match.group(3).encode()):
        raise TokenError("invalid stream token")
    if (time.time() if now is None else now) >= expires_at:
        raise TokenError("stream token expired; ask POST /stream/token for a new one")


def _sign(record: KeyRecord, expires_at: int, server_secret: str) -> str:
    key = f"{server_secret}\n{record.key_hash}".encode()
    digest = hmac.new(key, f"{record.key_id}\n{expires_at}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")
