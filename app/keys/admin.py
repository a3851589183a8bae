"""Key administration, the one way: check a command, send it to the control topic, wait for it.

Both front ends use ``KeyAdmin``: the command line (a producer of its own, and a read of the
keys changelog to see the result) and the HTTP API (the worker's producer, and its keys
replica). The control agent is the table's one writer, so every worker agrees; a command is
checked here first so the caller gets the reason at once instead of a dead letter later.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer

from app.dispatch.signing import new_secret
from app.kafka.security import connection
from app.keys.apikeys import hash_key, mint_key, new_key_id
from app.keys.changelog import read_keys
from app.keys.commands import (
    apply_command,
    check_targets,
    check_webhook_hosts,
    needs_new_secret,
)
from app.keys.keywords import merge_keywords, normalize_keyword
from app.sealing import SecretBox, box_for
from app.settings import Settings
from models.keys import (
    AddKeywords,
    AddWebhook,
    ConfirmTelegram,
    ControlCommand,
    CreateKey,
    KeyRecord,
    RemoveKeywords,
    RemoveWebhook,
    RevokeKey,
    SetChannels,
    SetTelegram,
    SetWebhooks,
    TelegramSubscription,
    WebhookFormat,
)

Send = Callable[[ControlCommand], Awaitable[None]]
Lookup = Callable[[str], Awaitable[KeyRecord | None]]


class UnknownKeyError(LookupError):
    """No key has this id."""


@dataclass(frozen=True)
class Change:
    """A command that was sent, and the key as applied (None: not applied within the wait)."""

    command: ControlCommand
    record: KeyRecord | None
    # Shown once, only to the caller of the change that minted it.
    api_key: str | None = None
    webhook_secret: str | None = None


class KeyAdmin:
    """Creates, changes and revokes keys (see the module docstring)."""

    def __init__(
        self, settings: Settings, send: Send, lookup: Lookup, wait_s: float, poll_s: float
    ) -> None:
        self._settings = settings
        self._send = send
        self._lookup = lookup
        self._wait_s = wait_s
        self._poll_s = poll_s
        self._box: SecretBox | None = None

    async def get(self, key_id: str) -> KeyRecord:
        """Return a key's record; raise UnknownKeyError when there is none."""
        record = await self._lookup(key_id)
        if record is None:
            raise UnknownKeyError(f"unknown key {key_id[:40]}")
        return record

    async def create(self, label: str, channels: tuple[str, ...] = ()) -> Change:
        """Mint a key; its secret is in ``api_key`` of the answer, and nowhere else, ever."""
        key_id = new_key_id()
        api_key = mint_key(key_id)
        command = CreateKey(
            key_id=key_id,
            key_hash=hash_key(api_key),
            label=label,
            created_at=time.time(),
            channels=channels or (self._settings.channel_topic(key_id),),
        )
        change = await self._apply(command, None, lambda r: r is not None)
        return Change(command, change.record, api_key=api_key)

    async def revoke(self, key_id: str) -> Change:
        """Revoke a key: every worker refuses it once its replica has the change."""
        current = await self.get(key_id)
        return await self._apply(RevokeKey(key_id=key_id), current, lambda r: r.revoked)

    async def set_channels(self, key_id: str, channels: tuple[str, ...]) -> Change:
        """Replace the channel topics a key's deliveries are written to."""
        current = await self.get(key_id)
        command = SetChannels(key_id=key_id, channels=channels)
        return await self._apply(command, current, lambda r: r.channels == command.channels)

    async def set_webhooks(self, key_id: str, urls: list[str], rotate_secret: bool) -> Change:
        """Replace a key's webhook URLs; the signing secret is in the answer when minted.

        Raises pydantic's ValidationError for URLs that are not http(s), or too many.
        """
        current = await self.get(key_id)
        plain = new_secret() if needs_new_secret(current, urls, rotate_secret) else None
        command = SetWebhooks(key_id=key_id, urls=tuple(urls), secret=self._sealed(plain, key_id))
        await check_webhook_hosts(self._settings, command.urls)  # after the URLs' validation
        change = await self._apply(
            command,
            current,
            lambda r: r.webhooks == command.urls and self._holds(r, plain),
        )
        return Change(command, change.record, webhook_secret=plain)

    async def add_webhook(self, key_id: str, url: str, fmt: WebhookFormat) -> Change:
        """Add one webhook URL (or change its format); the secret is in the answer if minted."""
        current = await self.get(key_id)
        # Why mint only for a key without one: its other webhooks keep their secret.
        offered = None if current.webhook_secret else new_secret()
        command = AddWebhook(
            key_id=key_id, url=url, format=fmt, secret=self._sealed(offered, key_id)
        )
        await check_webhook_hosts(self._settings, (command.url,))  # after the URL's validation
        change = await self._apply(
            command,
            current,
            lambda r: url in r.webhooks and r.webhook_formats.get(url, "json") == fmt,
        )
        # Two first webhooks added at once: only the one whose secret was kept shows it.
        minted = (
            offered is not None
            and change.record is not None
            and self._holds(change.record, offered)
        )
        return Change(command, change.record, webhook_secret=offered if minted else None)

    def _sealed(self, plain: str | None, key_id: str) -> str | None:
        """Return a minted secret sealed for the control topic (None stays None)."""
        if plain is None:
            return None
        # Why built here, not at start: commands that mint no secret need no operator key.
        if self._box is None:
            self._box = box_for(self._settings)
        return self._box.seal(plain, key_id)

    def _holds(self, record: KeyRecord, plain: str | None) -> bool:
        """Tell whether the record signs with ``plain`` (always, when none was minted)."""
        if plain is None:
            return True
        if self._box is None or not record.webhook_secret:
            return False
        return self._box.open(record.webhook_secret, record.key_id) == plain

    async def remove_webhook(self, key_id: str, url: str) -> Change:
        """Remove one webhook URL of a key."""
        current = await self.get(key_id)
        command = RemoveWebhook(key_id=key_id, url=url)
        return await self._apply(command, current, lambda r: url not in r.webhooks)

    async def set_telegram(self, key_id: str, subscription: TelegramSubscription | None) -> Change:
        """Subscribe a key's deliveries to a Telegram chat (replacing any), or unsubscribe."""
        current = await self.get(key_id)
        command = SetTelegram(key_id=key_id, subscription=subscription)
        return await self._apply(command, current, lambda r: r.telegram == subscription)

    async def confirm_telegram(
        self, key_id: str, subscription_id: str, chat_id: str, digest: str, at: float
    ) -> Change:
        """Activate a key's pending Telegram subscription: its chat sent the code hashed here.

        Raises ControlError when the code does not confirm it (wrong, expired, another chat).
        """
        current = await self.get(key_id)
        command = ConfirmTelegram(
            key_id=key_id,
            subscription_id=subscription_id,
            chat_id=chat_id,
            code_sha256=digest,
            at=at,
        )

        def active(record: KeyRecord) -> bool:
            return record.telegram is not None and (
                record.telegram.id == subscription_id and record.telegram.status == "ACTIVE"
            )

        return await self._apply(command, current, active)

    async def add_keywords(self, key_id: str, words: list[str]) -> Change:
        """Add keywords (normalised; the per-key limits apply)."""
        current = await self.get(key_id)
        merged = set(merge_keywords(current.keywords, words))
        command = AddKeywords(key_id=key_id, keywords=tuple(words))
        return await self._apply(command, current, lambda r: merged <= set(r.keywords))

    async def remove_keywords(self, key_id: str, words: list[str], remove_all: bool) -> Change:
        """Remove some keywords, or all of them."""
        current = await self.get(key_id)
        gone = {normalize_keyword(word) for word in words}
        command = RemoveKeywords(key_id=key_id, keywords=tuple(words), all=remove_all)
        return await self._apply(
            command,
            current,
            lambda r: not r.keywords if remove_all else not gone & set(r.keywords),
        )

    async def _apply(
        self,
        command: ControlCommand,
        current: KeyRecord | None,
        done: Callable[[KeyRecord], bool],
    ) -> Change:
        # The same checks as the control agent's: a refusal is raised here (ControlError,
        # KeywordError), with its reason, instead of becoming a dead letter.
        apply_command(current, command)
        check_targets(self._settings, command)
        await self._send(command)
        deadline = time.monotonic() + self._wait_s
        while True:
            record = await self._lookup(command.key_id)
            if record is not None and done(record):
                return Change(command, record)
            if time.monotonic() >= deadline:
                return Change(command, None)
            await asyncio.sleep(self._poll_s)


def admin_over_kafka(settings: Settings, wait_s: float = 15.0, poll_s: float = 0.3) -> KeyAdmin:
    """Return a key admin for a process outside the worker (the command line, tests, benches).

    It sends with a producer of its own and sees the result by reading the keys changelog.
    Why 15 s: a running worker applies a command in well under a second; 15 s covers a cold one.
    """

    async def send(command: ControlCommand) -> None:
        await send_with_own_producer(settings, command)

    async def lookup(key_id: str) -> KeyRecord | None:
        return (await read_keys(settings)).get(key_id)

    return KeyAdmin(settings, send, lookup, wait_s, poll_s)


async def send_with_own_producer(settings: Settings, command: ControlCommand) -> None:
    """Publish one control command and wait until the broker has it (for the command line)."""
    producer = AIOKafkaProducer(**connection(settings), acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            settings.control_topic,
            key=command.key_id.encode(),
            value=command.model_dump_json().encode(),
        )
    finally:
        await producer.stop()
