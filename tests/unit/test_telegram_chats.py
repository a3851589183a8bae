"""What the bot reads as a chat confirming a subscription: the command, and which chat sent it."""

from __future__ import annotations

import pytest

from app.keys.telegram_chats import code_sha256, same_chat, start_code

CODE = "Xq3vB9_k-2mPzT8wQ4rLcA"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (f"/start {CODE}", CODE),
        (f"/start@ocrstream_bot {CODE}", CODE),  # in a group, commands name the bot
        (f"  /start {CODE}  ", CODE),
        ("/start", None),
        (f"/start {CODE} and more", None),
        (f"/stop {CODE}", None),
        ("/start short", None),
        (f"/start {CODE}<script>", None),
        (None, None),
        (42, None),
    ],
)
def test_only_a_start_command_with_a_code_is_read(text: object, code: str | None) -> None:
    assert start_code(text) == code


def test_a_chat_is_named_by_its_id_or_its_channel_name() -> None:
    group = {"id": -1001234567890, "type": "supergroup"}
    channel = {"id": -1009999999999, "type": "channel", "username": "AlertsChan"}
    assert same_chat("-1001234567890", group)
    assert not same_chat("-1001234567891", group)
    assert same_chat("@alertschan", channel) and same_chat("-1009999999999", channel)
    assert not same_chat("@other", channel)


def test_only_the_codes_hash_is_kept() -> None:
    digest = code_sha256(CODE)
    assert len(digest) == 64 and CODE not in digest and digest == code_sha256(CODE)
