"""Records that could not be processed, with the reason (``dead_letter`` topic)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

Stage = Literal["posts", "ocr", "filter", "control", "webhook"]

# Why: a dead letter must stay small even when the bad record is huge (e.g. a 10 MB text).
MAX_RECORD_EXCERPT_CHARS = 4096


class DeadLetter(BaseModel):
    """Why a record was rejected, and where it came from."""

    source: Literal["dead_letter"] = "dead_letter"
    stage: Stage
    reason: str
    topic: str
    partition: int | None = None
    offset: int | None = None
    record: str = ""
    image_url: str | None = None
    # Set for stage "webhook": where the delivery was going and how many attempts it had.
    webhook_url: str | None = None
    attempts: int | None = None

    @staticmethod
    def excerpt(raw: bytes | str | None) -> str:
        """Return the start of a raw record, decoded leniently, for humans to read."""
        if raw is None:
            return ""
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        return text[:MAX_RECORD_EXCERPT_CHARS]
