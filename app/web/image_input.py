"""The ``image`` field of POST /ocr: a data URI or raw base64, decoded strictly."""

from __future__ import annotations

import base64
import binascii
import re

_DATA_URI = re.compile(r"^data:([^;,]*)(;[^,]*)?,", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")


class ImageInputError(ValueError):
    """The ``image`` field is not a base64 image; the message says why."""


class ImageInputTooLargeError(ImageInputError):
    """The decoded image would be larger than allowed."""


def decode_image_field(value: str, max_bytes: int) -> bytes:
    """Return the bytes of a ``data:image/...;base64,`` URI or of raw base64."""
    payload = value
    match = _DATA_URI.match(value)
    if match is not None:
        if not match.group(1).lower().startswith("image/"):
            raise ImageInputError("data URI must be of an image type (data:image/...)")
        if not (match.group(2) or "").lower().endswith(";base64"):
            raise ImageInputError("data URI must be base64-encoded (;base64,)")
        payload = value[match.end() :]
    elif value.startswith("data:"):
        raise ImageInputError("malformed data URI")
    payload = _WHITESPACE.sub("", payload)
    if not payload:
        raise ImageInputError("image is empty")
    # Why before decoding: refuse oversized input without allocating its decoded copy.
    if len(payload) * 3 // 4 - payload[-2:].count("=") > max_bytes:
        raise ImageInputTooLargeError(f"image is over the {max_bytes:,} byte limit")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ImageInputError("image is not valid base64") from None
