"""Every record a valid post or image leads to fits Kafka's record limit, or is refused.

Generated posts (Hypothesis) up to the text limit, in the characters JSON makes largest
(control characters escape to six bytes), with as many images as a post may have; generated OCR
output as large as an image can make it. With Kafka's default 1 MB everything fits; under a
smaller limit a bundle is split within it, and only a record over it alone is refused.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.kafka.limits import (
    KAFKA_DEFAULT_MAX_MESSAGE_BYTES,
    PRODUCER_MAX_REQUEST_BYTES,
    oversize,
    record_size,
)
from app.ocr.engine import OcrOutput
from app.ocr.reading import MAX_QR_CODES, MAX_QR_TEXT_CHARS, MAX_TEXT_CHARS, reading_of
from app.pipeline.candidates import bundle_bytes, bundles
from app.pipeline.posts import parse_post, plan_post
from app.pipeline.records import RecordRefused
from models.dead_letter import DeadLetter
from models.delivery_jobs import WebhookPost
from models.events import Candidate, event_json
from models.posts import MAX_IMAGE_URL_CHARS

MAX_TEXT = 100_000
MAX_IMAGES = 16
DEFAULT_LIMIT = min(KAFKA_DEFAULT_MAX_MESSAGE_BYTES, PRODUCER_MAX_REQUEST_BYTES)
# The characters a JSON encoder makes largest, and ordinary ones.
WIDE = st.sampled_from(["\x01", "\x1f", '"', "\\", "\u2028", "é", "😀", "a"])


@st.composite
def long_texts(draw: st.DrawFn, max_chars: int) -> str:
    """Return text of any length up to ``max_chars``: a random start, then one wide character."""
    start = draw(st.text(max_size=50))
    fill = draw(st.integers(0, max_chars - len(start)))
    return start + draw(WIDE) * fill


@st.composite
def raw_posts(draw: st.DrawFn) -> bytes:
    """Return a post record as a hostile producer may write it, within the validated limits."""
    url = "https://img.example/" + "a%" * ((MAX_IMAGE_URL_CHARS - 30) // 2)
    images = [url[: draw(st.integers(25, MAX_IMAGE_URL_CHARS))] for _ in range(MAX_IMAGES)]
    post = {
        "source": draw(st.sampled_from(["x", "telegram", "discord"])),
        "mid": draw(st.text(min_size=1, max_size=256)),
        "sid": draw(st.text(min_size=1, max_size=256)),
        "link": draw(st.text(max_size=2048)),
        "text": draw(long_texts(MAX_TEXT)),
        "images": draw(st.lists(st.sampled_from(images), max_size=MAX_IMAGES)),
    }
    return json.dumps(post).encode()


@st.composite
def ocr_outputs(draw: st.DrawFn) -> OcrOutput:
    """Return what the engine may read from a hostile image: long lines, many long QR codes."""
    line = draw(long_texts(3000))
    lines = [(line, 0.9)] * draw(st.integers(0, 2 * MAX_TEXT_CHARS // max(1, len(line))))
    code = draw(long_texts(8192))
    return OcrOutput(lines=lines[:2000], qr=[code] * draw(st.integers(0, 2 * MAX_QR_CODES)))


def _fits(value: bytes, limit: int = DEFAULT_LIMIT, key: bytes | None = b"k" * 256) -> bool:
    return oversize(key, value, [("ocrstream-event-id", b"e" * 600)], limit) is None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=raw_posts(), output=ocr_outputs())
def test_everything_a_valid_post_and_its_images_lead_to_fits_kafkas_default_limit(
    raw: bytes, output: OcrOutput
) -> None:
    try:
        post = parse_post(raw, MAX_TEXT)
    except RecordRefused:
        return  # not a valid post: a dead letter of its own (bounded, below)
    plan = plan_post(post, MAX_IMAGES)
    for value, _ in bundles([plan.candidate], bundle_bytes(DEFAULT_LIMIT)):
        assert _fits(value)
    delivered = {**plan.candidate.event, "keyword_matches": ["k" * 100] * 100}
    assert _fits(event_json(delivered))
    webhook = WebhookPost(
        key_id="a" * 32, url="https://h/" + "p" * 1990, event_id="e", event=delivered
    )
    assert _fits(webhook.model_dump_json().encode())
    reading = reading_of(output)
    assert all(len(code.text) <= MAX_QR_TEXT_CHARS for code in reading.qr or [])
    for job in plan.jobs:
        assert _fits(job.model_dump_json().encode())
        result = reading.result(job.image_url, job.ref)
        assert _fits(result.model_dump_json().encode())
        candidate = Candidate(
            event=result.model_dump(mode="json"), match_text=job.post_text, event_id="e"
        )
        assert _fits(candidate.model_dump_json().encode())


@settings(max_examples=100, deadline=None)
@given(
    texts=st.lists(long_texts(20_000), min_size=1, max_size=30),
    limit=st.integers(4_096, 300_000),
)
def test_bundles_fit_any_limit_and_only_a_candidate_too_large_alone_is_refused(
    texts: list[str], limit: int
) -> None:
    candidates = [Candidate(event={"source": "x", "text": text}) for text in texts]
    found = bundles(candidates, bundle_bytes(limit))
    assert [i for _, members in found for i in members] == list(range(len(candidates)))
    for value, members in found:
        size = oversize(b"posts-0", value, [], limit)
        if size is not None:
            # Refused by the outbox: the outcome of that one candidate alone, never its peers'.
            [alone] = members
            own = candidates[alone].model_dump_json().encode()
            assert record_size(b"posts-0", own, []) > limit - 1024


@given(
    raw=st.binary(max_size=2000) | long_texts(200_000),
    reason=long_texts(5000),
    limit=st.integers(9_216, 2_000_000),
)
@settings(max_examples=50, deadline=None)
def test_a_dead_letter_fits_its_topic_whatever_it_holds(
    raw: bytes | str, reason: str, limit: int
) -> None:
    letter = DeadLetter(
        stage="posts",
        reason=reason,
        topic="p" * 249,
        record=DeadLetter.excerpt(raw),
        record_bytes=DeadLetter.size_of(raw),
        image_url="\x01" * 2048,
        webhook_url="https://h/" + "\x01" * 1990,
    )
    assert len(letter.reason) <= 1000
    value = letter.cut_to(limit - 1024)
    assert len(value) <= limit - 1024
    assert DeadLetter.model_validate_json(value).record_bytes == DeadLetter.size_of(raw)


def test_a_post_of_emoji_written_as_utf8_stays_within_the_limit_when_delivered() -> None:
    # Found by the property above: 100,000 emoji are 400 KB as a producer writes them, and
    # were a 1.2 MB delivery once ASCII-escaped (12 bytes each); now 400 KB again.
    raw = json.dumps(
        {"source": "x", "mid": "1", "sid": "1", "link": "", "text": "😀" * MAX_TEXT},
        ensure_ascii=False,
    ).encode()
    plan = plan_post(parse_post(raw, MAX_TEXT), MAX_IMAGES)
    delivered = event_json({**plan.candidate.event, "keyword_matches": ["k" * 100] * 100})
    assert _fits(delivered) and len(delivered) < 420_000
