"""Webhook signing, retry policy, commit points and the webhook commands. Pure functions."""

from __future__ import annotations

import random

import pytest

from app.dispatch.policy import backoff_delay, classify_status, parse_retry_after
from app.dispatch.progress import PartitionProgress
from app.dispatch.signing import new_secret, sign, verify
from app.keys.commands import ControlError, apply_command, check_webhooks
from app.settings import Settings
from models.delivery_jobs import WebhookPost, endpoint_id
from models.keys import CreateKey, KeyRecord, SetWebhooks

KEY_ID = "abcdef123456"
SECRET = "whsec_" + "s" * 40


def _key() -> KeyRecord:
    return apply_command(
        None, CreateKey(key_id=KEY_ID, key_hash="0" * 64, created_at=1.0, channels=("c",))
    )


def test_a_signature_verifies_only_for_its_body_secret_and_time() -> None:
    body = b'{"source":"ocr_result"}'
    header = sign(SECRET, 1_700_000_000, body)
    assert header.startswith("t=1700000000,v1=")
    assert verify(SECRET, header, body, now=1_700_000_100)
    assert not verify(SECRET, header, body + b" ", now=1_700_000_100)  # tampered body
    assert not verify("whsec_other", header, body, now=1_700_000_100)  # another key's secret
    assert not verify(SECRET, header, body, now=1_700_000_000 + 301)  # a replay, too late
    assert not verify(SECRET, "v1=abc", body)  # no timestamp
    assert new_secret() != new_secret() and len(new_secret()) > 40


@pytest.mark.parametrize(
    ("status", "result"),
    [
        (200, "delivered"),
        (204, "delivered"),
        (500, "retry"),
        (503, "retry"),
        (429, "retry"),
        (408, "retry"),
        (301, "give_up"),
        (400, "give_up"),
        (404, "give_up"),
        (410, "give_up"),
    ],
)
def test_answers_are_classified(status: int, result: str) -> None:
    assert classify_status(status) == result


def test_backoff_grows_exponentially_with_full_jitter_and_a_cap() -> None:
    rng = random.Random(7)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (8, 30.0), (20, 30.0)]:
        delays = [backoff_delay(attempt, 0.5, 30.0, rng=rng) for _ in range(200)]
        assert 0 <= min(delays) and max(delays) <= ceiling
        assert max(delays) > ceiling * 0.8  # jitter spreads over the whole range
    # Retry-After is honoured, within the cap.
    assert backoff_delay(1, 0.5, 30.0, retry_after_s=12) == 12
    assert backoff_delay(1, 0.5, 30.0, retry_after_s=3600) == 30.0
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after("Wed, 21 Oct 2026 07:28:00 GMT") is None
    assert parse_retry_after(None) is None


def test_the_commit_point_never_passes_an_unfinished_record() -> None:
    progress = PartitionProgress()
    assert progress.commit_point() is None
    for offset in range(10, 15):
        progress.begin(offset)
    progress.finish(11)
    progress.finish(12)
    assert progress.commit_point() == 10  # 10 is still under way: a crash repeats 10..14
    progress.finish(10)
    assert progress.commit_point() == 13
    progress.finish(14)
    progress.finish(13)
    assert progress.commit_point() == 15 and progress.pending == 0


def test_webhooks_need_a_secret_first_then_keep_it_until_rotated() -> None:
    with pytest.raises(ControlError, match="no webhook secret"):
        apply_command(_key(), SetWebhooks(key_id=KEY_ID, urls=("https://a.example/h",)))
    urls = ("https://a.example/h", "https://b.example/h", "https://a.example/h")
    record = apply_command(_key(), SetWebhooks(key_id=KEY_ID, urls=urls, secret=SECRET))
    assert record.webhooks == ("https://a.example/h", "https://b.example/h")
    kept = apply_command(record, SetWebhooks(key_id=KEY_ID, urls=("https://c.example/h",)))
    assert kept.webhook_secret == SECRET
    cleared = apply_command(kept, SetWebhooks(key_id=KEY_ID, urls=()))
    assert cleared.webhooks == () and cleared.webhook_secret == SECRET
    with pytest.raises(ValueError):
        SetWebhooks(key_id=KEY_ID, urls=("ftp://a.example/h",))
    with pytest.raises(ValueError):
        SetWebhooks(key_id=KEY_ID, urls=tuple(f"https://h{n}.example/" for n in range(11)))


def test_webhook_urls_to_internal_addresses_are_refused_unless_allowed() -> None:
    strict = Settings(fetch_allow_private=False)
    for url in ("http://127.0.0.1:8080/h", "http://10.0.0.5/h", "http://169.254.169.254/latest"):
        with pytest.raises(ControlError, match="refused"):
            check_webhooks(strict, (url,))
    check_webhooks(strict, ("https://hooks.example.com/ocr",))  # names are checked on connect
    check_webhooks(Settings(fetch_allowed_networks="10.0.0.0/8"), ("http://10.0.0.5/h",))


def test_an_endpoint_keeps_one_id_and_a_delivery_keeps_one_id_across_retries() -> None:
    job = WebhookPost(key_id=KEY_ID, url="https://a.example/h", event_id="post:x:1", event={})
    again = WebhookPost(key_id=KEY_ID, url="https://a.example/h", event_id="post:x:1", event={})
    other = WebhookPost(key_id=KEY_ID, url="https://b.example/h", event_id="post:x:1", event={})
    assert job.endpoint_id == endpoint_id(KEY_ID, "https://a.example/h") != other.endpoint_id
    assert job.delivery_id == again.delivery_id != other.delivery_id
    assert KEY_ID not in job.endpoint_id  # record keys say nothing about the key
