"""Records that could not be processed, with the reason (``dead_letter`` topic)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, field_validator

Stage = Literal["posts", "ocr", "filter", "control", "webhook", "sightings"]

# Why: a dead letter must stay small even when the bad record is huge (e.g. a 10 MB text).
MAX_RECORD_EXCERPT_CHARS = 4096
# Why: a reason is a sentence or two for people; a reason quoting a huge input is cut.
MAX_REASON_CHARS = 1000
# What a reason and a URL are cut to when a dead letter would not fit its topic otherwise.
_SHORT_CHARS = 200


class DeadLetter(BaseModel):
    """Why a record was rejected, and where it came from."""

    source: Literal["dead_letter"] = "dead_letter"
    stage: Stage
    reason: str
    topic: str
    partition: int | None = None
    offset: int | None = None
    # The start of the rejected record (cut to MAX_RECORD_EXCERPT_CHARS, or shorter when the
    # dead-letter topic's own limit asks for it), and how many bytes the whole record had.
    record: str = ""
    record_bytes: int | None = None
    image_url: str | None = None
    # Set for stage "webhook": where the delivery was going and how many attempts it had.
    webhook_url: str | None = None
    attempts: int | None = None

    @field_validator("reason")
    @classmethod
    def _bounded_reason(cls, reason: str) -> str:
        return reason if len(reason) <= MAX_REASON_CHARS else reason[: MAX_REASON_CHARS - 1] + "…"

    @staticmethod
    def excerpt(raw: bytes | str | None) -> str:
        """Return the start of a raw record, decoded leniently, for humans to read."""
        if raw is None:
            return ""
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        return text[:MAX_RECORD_EXCERPT_CHARS]

    @staticmethod
    def size_of(raw: bytes | str | None) -> int | None:
        """Return the bytes of a raw record (UTF-8 for text), or None when there is none."""
        if raw is None:
            return None
        return len(raw.encode("utf-8", "replace") if isinstance(raw, str) else raw)

    def cut_to(self, max_bytes: int) -> bytes:
        """Return this letter as JSON of at most ``max_bytes`` (8 KB or more), cut if need be.

        Why: the dead-letter topic has a record limit too. The excerpt gives way first (halved
        until it fits, down to nothing), then the reason and the URLs (to their first 200
        characters); the stage, coordinates and sizes always stay.
        """
        letter = self
        value = letter.model_dump_json().encode()
        while len(value) > max_bytes and letter.record:
            letter = letter.model_copy(update={"record": letter.record[: len(letter.record) // 2]})
            value = letter.model_dump_json().encode()
        if len(value) > max_bytes:
            short = {
                name: text[:_SHORT_CHARS]
                for name in ("reason", "image_url", "webhook_url")
                if isinstance(text := getattr(letter, name), str)
            }
            value = letter.model_copy(update=short).model_dump_json().encode()
        return value
