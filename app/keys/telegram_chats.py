"""Chats prove they want a key's deliveries: the bot reads ``/start <code>`` and confirms.

Any key could name any chat id, so a subscription starts PENDING with a one-time code the key
holder is given once. The chat confirms it by sending ``/start <code>`` to the bot: the deep
link ``t.me/<bot>?start=<code>`` does that in a private chat, ``?startgroup=<code>`` in a group
(sent by an administrator: any member can type a command), and a channel's administrator posts
it in the channel. The worker that leads the Faust group long-polls the bot's updates
(``getUpdates``: Telegram allows one poller per bot); a code that matches a pending
subscription of that very chat becomes a ``confirm_telegram`` command, which the control agent
checks again (hash, chat, expiry) before it activates the subscription. Codes are kept as their
SHA-256 only, and used once.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
from mode import Service

from app.keys.admin import KeyAdmin, UnknownKeyError
from app.keys.commands import ControlError
from app.keys.replica import KeysReplica
from app.log_throttle import LogThrottle
from app.settings import Settings
from models.keys import KeyRecord, TelegramSubscription

log = logging.getLogger(__name__)

# Telegram's deep-link parameter: up to 64 of A-Z a-z 0-9 _ -; ours are 22 (secrets.token_urlsafe).
_START = re.compile(r"^/start(?:@[A-Za-z0-9_]+)?\s+([A-Za-z0-9_-]{16,64})\s*$")
_ADMINS = ("creator", "administrator")
# Why a bound: an answer to getUpdates is a page of updates, not an unbounded stream.
_MAX_ANSWER_BYTES = 4 * 1024 * 1024


class BotApiError(Exception):
    """The Bot API answered with an error (the message is its description, never the token)."""


def code_sha256(code: str) -> str:
    """Return the hex SHA-256 of a subscription's one-time code (what the keys table keeps)."""
    return hashlib.sha256(code.encode()).hexdigest()


def start_code(text: object) -> str | None:
    """Return the code of a ``/start <code>`` message (``/start@bot <code>`` in groups)."""
    if not isinstance(text, str):
        return None
    found = _START.match(text.strip())
    return found.group(1) if found else None


def same_chat(subscribed: str, chat: dict[str, Any]) -> bool:
    """Tell whether a chat (as an update names it) is the one a subscription names."""
    username = chat.get("username")
    return subscribed == str(chat.get("id")) or (
        isinstance(username, str) and subscribed.lower() == f"@{username}".lower()
    )


class BotApi(Service):
    """The operator's bot: calls to its Bot API server, with a session of its own."""

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        token = settings.telegram_bot_token
        assert token is not None, "BotApi needs OCRSTREAM_TELEGRAM_BOT_TOKEN"
        self._base = f"{settings.telegram_api_url.rstrip('/')}/bot{token.get_secret_value()}"
        self._poll_s = settings.telegram_poll_s
        self._session: aiohttp.ClientSession | None = None
        self._username: str | None = None

    async def on_start(self) -> None:
        """Open the session (the operator's server: no refusal of private addresses)."""
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self._poll_s + 15),
            headers={"User-Agent": "ocrstream-telegram/0.1"},
        )

    async def on_stop(self) -> None:
        """Close the session."""
        if self._session is not None:
            await self._session.close()

    async def call(self, method: str, payload: dict[str, Any]) -> Any:
        """Call a Bot API method; return its ``result``, or raise BotApiError with why."""
        if self._session is None:
            raise BotApiError("the bot's session is not open yet")
        try:
            async with self._session.post(f"{self._base}/{method}", json=payload) as answer:
                body = await answer.content.read(_MAX_ANSWER_BYTES)
        except (aiohttp.ClientError, TimeoutError) as exc:
            # Why not the exception's text: aiohttp names the URL, and the URL holds the token.
            raise BotApiError(f"{method}: {type(exc).__name__}") from None
        try:
            parsed = json.loads(body)
        except ValueError:
            raise BotApiError(f"{method}: HTTP {answer.status}, not JSON") from None
        if not isinstance(parsed, dict) or not parsed.get("ok"):
            description = parsed.get("description", "") if isinstance(parsed, dict) else ""
            raise BotApiError(f"{method}: HTTP {answer.status} {str(description)[:200]}")
        return parsed.get("result")

    async def username(self) -> str | None:
        """Return the bot's username (asked once with getMe), or None if it cannot be had."""
        if self._username is None:
            try:
                me = await self.call("getMe", {})
            except BotApiError as exc:
                log.warning("telegram: getMe failed (%s); links to the bot are left out", exc)
                return None
            if isinstance(me, dict) and isinstance(me.get("username"), str):
                self._username = me["username"]
        return self._username


@dataclass(frozen=True)
class Pending:
    """A key's pending subscription whose code a chat sent."""

    key: KeyRecord
    subscription: TelegramSubscription


class ChatConfirmations:
    """Reads the bot's updates and confirms the subscriptions whose chat sent their code."""

    def __init__(self, settings: Settings, bot: BotApi, keys: KeysReplica, admin: KeyAdmin) -> None:
        self._poll_s = settings.telegram_poll_s
        self._bot = bot
        self._keys = keys
        self._admin = admin
        self._offset = 0
        self.confirmed = 0
        # Why: a Bot API server that is away would log a line every second otherwise.
        self._log_throttle = LogThrottle(60.0)

    async def poll_once(self) -> None:
        """Read one page of updates (a long poll) and handle each; never raises."""
        try:
            updates = await self._bot.call(
                "getUpdates",
                {
                    "offset": self._offset,
                    "timeout": int(self._poll_s),
                    "allowed_updates": ["message", "channel_post"],
                },
            )
        except BotApiError as exc:
            held_back = self._log_throttle.allow("getUpdates")
            if held_back is not None:
                log.warning(
                    "telegram: reading the bot's updates failed: %s (%d more like it before)",
                    exc,
                    held_back,
                )
            await asyncio.sleep(1)
            return
        for update in updates if isinstance(updates, list) else []:
            if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
                continue
            # Why first: an update that fails is not read again and again.
            self._offset = max(self._offset, update["update_id"] + 1)
            try:
                await self.handle(update)
            except Exception:
                # Why catch all: one odd update must not stop the others (the error boundary).
                log.exception("telegram: update %s could not be handled", update["update_id"])

    async def handle(self, update: dict[str, Any]) -> bool:
        """Confirm the subscription whose code this update's message sends; True if it did."""
        message = update.get("message") or update.get("channel_post")
        if not isinstance(message, dict):
            return False
        code = start_code(message.get("text"))
        chat = message.get("chat")
        if code is None or not isinstance(chat, dict):
            return False
        pending = self._pending(code_sha256(code))
        if pending is None or not same_chat(pending.subscription.chat_id, chat):
            # Why silent: a reply to every stranger's /start would make the bot a reflector.
            return False
        if chat.get("type") in ("group", "supergroup") and not await self._by_admin(chat, message):
            log.info(
                "telegram: a code for chat %s was sent by a member who is no admin", chat["id"]
            )
            return False
        try:
            change = await self._admin.confirm_telegram(
                pending.key.key_id,
                pending.subscription.id,
                pending.subscription.chat_id,
                code_sha256(code),
                time.time(),
            )
        except (ControlError, UnknownKeyError) as exc:
            log.info("telegram: confirmation refused: %s", exc)
            return False
        if change.record is None:
            return False
        self.confirmed += 1
        label = pending.key.label or pending.key.key_id
        await self._reply(chat, f"This chat now receives the deliveries of {label}.")
        return True

    def _pending(self, digest: str) -> Pending | None:
        """Return the pending subscription whose code has this SHA-256, if any."""
        for key in self._keys.active():
            subscription = key.telegram
            if (
                subscription is not None
                and subscription.status == "PENDING"
                and subscription.code_sha256 == digest
            ):
                return Pending(key, subscription)
        return None

    async def _by_admin(self, chat: dict[str, Any], message: dict[str, Any]) -> bool:
        """Tell whether a group message's sender administers the group (getChatMember)."""
        sender = message.get("from")
        if not isinstance(sender, dict) or not isinstance(sender.get("id"), int):
            return False
        try:
            member = await self._bot.call(
                "getChatMember", {"chat_id": chat["id"], "user_id": sender["id"]}
            )
        except BotApiError as exc:
            log.warning("telegram: could not ask who administers chat %s: %s", chat["id"], exc)
            return False
        return isinstance(member, dict) and member.get("status") in _ADMINS

    async def _reply(self, chat: dict[str, Any], text: str) -> None:
        try:
            await self._bot.call("sendMessage", {"chat_id": chat["id"], "text": text})
        except BotApiError as exc:
            log.info("telegram: the confirmation's reply was not sent: %s", exc)
