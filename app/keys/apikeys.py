"""API key minting, hashing and parsing. Keys are never stored or logged, only their hashes."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string

KEY_PREFIX = "osk"
# Why letters and digits only: a key is then one word (double-click selects it whole) and
# "_" only ever separates its parts. 32 of 62 symbols carry 190 bits.
_SECRET_ALPHABET = string.ascii_letters + string.digits
_SECRET_LENGTH = 32
# Why the wider secret class: keys minted before 2026-11-26 used urlsafe base64 ("_", "-").
# The key id is public (it names channel topics); only the secret part is secret.
_KEY_RE = re.compile(r"^osk_([a-z0-9]{8,32})_([A-Za-z0-9_-]{16,128})$")


class MalformedKeyError(ValueError):
    """The string is not an ocrstream API key."""


def new_key_id() -> str:
    """Return a fresh, non-secret, topic-safe key id."""
    return secrets.token_hex(6)


def mint_key(key_id: str) -> str:
    """Return a new secret API key for ``key_id``."""
    secret = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(_SECRET_LENGTH))
    return f"{KEY_PREFIX}_{key_id}_{secret}"


def hash_key(api_key: str) -> str:
    """Return the SHA-256 hex digest under which a key is stored."""
    return hashlib.sha256(api_key.encode()).hexdigest()


def split_key(api_key: str) -> tuple[str, str]:
    """Return an API key's (key id, secret), or raise MalformedKeyError."""
    match = _KEY_RE.match(api_key)
    if match is None:
        raise MalformedKeyError("not an ocrstream API key")
    return match.group(1), match.group(2)


def key_id_of(api_key: str) -> str:
    """Return the key id embedded in an API key, or raise MalformedKeyError."""
    return split_key(api_key)[0]


def key_matches(api_key: str, stored_hash: str) -> bool:
    """Tell whether ``api_key`` hashes to ``stored_hash`` (constant time)."""
    return hmac.compare_digest(hash_key(api_key), stored_hash)
