"""What each delivery attempt sends (request_for), and Telegram's pace (ChatPace)."""

from __future__ import annotations

import json

import pytest

from app.dispatch.destinations import (
    NotDeliverable,
    TelegramBot,
    channel_record_for,
    request_for,
)
from app.dispatch.pace import ChatPace
from app.dispatch.signing import SIGNATURE_HEADER, verify
from app.sealing import SecretBox, SecretKeyError, new_secret_key
from models.delivery_jobs import (
    HeldChannelSend,
    TelegramMessage,
    WebhookPost,
    delivery_job_adapter,
)
from models.keys import KeyRecord, TelegramSubscription

SECRET = "whsec_" + "k" * 40
BOX = SecretBox.from_setting(new_secret_key())
BOT = TelegramBot("http://bot-api.internal:8081/", "42:secret-token")
EVENT = {"source": "x", "mid": "1", "sid": "2", "link": "", "text": "gm $PEPE", "images": []}
# A subscription its chat confirmed (a pending one is never sent to: tested below).
SUBSCRIPTION = TelegramSubscription(
    id="sub1", chat_id="-1001", created_at=0, status="ACTIVE", confirmed_at=1
)


def _key(**changes: object) -> KeyRecord:
    record = KeyRecord(
        key_id="abcd1234",
        key_hash="0" * 64,
        created_at=0,
        webhooks=("https://a.example/json", "https://d.example/discord"),
        webhook_formats={"https://d.example/discord": "discord"},
        webhook_secret=BOX.seal(SECRET, "abcd1234"),
        telegram=SUBSCRIPTION,
    )
    return record.model_copy(update=changes)


def _job(**fields: object) -> WebhookPost | TelegramMessage:
    job = delivery_job_adapter.validate_python(
        {"key_id": "abcd1234", "event_id": "post:x:1", "event": EVENT, **fields}
    )
    assert isinstance(job, WebhookPost | TelegramMessage)
    return job


def test_json_is_signed_and_discord_is_its_own_body_unsigned() -> None:
    signed = request_for(_job(url="https://a.example/json"), _key(), 2, BOT, BOX)
    assert json.loads(signed.body) == EVENT and signed.check_target
    assert verify(SECRET, signed.headers[SIGNATURE_HEADER], signed.body)
    discord = request_for(_job(url="https://d.example/discord"), _key(), 1, BOT, BOX)
    assert SIGNATURE_HEADER not in discord.headers
    assert json.loads(discord.body)["embeds"][0]["description"] == "gm $PEPE"


def test_the_secret_opens_only_with_the_operators_key_and_for_its_own_key() -> None:
    job = _job(url="https://a.example/json")
    with pytest.raises(SecretKeyError, match="does not hold"):
        request_for(job, _key(), 1, BOT, SecretBox.from_setting(new_secret_key()))
    with pytest.raises(SecretKeyError, match="OCRSTREAM_SECRET_KEY is not set"):
        request_for(job, _key(), 1, BOT, None)
    # Another key's sealed secret, copied into this key's record, does not open.
    borrowed = _key(webhook_secret=BOX.seal("whsec_" + "z" * 40, "otherkey"))
    with pytest.raises(SecretKeyError, match="does not open"):
        request_for(job, borrowed, 1, BOT, BOX)
    # A record written before sealing existed still signs (until its next change seals it).
    legacy = request_for(job, _key(webhook_secret=SECRET), 1, BOT, BOX)
    assert verify(SECRET, legacy.headers[SIGNATURE_HEADER], legacy.body)


def test_telegram_goes_to_the_operators_bot_and_names_no_token() -> None:
    request = request_for(_job(subscription_id="sub1", chat_id="-1001"), _key(), 1, BOT, BOX)
    assert request.url == "http://bot-api.internal:8081/bot42:secret-token/sendMessage"
    assert not request.check_target  # the operator's address, not a key holder's
    body = json.loads(request.body)
    assert (body["chat_id"], body["parse_mode"]) == ("-1001", "HTML")
    assert request.shown_as == "telegram:-1001" and "secret-token" not in repr(request)


@pytest.mark.parametrize(
    ("job", "key", "why"),
    [
        (_job(url="https://a.example/json"), None, "revoked"),
        (_job(url="https://a.example/json"), _key(revoked=True), "revoked"),
        (_job(url="https://gone.example/"), _key(), "removed"),
        (_job(subscription_id="old", chat_id="-1001"), _key(), "replaced"),
        (_job(subscription_id="sub1", chat_id="-1001"), _key(telegram=None), "removed"),
        (
            _job(subscription_id="sub1", chat_id="-1001"),
            _key(telegram=SUBSCRIPTION.model_copy(update={"status": "INACTIVE"})),
            "inactive",
        ),
        (
            _job(subscription_id="sub1", chat_id="-1001"),
            _key(telegram=SUBSCRIPTION.model_copy(update={"status": "PENDING"})),
            "pending",
        ),
    ],
)
def test_a_job_the_key_no_longer_wants_is_not_sent(
    job: WebhookPost | TelegramMessage, key: KeyRecord | None, why: str
) -> None:
    with pytest.raises(NotDeliverable, match=why):
        request_for(job, key, 1, BOT, BOX)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_pace_spaces_each_chat_and_the_bot_and_honours_a_hold() -> None:
    clock = Clock()
    pace = ChatPace(chat_interval_s=1.0, group_interval_s=3.0, max_per_s=10, clock=clock)
    assert pace.reserve_chat("-1001") == 0  # a group
    assert pace.reserve_chat("-1001") == 3.0  # its next turn
    assert pace.reserve_chat("-1001") == 6.0  # queued, not refused
    assert pace.reserve_chat("555") == 0  # a group far behind holds up no other chat
    assert pace.reserve_chat("555") == 1.0  # a private chat: one a second
    # The bot's own pace, taken when a send is due: ten a second, all chats together.
    assert [pace.reserve_bot() for _ in range(3)] == pytest.approx([0, 0.1, 0.2])
    clock.now += 10
    pace.sent("777")
    assert pace.reserve_chat("777") == 1.0  # the send itself pushes the next turn
    pace.hold("555", 30)  # Telegram said retry_after 30
    assert pace.reserve_chat("555") == 30


def test_a_held_channel_delivery_becomes_the_record_the_channel_would_have_had() -> None:
    key = KeyRecord(key_id="key00001", key_hash="0" * 64, created_at=0, channels=("chan-k1",))
    job = HeldChannelSend(
        key_id="key00001", event_id="ocr:x:1:abc", event={"source": "ocr_result", "text": "é"},
        channel="chan-k1", channel_key="1796",
    )  # fmt: skip
    record = channel_record_for(job, key)
    assert (record.topic, record.key) == ("chan-k1", b"1796")
    assert json.loads(record.value) == job.event and b" " not in record.value
    assert record.headers == [("ocrstream-event-id", b"ocr:x:1:abc")]
    assert job.destination == "channel:chan-k1"
    moved = key.model_copy(update={"channels": ("other",)})
    for gone in (None, key.model_copy(update={"revoked": True}), moved):
        with pytest.raises(NotDeliverable):
            channel_record_for(job, gone)


def test_a_job_is_one_of_three_kinds_and_jobs_written_before_kinds_still_decode() -> None:
    common = {"key_id": "abcd1234", "event_id": "post:x:1", "event": EVENT}
    # As the version before `kind` wrote them: every field, the unused ones null or "".
    before = {"url": "", "subscription_id": None, "chat_id": None, "channel": None}
    old = [
        ({**before, "url": "https://a.example/h"}, WebhookPost, "https://a.example/h"),
        (
            {**before, "subscription_id": "s1", "chat_id": "-1001"},
            TelegramMessage,
            "telegram:-1001",
        ),
        ({**before, "channel": "chan", "channel_key": "7"}, HeldChannelSend, "channel:chan"),
    ]
    for fields, kind, destination in old:
        job = delivery_job_adapter.validate_python({**common, **fields})
        assert type(job) is kind and job.destination == destination
        again = delivery_job_adapter.validate_json(job.model_dump_json())
        assert again == job and again.endpoint_id == job.endpoint_id
    with pytest.raises(ValueError, match="does not match any of the expected tags"):
        delivery_job_adapter.validate_python({**common, "kind": "carrier-pigeon"})
    with pytest.raises(ValueError, match="chat_id"):
        delivery_job_adapter.validate_python({**common, "kind": "telegram"})
