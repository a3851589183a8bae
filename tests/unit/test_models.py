"""Records at the topic boundaries: what is accepted, what is refused, the exact shapes."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from app.pipeline.delivery import delivery_for
from app.pipeline.posts import parse_post, plan_post
from app.pipeline.records import RecordRefused
from models.events import BuyCa, Candidate, OcrResult, Ref
from models.keys import KeyRecord
from models.posts import Post

MAX_TEXT = 100_000
POST = {
    "source": "x",
    "mid": 1843,
    "sid": "99",
    "link": "https://x.com/a/status/1843",
    "text": "gm",
    "images": ["https://pbs.example/a.jpg"],
    "timestamp": 1763980000000,
    "unknown_field": {"nested": True},
}


def test_post_tolerates_unknown_fields_and_numeric_ids() -> None:
    post = Post.model_validate(POST)
    assert post.mid == "1843"
    assert post.event()["timestamp"] == "2025-11-24T10:26:40Z"
    assert "unknown_field" not in post.event()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"source": "myspace"}, "source"),
        ({"mid": ""}, "mid"),
        ({"images": "https://a/b.png"}, "images"),
    ],
)
def test_invalid_posts_are_refused_with_the_field_named(
    change: dict[str, object], reason: str
) -> None:
    with pytest.raises(RecordRefused, match=reason):
        parse_post(json.dumps(POST | change).encode(), MAX_TEXT)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\x00\xff not json", "invalid post"),
        (None, "null value"),
        (b"", "empty value"),
        (b"  ", "empty value"),
        (b"null", "invalid post"),
        (b'"a string"', "invalid post"),
    ],
)
def test_non_posts_are_refused_with_a_reason(raw: bytes | None, reason: str) -> None:
    with pytest.raises(RecordRefused, match=reason):
        parse_post(raw, MAX_TEXT)


def test_a_bad_image_url_costs_only_that_image() -> None:
    images = ["ftp://host/a.png", "https://pbs.example/good.jpg", "file:///etc/passwd", 7, None]
    post = parse_post(json.dumps(POST | {"images": images}).encode(), MAX_TEXT)
    assert post.images == ["https://pbs.example/good.jpg"]
    assert [image.url for image in post.refused_images] == [
        "ftp://host/a.png",
        "file:///etc/passwd",
        "7",
        "None",
    ]
    assert all("http" in image.reason or "string" in image.reason for image in post.refused_images)
    assert "refused_images" not in post.event()  # the delivered post lists fetched images only

    plan = plan_post(post, max_images=16)
    assert [job.image_url for job in plan.jobs] == ["https://pbs.example/good.jpg"]
    assert [(error.error, error.image_url) for error, _ in plan.refused] == [
        ("refused", "ftp://host/a.png"),
        ("refused", "file:///etc/passwd"),
        ("refused", "7"),
        ("refused", "None"),
    ]
    assert plan.overflow is None


def test_a_producer_cannot_set_refused_images() -> None:
    smuggled = {"refused_images": [["https://x/y.png", "made up"]], "images": "not-a-list"}
    with pytest.raises(RecordRefused):
        parse_post(json.dumps(POST | smuggled).encode(), MAX_TEXT)
    post = parse_post(json.dumps(POST | {"refused_images": [["a", "b"]]}).encode(), MAX_TEXT)
    assert post.refused_images == ()


def test_images_past_the_cap_are_reported_once() -> None:
    images = [f"https://pbs.example/{i}.jpg" for i in range(20)] + ["ftp://x/y"]
    plan = plan_post(parse_post(json.dumps(POST | {"images": images}).encode(), MAX_TEXT), 16)
    assert len(plan.jobs) == 16 and len(plan.refused) == 1
    assert plan.overflow == "post has 21 images; only the first 16 are OCR'd (4 not read)"


def test_ocr_result_has_exactly_the_documented_shape() -> None:
    result = OcrResult(
        image_url="https://a/b.png",
        text="CA: 0xabc",
        ref=Ref(source="x", mid="1", sid="2", link="https://x.com/2/status/1"),
        buy_ca=[BuyCa(network="evm", address="0x" + "a" * 40)],
    )
    assert json.loads(result.model_dump_json()) == {
        "source": "ocr_result",
        "image_url": "https://a/b.png",
        "text": "CA: 0xabc",
        "ref": {"source": "x", "mid": "1", "sid": "2", "link": "https://x.com/2/status/1"},
        "buy_ca": [{"network": "evm", "address": "0x" + "a" * 40}],
    }


def _key(*keywords: str) -> KeyRecord:
    return KeyRecord(
        key_id="abcdef123456", key_hash="0" * 64, created_at=0, keywords=keywords, channels=("c",)
    )


def test_delivery_annotates_only_keys_with_keywords() -> None:
    candidate = Candidate(event={"source": "ocr_result", "text": "$PEPE"}, match_text="gm\n$PEPE")
    assert delivery_for(_key(), candidate) == candidate.event
    assert delivery_for(_key("pepe", "doge"), candidate) == {
        **candidate.event,
        "keyword_matches": ["pepe"],
    }
    assert delivery_for(_key("doge"), candidate) is None
    with pytest.raises(ValidationError):
        Candidate.model_validate({"event": "not a dict", "match_text": ""})
