"""Secrets sealed with the operator's key: what reaches Kafka reveals nothing, and rotates."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.dispatch.signing import new_secret
from app.keys.changelog import encode_key_record
from app.keys.control import KeyControl
from app.sealing import (
    SecretBox,
    SecretKeyError,
    box_for,
    is_sealed,
    new_secret_key,
    sealed_with,
)
from app.settings import Settings
from models.keys import AddWebhook, CreateKey, SetWebhooks

OLD, NEW = new_secret_key(), new_secret_key()


@given(plain=st.text(max_size=300), context=st.text(max_size=40))
def test_what_is_sealed_opens_only_in_its_context_and_shows_nothing_of_the_secret(
    plain: str, context: str
) -> None:
    box = SecretBox.from_setting(NEW)
    sealed = box.seal(plain, context)
    assert is_sealed(sealed) and box.open(sealed, context) == plain
    body = sealed.rsplit(":", 1)[1]
    if len(plain) >= 4:
        assert plain not in sealed
        assert base64.urlsafe_b64encode(plain.encode()).decode()[:8] not in body
    assert box.seal(plain, context) != sealed  # a fresh nonce each time
    with pytest.raises(SecretKeyError):
        box.open(sealed, context + "x")


def test_a_rotated_key_still_opens_what_the_old_one_sealed_and_reseals_it() -> None:
    old_box = SecretBox.from_setting(OLD)
    sealed_before = old_box.seal("whsec_abc" + "x" * 30, "key1")
    rotating = SecretBox.from_setting(f"{NEW}, {OLD}")
    assert rotating.open(sealed_before, "key1") == "whsec_abc" + "x" * 30
    resealed = rotating.reseal(sealed_before, "key1")
    assert sealed_with(resealed) == rotating.sealing_id != sealed_with(sealed_before)
    assert rotating.reseal(resealed, "key1") == resealed  # already under the first key
    assert rotating.reseal("whsec_clear" + "y" * 30, "key1").startswith("sealed:v1:")
    # Once the old key is dropped, what it alone sealed no longer opens, and says why.
    with pytest.raises(SecretKeyError, match="does not hold"):
        SecretBox.from_setting(NEW).open(sealed_before, "key1")


def test_a_changed_byte_is_refused() -> None:
    box = SecretBox.from_setting(NEW)
    sealed = box.seal("whsec_" + "q" * 40, "key1")
    head, body = sealed.rsplit(":", 1)
    flipped = body[:20] + ("A" if body[20] != "A" else "B") + body[21:]
    with pytest.raises(SecretKeyError, match="does not open"):
        box.open(f"{head}:{flipped}", "key1")


@pytest.mark.parametrize("bad", ["", "short", "x" * 42 + "!", f"{NEW},nope", "A" * 44 + "=="])
def test_a_malformed_key_is_refused_without_showing_it(bad: str) -> None:
    with pytest.raises(SecretKeyError, match="OCRSTREAM_SECRET_KEY") as refused:
        SecretBox.from_setting(bad)
    assert not bad or bad not in str(refused.value)


def test_the_key_comes_from_the_setting_or_its_file(tmp_path: Path) -> None:
    with pytest.raises(SecretKeyError, match="is not set.*ocrstream secret-key"):
        box_for(Settings())
    key_file = tmp_path / "key"
    key_file.write_text(NEW + "\n")
    from_file = box_for(Settings(secret_key_file=str(key_file)))
    assert from_file.sealing_id == SecretBox.from_setting(NEW).sealing_id
    with pytest.raises(SecretKeyError, match="cannot be read"):
        box_for(Settings(secret_key_file=str(tmp_path / "missing")))


def test_the_control_agent_seals_a_secret_that_arrives_in_clear(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    box = SecretBox.from_setting(NEW)
    table: dict[bytes, bytes] = {}
    control = KeyControl(Settings(), table, box)
    create = CreateKey(key_id="key1abcd", key_hash="0" * 64, created_at=0, channels=("c1",))
    table[b"key1abcd"] = encode_key_record(control.decide(create.model_dump_json().encode())[0])
    # A command of an older version: its secret in clear. The record written is sealed.
    clear = "whsec_" + "c" * 40
    legacy = AddWebhook(key_id="key1abcd", url="https://example.com/h", secret=clear)
    record, _ = control.decide(legacy.model_dump_json().encode())
    assert is_sealed(record.webhook_secret) and clear not in record.model_dump_json()
    assert box.open(record.webhook_secret, "key1abcd") == clear
    # A secret sealed with a key this worker does not hold is refused, not stored.
    foreign = SecretBox.from_setting(OLD).seal(new_secret(), "key1abcd")
    table[b"key1abcd"] = encode_key_record(record)
    unknown = SetWebhooks(key_id="key1abcd", urls=("https://example.com/h",), secret=foreign)
    with pytest.raises(ValueError, match="does not hold"):
        control.decide(unknown.model_dump_json().encode())


def test_the_local_broker_keeps_one_key_readable_by_its_owner_only(tmp_path: Path) -> None:
    from app.cli.run import local_secret_key

    path = local_secret_key(tmp_path / "cache")
    assert path.stat().st_mode & 0o777 == 0o600
    made = path.read_text()
    assert local_secret_key(tmp_path / "cache").read_text() == made  # kept, not remade
    assert SecretBox.from_setting(made).sealing_id
