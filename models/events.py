"""Events produced by the pipeline: the image job, ``ocr_result`` and the filter's input."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from models.posts import Post, PostSource

# Where a token address lives: docs/records.md says how each is recognised.
Network = Literal["evm", "solana", "tron", "ton", "sui", "aptos"]

# Why one list: README.md documents each kind, and a test keeps the two the same.
ErrorKind = Literal[
    "timeout",
    "http_status",
    "too_many_redirects",
    "refused",
    "too_large",
    "fetch_failed",
    "not_an_image",
    "corrupt_image",
    "too_many_pixels",
    "bad_dimensions",
    "unreadable",
    "ocr_crashed",
    "internal_error",
    "result_too_large",
]


class Ref(BaseModel):
    """Which post an image came from."""

    model_config = ConfigDict(frozen=True)

    source: PostSource
    mid: str
    sid: str
    link: str

    @classmethod
    def of(cls, post: Post) -> Ref:
        """Return the reference to a post."""
        return cls(source=post.source, mid=post.mid, sid=post.sid, link=post.link)


def omitted_while_absent(description: str | None = None) -> Any:
    """Return a field left out of the JSON while it is None (fields ours, not the product's)."""
    return Field(default=None, exclude_if=lambda value: value is None, description=description)


# An EVM chain an image or post names beside an address (docs/records.md: how it is told).
Chain = Literal["ethereum", "base", "bsc", "arbitrum", "polygon", "avalanche", "optimism"]


class BuyCa(BaseModel):
    """A token contract address found in text."""

    model_config = ConfigDict(frozen=True)

    network: Network
    address: str
    chain: Chain | None = omitted_while_absent(
        "for an evm address, the chain the text names for it (ours: absent when unknown)"
    )
    first_seen: bool | None = omitted_while_absent(
        "on a delivery, true when this event is the address's first sighting (ours)"
    )

    @property
    def identity(self) -> tuple[str, str]:
        """Return what makes two findings one address: the network and the address."""
        return self.network, self.address.lower() if self.network == "evm" else self.address


class ImageJob(BaseModel):
    """One image of one post, waiting for OCR (``images`` topic, keyed by URL)."""

    image_url: str
    ref: Ref
    # Why: keywords match post text too, so the filter needs it beside the OCR text.
    post_text: str = ""
    # The post's time (seconds since the epoch): the window an address it shows counts in.
    posted_at: float | None = None


class QrCode(BaseModel):
    """A QR code read in an image: its text, and what it holds."""

    model_config = ConfigDict(frozen=True)

    text: str
    kind: Literal["address", "uri", "link", "text"]


# A field of an ocr_result cut to its bound (app/ocr/reading.py): ``text`` (lines past the
# first 16,384 characters or 1,000 lines), ``qr`` (codes past 16, or a code's text past 1,024
# characters), ``buy_ca`` (addresses past 32).
TruncatedField = Literal["text", "qr", "buy_ca"]


class OcrResult(BaseModel):
    """The flat ``ocr_result`` event, exactly as the product documents it.

    ``qr`` and ``truncated`` are ours, not the product's: present only when the image had
    readable QR codes, or something was cut to its bound, so an event without either has
    exactly the documented shape.
    """

    source: Literal["ocr_result"] = "ocr_result"
    image_url: str
    text: str
    ref: Ref
    buy_ca: list[BuyCa] = Field(default_factory=list)
    qr: list[QrCode] | None = omitted_while_absent()
    truncated: list[TruncatedField] | None = omitted_while_absent()
    # Set on deliveries only (the ocr_result topic is written before the address book reads
    # the event): true when the event is the first sighting of an address it shows.
    first_seen: bool | None = omitted_while_absent()


class OcrError(BaseModel):
    """The flat ``ocr_error`` event: an image that could not be read, and why.

    Every image job yields exactly one ``ocr_result`` or one ``ocr_error`` (at least once, with
    the same idempotency key), so a consumer can account for every image of every post.
    """

    source: Literal["ocr_error"] = "ocr_error"
    image_url: str
    ref: Ref
    # A stable machine-readable kind (e.g. "timeout", "too_large", "not_an_image").
    error: ErrorKind
    # A sentence for humans: what happened, with the numbers (status, sizes, limits).
    reason: str


class Candidate(BaseModel):
    """A delivery candidate for the keyword filter: the event, and any more text to match."""

    event: dict[str, Any]
    # Text matched besides what the event shows itself (its ``text`` and its QR codes' texts):
    # for an ocr_result, its post's text; for a post, nothing. Why not all of it again: a post's
    # text is up to 100,000 characters, and carried twice a candidate could pass Kafka's record
    # limit. (Records written before this held every text here; they match the same keywords.)
    match_text: str = ""
    # Why: at-least-once delivery may repeat an event; its id lets consumers drop repeats.
    event_id: str = ""
    # The key of its channel records (the post's id). Records written before bundles have
    # none; the filter then uses the candidates record's own key.
    key: str | None = None
    # The addresses the address book records before the candidate is delivered (its text's
    # for a post, its buy_ca for an ocr_result), and the post's time: the window they count
    # in. Set only on the way through the book (the sightings topic).
    # At most 32: what an ocr_result's buy_ca keeps, and what a post's text gives the book.
    addresses: list[BuyCa] = Field(
        default_factory=list, max_length=32, exclude_if=lambda value: not value
    )
    seen_at: float | None = omitted_while_absent()
    _folded: tuple[str, ...] | None = PrivateAttr(default=None)

    def folded_texts(self) -> tuple[str, ...]:
        """Return every text keywords are matched against, case-folded (computed once)."""
        if self._folded is None:
            texts = [self.match_text, self.event.get("text")]
            codes = self.event.get("qr")
            if isinstance(codes, list):
                texts += [code.get("text") for code in codes if isinstance(code, dict)]
            self._folded = tuple(
                text.casefold() for text in texts if isinstance(text, str) and text
            )
        return self._folded


class CandidateBundle(BaseModel):
    """The candidates of one posts batch from one partition, in one candidates record.

    Why: the filter then reads one Kafka record for hundreds of posts. Per record, Faust's
    stream machinery costs more than matching a post against every key.
    """

    candidates: list[Candidate]


# Kafka record header carrying an event's idempotency key on ocr_result and channel topics.
EVENT_ID_HEADER = "ocrstream-event-id"


def event_json(value: Any) -> bytes:
    """Return an event as the JSON bytes every channel, stream and webhook carries.

    Why UTF-8, not ASCII escapes: an emoji escapes to 12 bytes ("\\ud83d\\ude00"), so a post
    of 100,000 emoji (400 KB as written) became a 1.2 MB delivery, over Kafka's 1 MB.
    """
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def post_event_id(post: Post) -> str:
    """Return the idempotency key of a post event (the same post always gets the same key)."""
    return f"post:{post.source}:{post.mid}"


def ocr_event_id(ref: Ref, image_url: str) -> str:
    """Return the idempotency key of an ocr_result: one per image of one post."""
    digest = hashlib.sha256(image_url.encode()).hexdigest()[:16]
    return f"ocr:{ref.source}:{ref.mid}:{digest}"
