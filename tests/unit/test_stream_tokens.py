"""Stream tokens: minted for one key, refused for any other, for any change, and once expired."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.web import stream_tokens
from app.web.stream_tokens import TokenError
from models.keys import KeyRecord

NOW = 1_800_000_000.0


def _record(key_id: str = "abcd1234", key_hash: str = "1" * 64) -> KeyRecord:
    return KeyRecord(key_id=key_id, key_hash=key_hash, created_at=0)


def test_a_minted_token_opens_its_keys_stream_until_it_expires() -> None:
    record = _record()
    token = stream_tokens.mint(record, 86400, "server", now=NOW)
    assert token.expires_at == NOW + 86400
    assert stream_tokens.key_id_of(token.token) == record.key_id
    stream_tokens.verify(token.token, record, "server", now=NOW + 86399)
    with pytest.raises(TokenError, match="expired"):
        stream_tokens.verify(token.token, record, "server", now=NOW + 86400)


def test_a_token_dies_with_its_key_and_with_the_server_secret() -> None:
    record = _record()
    token = stream_tokens.mint(record, 60, "server", now=NOW).token
    for other, secret in (
        (_record(key_hash="2" * 64), "server"),  # the key was made again: another hash
        (_record(key_id="zzzz9999"), "server"),  # another key
        (record, "rotated"),  # the operator changed the secret
        (None, "server"),  # the key is gone
    ):
        with pytest.raises(TokenError, match="invalid"):
            stream_tokens.verify(token, other, secret, NOW)


@given(position=st.integers(min_value=0), replacement=st.characters(codec="ascii"))
def test_any_changed_character_is_refused(position: int, replacement: str) -> None:
    record = _record()
    token = stream_tokens.mint(record, 60, "server", now=NOW).token
    index = position % len(token)
    changed = token[:index] + replacement + token[index + 1 :]
    if changed == token:
        return
    with pytest.raises(TokenError):
        stream_tokens.verify(changed, record, "server", now=NOW)


@given(st.text(max_size=200))
def test_arbitrary_text_is_refused_not_crashed_on(text: str) -> None:
    with pytest.raises(TokenError):
        stream_tokens.verify(text, _record(), "server", now=NOW)
