"""Control commands applied to key records (what the control agent does to the table)."""

from __future__ import annotations

import pytest

from app.keys.commands import ControlError, apply_command
from app.keys.keywords import KeywordError
from models.keys import (
    AddKeywords,
    CreateKey,
    KeyRecord,
    RemoveKeywords,
    RevokeKey,
    SetChannels,
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
