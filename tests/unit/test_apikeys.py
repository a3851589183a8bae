"""API keys: minted with a public id, stored only as a hash."""

from __future__ import annotations

import re

import pytest

from app.keys.apikeys import (
    MalformedKeyError,
    hash_key,
    key_id_of,
    key_matches,
    mint_key,
    new_key_id,
    split_key,
)
from app.settings import Settings
from models.keys import KEY_ID_PATTERN


def test_minted_key_embeds_its_id_and_matches_its_hash() -> None:
    key_id = new_key_id()
    assert re.fullmatch(KEY_ID_PATTERN, key_id)
    api_key = mint_key(key_id)
    assert key_id_of(api_key) == key_id
    assert key_matches(api_key, hash_key(api_key))
    assert not key_matches(api_key + "x", hash_key(api_key))
    assert mint_key(key_id) != api_key


def test_channel_topic_names_carry_the_id_never_the_secret() -> None:
    key_id = new_key_id()
    api_key = mint_key(key_id)
    topic = Settings().channel_topic(key_id)
    assert key_id in topic
    _, secret = split_key(api_key)
    assert len(secret) == 32 and secret not in topic


def test_new_keys_are_one_word_and_older_keys_still_parse() -> None:
    """New secrets are letters and digits; keys minted with "_" or "-" in the secret still parse."""
    for _ in range(200):
        key_id = new_key_id()
        _, secret = split_key(mint_key(key_id))
        assert secret.isalnum() and len(secret) == 32
    assert split_key("osk_abcdef012345_ab_cd-ef_ghijklmnopqrs_") == (
        "abcdef012345",
        "ab_cd-ef_ghijklmnopqrs_",
    )


@pytest.mark.parametrize(
    "bad", ["", "osk_", "osk_ABC_secretsecretsecret", "sk-123", "osk_abcdefgh"]
)
def test_malformed_keys_are_refused(bad: str) -> None:
    with pytest.raises(MalformedKeyError):
        key_id_of(bad)
