"""Secrets that travel through Kafka, sealed with the operator's key (AES-256-GCM).

A webhook signing secret is in the control command that sets it and in the key's record in the
keys changelog: anyone who can read those topics could sign deliveries as ocrstream. So it is
sealed before it is sent: ``sealed:v1:<key id>:<base64url of nonce, ciphertext and tag>``, with
the key's id as associated data, so a sealed secret copied into another key's record does not
open. ``OCRSTREAM_SECRET_KEY`` holds one key, or several comma-separated while rotating: the
first seals, every one opens, and the key id in each sealed value says which.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path

from Crypto.Cipher import AES

from app.settings import Settings

SEALED_PREFIX = "sealed:v1:"
KEY_BYTES = 32
_NONCE_BYTES = 12
_TAG_BYTES = 16
_SETTING = "OCRSTREAM_SECRET_KEY"


class SecretKeyError(ValueError):
    """The operator's key is missing, malformed, or not the one a secret was sealed with."""


def new_secret_key() -> str:
    """Return a fresh operator key: 32 random bytes, base64url (what OCRSTREAM_SECRET_KEY takes)."""
    return _b64(secrets.token_bytes(KEY_BYTES))


def key_id_of(key: bytes) -> str:
    """Return the public id of an operator key (8 hex digits of a hash; says nothing of it)."""
    return hashlib.sha256(b"ocrstream secret key id\0" + key).hexdigest()[:8]


def is_sealed(stored: str) -> bool:
    """Tell whether a stored secret is sealed (older records hold theirs in clear)."""
    return stored.startswith(SEALED_PREFIX)


def sealed_with(stored: str) -> str | None:
    """Return the id of the key a stored secret was sealed with (None: not sealed)."""
    if not is_sealed(stored):
        return None
    return stored[len(SEALED_PREFIX) :].partition(":")[0]


@dataclass(frozen=True)
class SecretBox:
    """Seals with the first of the operator's keys and opens with any of them."""

    keys: dict[str, bytes]
    sealing_id: str

    @classmethod
    def from_setting(cls, value: str) -> SecretBox:
        """Build the box from the setting's value; raise SecretKeyError saying what is wrong."""
        keys: dict[str, bytes] = {}
        parts = [part.strip() for part in value.split(",") if part.strip()]
        if not parts:
            raise SecretKeyError(f"{_SETTING} is empty: {_HOW_TO_MAKE}")
        for position, part in enumerate(parts, 1):
            try:
                key = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
            except (binascii.Error, ValueError):
                key = b""
            # Why not the value in the message: it is a secret, and messages reach logs.
            if len(key) != KEY_BYTES:
                raise SecretKeyError(
                    f"{_SETTING}: key {position} is not {KEY_BYTES} bytes of base64url "
                    f"({_HOW_TO_MAKE})"
                )
            keys[key_id_of(key)] = key
        return cls(keys=keys, sealing_id=key_id_of(_first(parts)))

    def seal(self, plain: str, context: str) -> str:
        """Return ``plain`` sealed with the first key, bound to ``context`` (the key's id)."""
        nonce = secrets.token_bytes(_NONCE_BYTES)
        cipher = AES.new(self.keys[self.sealing_id], AES.MODE_GCM, nonce=nonce)
        cipher.update(context.encode())
        ciphertext, tag = cipher.encrypt_and_digest(plain.encode())
        return f"{SEALED_PREFIX}{self.sealing_id}:{_b64(nonce + ciphertext + tag)}"

    def open(self, stored: str, context: str) -> str:
        """Return the secret in ``stored`` (as is when not sealed); SecretKeyError if it fails."""
        if not is_sealed(stored):
            return stored
        key_id, _, body = stored[len(SEALED_PREFIX) :].partition(":")
        key = self.keys.get(key_id)
        if key is None:
            raise SecretKeyError(
                f"a secret is sealed with key {key_id[:8]}, which {_SETTING} does not hold "
                f"(it holds {', '.join(self.keys)}): set the key it was sealed with, after the "
                "new one while rotating"
            )
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            nonce, ciphertext, tag = (
                raw[:_NONCE_BYTES],
                raw[_NONCE_BYTES:-_TAG_BYTES],
                raw[-_TAG_BYTES:],
            )
            cipher = AES.new(key, AES.MODE_GCM, nonce=nonce)
            cipher.update(context.encode())
            return cipher.decrypt_and_verify(ciphertext, tag).decode()
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise SecretKeyError(
                f"a secret sealed with key {key_id[:8]} does not open: it was changed, or "
                "belongs to another record"
            ) from None

    def reseal(self, stored: str, context: str) -> str:
        """Return ``stored`` sealed with the first key (a secret in clear, or under an old key)."""
        if stored and sealed_with(stored) != self.sealing_id:
            return self.seal(self.open(stored, context), context)
        return stored


_HOW_TO_MAKE = "make one with `ocrstream secret-key`"


def open_secret(box: SecretBox | None, stored: str, context: str) -> str:
    """Return the secret in ``stored``; without a box only one in clear (an older record)."""
    if box is not None:
        return box.open(stored, context)
    if is_sealed(stored):
        raise SecretKeyError(f"{_SETTING} is not set: a sealed secret cannot be opened")
    return stored


def box_for(settings: Settings) -> SecretBox:
    """Return the box of the operator's key; raise SecretKeyError when unset or malformed."""
    if settings.secret_key is not None:
        return SecretBox.from_setting(settings.secret_key.get_secret_value())
    if settings.secret_key_file:
        try:
            value = Path(settings.secret_key_file).read_text()
        except OSError as exc:
            raise SecretKeyError(
                f"{_SETTING}_FILE {settings.secret_key_file[:200]} cannot be read: "
                f"{exc.strerror or exc}"
            ) from None
        return SecretBox.from_setting(value)
    raise SecretKeyError(
        f"{_SETTING} is not set: webhook signing secrets are sealed with it before they reach "
        f"Kafka; {_HOW_TO_MAKE}, and give every worker and the CLI the same (or name a file "
        f"holding it in {_SETTING}_FILE)"
    )


def _first(parts: list[str]) -> bytes:
    return base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
