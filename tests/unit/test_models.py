"""Records at the topic boundaries: what is accepted, what is refused, the exact shapes."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from agents.posts import parse_post
from app.delivery import delivery_for
from models.events import BuyCa, Candidate, OcrResult, Ref
from models.keys import KeyRecord
from models.posts import Post

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
        ({"images": ["ftp://host/a.png"]}, "http"),
        ({"images": ["file:///etc/passwd"]}, "http"),
        ({"images": "https://a/b.png"}, "images"),
    ],
)
def test_invalid_posts_are_refused_with_the_field_named(
    change: dict[str, object], reason: str
) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_post(json.dumps(POST | change).encode())


def test_non_json_is_refused() -> None:
    with pytest.raises(ValueError, match="invalid post"):
        parse_post(b"\x00\xff not json")


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
