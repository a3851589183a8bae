"""Control commands applied to key records (what the control agent does to the table)."""

from __future__ import annotations

import pytest

from app.keys.commands import ControlError, apply_command
from app.keys.keywords import KeywordError
from app.keys.telegram_chats import code_sha256
from models.keys import (
    AddKeywords,
    AddWebhook,
    ConfirmTelegram,
    CreateKey,
    KeyRecord,
    MarkTelegram,
    RemoveKeywords,
    RemoveWebhook,
    RevokeKey,
    SetChannels,
    SetTelegram,
    SetWebhooks,
    TelegramSubscription,
    control_command_adapter,
)

KEY_ID = "abcdef123456"


def _created() -> KeyRecord:
    return apply_command(
        None,
        CreateKey(key_id=KEY_ID, key_hash="0" * 64, created_at=1.0, channels=("chan-a",)),
    )


def test_create_then_add_and_remove_keywords() -> None:
    record = apply_command(_created(), AddKeywords(key_id=KEY_ID, keywords=("PEPE", " doge")))
    assert record.keywords == ("pepe", "doge")
    record = apply_command(record, AddKeywords(key_id=KEY_ID, keywords=("Pepe", "wif")))
    assert record.keywords == ("pepe", "doge", "wif")
    record = apply_command(record, RemoveKeywords(key_id=KEY_ID, keywords=("DOGE",)))
    assert record.keywords == ("pepe", "wif")
    record = apply_command(record, RemoveKeywords(key_id=KEY_ID, all=True))
    assert record.keywords == ()


def test_commands_on_unknown_or_revoked_keys_are_refused() -> None:
    with pytest.raises(ControlError, match="unknown key"):
        apply_command(None, AddKeywords(key_id=KEY_ID, keywords=("x",)))
    revoked = apply_command(_created(), RevokeKey(key_id=KEY_ID))
    assert revoked.revoked
    with pytest.raises(ControlError, match="revoked"):
        apply_command(revoked, AddKeywords(key_id=KEY_ID, keywords=("x",)))
    with pytest.raises(ControlError, match="already exists"):
        apply_command(
            _created(),
            CreateKey(key_id=KEY_ID, key_hash="1" * 64, created_at=2.0, channels=("c",)),
        )


def test_the_cap_is_enforced_where_commands_are_applied() -> None:
    record = apply_command(
        _created(), AddKeywords(key_id=KEY_ID, keywords=tuple(f"w{i}" for i in range(100)))
    )
    with pytest.raises(KeywordError, match="at most 100"):
        apply_command(record, AddKeywords(key_id=KEY_ID, keywords=("w100",)))


def test_set_channels_and_command_parsing() -> None:
    command = control_command_adapter.validate_json(
        '{"op": "set_channels", "key_id": "abcdef123456", "channels": ["a", "b"]}'
    )
    assert isinstance(command, SetChannels)
    assert apply_command(_created(), command).channels == ("a", "b")


def test_a_key_holder_adds_and_removes_webhooks_one_at_a_time_with_formats() -> None:
    secret = "whsec_" + "s" * 40
    first = AddWebhook(key_id=KEY_ID, url="https://a.example/h", secret=secret)
    record = apply_command(_created(), first)
    assert record.webhooks == ("https://a.example/h",) and record.webhook_secret == secret
    # A later secret is ignored: the key's other webhooks keep verifying.
    discord = AddWebhook(
        key_id=KEY_ID, url="https://d.example/h", format="discord", secret="whsec_" + "x" * 40
    )
    record = apply_command(record, discord)
    assert record.webhook_secret == secret
    assert record.webhook_formats == {"https://d.example/h": "discord"}
    # The same URL again changes its format; json is the default and is not stored.
    record = apply_command(record, AddWebhook(key_id=KEY_ID, url="https://d.example/h"))
    assert record.webhooks == ("https://a.example/h", "https://d.example/h")
    assert record.webhook_formats == {}
    record = apply_command(record, RemoveWebhook(key_id=KEY_ID, url="https://a.example/h"))
    assert record.webhooks == ("https://d.example/h",)
    with pytest.raises(ControlError, match="no webhook secret"):
        apply_command(_created(), AddWebhook(key_id=KEY_ID, url="https://a.example/h"))
    full = _created()
    for n in range(10):
        full = apply_command(full, AddWebhook(key_id=KEY_ID, url=f"https://{n}.x/", secret=secret))
    with pytest.raises(ControlError, match="at most 10"):
        apply_command(full, AddWebhook(key_id=KEY_ID, url="https://11.x/"))


def test_the_admins_url_list_keeps_the_formats_of_the_urls_that_stay() -> None:
    secret = "whsec_" + "s" * 40
    record = apply_command(
        _created(),
        AddWebhook(key_id=KEY_ID, url="https://s.example/h", format="slack", secret=secret),
    )
    record = apply_command(
        record, SetWebhooks(key_id=KEY_ID, urls=("https://s.example/h", "https://n.example/"))
    )
    assert record.webhook_formats == {"https://s.example/h": "slack"}
    record = apply_command(record, SetWebhooks(key_id=KEY_ID, urls=("https://n.example/",)))
    assert record.webhook_formats == {}


def test_a_telegram_subscription_is_replaced_marked_and_a_stale_mark_is_ignored() -> None:
    first = TelegramSubscription(id="sub1", chat_id="-1001", created_at=1.0)
    record = apply_command(_created(), SetTelegram(key_id=KEY_ID, subscription=first))
    second = TelegramSubscription(id="sub2", chat_id="@alerts_chan", created_at=2.0)
    record = apply_command(record, SetTelegram(key_id=KEY_ID, subscription=second))
    stale = MarkTelegram(key_id=KEY_ID, subscription_id="sub1", status="INACTIVE")
    assert apply_command(record, stale) == record  # a 403 of the chat it no longer has
    mark = MarkTelegram(key_id=KEY_ID, subscription_id="sub2", status="INACTIVE", reason="403")
    marked = apply_command(record, mark).telegram
    assert marked is not None and (marked.status, marked.status_reason) == ("INACTIVE", "403")
    gone = apply_command(record, SetTelegram(key_id=KEY_ID, subscription=None))
    assert gone.telegram is None
    # Records written before these fields existed still load.
    old = KeyRecord.model_validate_json(
        '{"key_id": "abcdef123456", "key_hash": "' + "0" * 64 + '", "created_at": 1,'
        ' "webhooks": ["https://a.example/"]}'
    )
    assert old.webhook_formats == {} and old.telegram is None


def test_a_chat_confirms_its_subscription_once_with_its_own_unexpired_code() -> None:
    digest = code_sha256("right-code-0123456789")
    pending = TelegramSubscription(
        id="sub1", chat_id="-1001", created_at=1.0, code_sha256=digest, code_expires_at=100.0
    )
    record = apply_command(_created(), SetTelegram(key_id=KEY_ID, subscription=pending))
    assert record.telegram is not None and record.telegram.status == "PENDING"

    def confirm(**changes: object) -> ConfirmTelegram:
        fields: dict[str, object] = {
            "key_id": KEY_ID,
            "subscription_id": "sub1",
            "chat_id": "-1001",
            "code_sha256": digest,
            "at": 50.0,
        }
        return ConfirmTelegram.model_validate(fields | changes)

    for wrong, reason in (
        (confirm(code_sha256=code_sha256("wrong-code-0123456789")), "wrong code"),
        (confirm(chat_id="-1002"), "another chat"),
        (confirm(at=101.0), "expired"),
        (confirm(subscription_id="sub0"), "no such"),
    ):
        with pytest.raises(ControlError, match=reason):
            apply_command(record, wrong)
    active = apply_command(record, confirm())
    assert active.telegram is not None and active.telegram.status == "ACTIVE"
    assert active.telegram.code_sha256 == "" and active.telegram.confirmed_at == 50.0
    with pytest.raises(ControlError, match="not waiting"):  # the code is used once
        apply_command(active, confirm())


def test_a_subscription_made_before_chats_confirmed_waits_for_its_chat_again() -> None:
    old = KeyRecord.model_validate_json(
        '{"key_id": "abcdef123456", "key_hash": "' + "0" * 64 + '", "created_at": 1,'
        ' "telegram": {"id": "s", "chat_id": "-1001", "status": "ACTIVE", "created_at": 1}}'
    )
    assert old.telegram is not None and old.telegram.status == "PENDING"
    assert "subscribe again" in old.telegram.status_reason
