"""Loopback stand-ins for Discord's and Slack's incoming webhooks and Telegram's Bot API.

None of them is reachable from here, so the tests talk to small aiohttp servers that check
what the real services check (documented limits, required fields, the Bot API's token and
HTML entities) and answer as they answer, errors and rate limits included. They stand in
for external services only; the worker and the broker under test are real.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from aiohttp import web

from app.dispatch.signing import DELIVERY_HEADER

# https://discord.com/developers/docs/resources/message#embed-object-embed-limits
_DISCORD_EMBED_LIMITS = {"title": 256, "description": 4096}


@dataclass
class Received:
    """One accepted request: its parsed body and when it arrived (monotonic seconds)."""

    body: dict[str, Any]
    at: float


def _discord_problems(body: Any) -> list[str]:
    if not isinstance(body, dict):
        return ["body must be a JSON object"]
    problems = []
    content, embeds = body.get("content"), body.get("embeds") or []
    if not content and not embeds:
        problems.append("Cannot send an empty message")
    if isinstance(content, str) and len(content) > 2000:
        problems.append("content: Must be 2000 or fewer in length.")
    if len(embeds) > 10:
        problems.append("embeds: Must be 10 or fewer in length.")
    for embed in embeds:
        total = 0
        for name, limit in _DISCORD_EMBED_LIMITS.items():
            value = embed.get(name, "")
            total += len(value)
            if len(value) > limit:
                problems.append(f"embeds.{name}: Must be {limit} or fewer in length.")
        fields = embed.get("fields", [])
        if len(fields) > 25:
            problems.append("embeds.fields: Must be 25 or fewer in length.")
        for item in fields:
            total += len(item.get("name", "")) + len(item.get("value", ""))
            if not item.get("name") or not item.get("value") or len(item["value"]) > 1024:
                problems.append("embeds.fields: name and value required, value <= 1024")
        total += len(embed.get("footer", {}).get("text", ""))
        if total > 6000:
            problems.append("embeds: total text must be 6000 or fewer")
        for url in (embed.get("url"), embed.get("image", {}).get("url")):
            if url is not None and not str(url).startswith(("http://", "https://")):
                problems.append("embeds: Not a well formed URL.")
    parse = (body.get("allowed_mentions") or {}).get("parse", [])
    if not set(parse) <= {"roles", "users", "everyone"}:
        problems.append("allowed_mentions.parse: invalid")
    return problems


@dataclass
class DiscordWebhook:
    """Discord's Execute Webhook (``POST /api/webhooks/{id}/{token}``): 204 when valid."""

    received: list[Received] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        """Answer as Discord does: 204, or 400 with its error JSON."""
        try:
            body = json.loads(await request.read())
        except ValueError:
            return web.json_response({"code": 50109, "message": "invalid JSON"}, status=400)
        problems = _discord_problems(body)
        if problems:
            self.refused.extend(problems)
            return web.json_response(
                {"code": 50035, "message": "Invalid Form Body", "errors": problems}, status=400
            )
        self.received.append(Received(body, time.monotonic()))
        return web.Response(status=204)


@dataclass
class SlackWebhook:
    """Slack's incoming webhook: ``200 ok``, or 400 ``no_text`` / ``invalid_blocks``."""

    received: list[Received] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        """Answer as Slack does: ``ok``, or a 400 with the error word."""
        try:
            body = json.loads(await request.read())
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        blocks = body.get("blocks") if isinstance(body, dict) else None
        if not isinstance(body, dict) or not (body.get("text") or blocks):
            self.refused.append("no_text")
            return web.Response(status=400, text="no_text")
        for block in blocks or []:
            text = block.get("text", {})
            if text.get("type") not in ("mrkdwn", "plain_text") or not (
                1 <= len(text.get("text", "")) <= 3000
            ):
                self.refused.append("invalid_blocks")
                return web.Response(status=400, text="invalid_blocks")
        if len(blocks or []) > 50:
            self.refused.append("invalid_blocks")
            return web.Response(status=400, text="invalid_blocks")
        self.received.append(Received(body, time.monotonic()))
        return web.Response(text="ok")


_TELEGRAM_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre"}


class _EntityCheck(HTMLParser):
    """Telegram's HTML parse mode: known tags, properly nested; counts the visible text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.problem = ""
        self.visible = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _TELEGRAM_TAGS:
            self.problem = f'Unsupported start tag "{tag}"'
        self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open.pop() != tag:
            self.problem = f'Unmatched end tag "{tag}"'

    def handle_data(self, data: str) -> None:
        self.visible += len(data)


def telegram_html_problem(text: str) -> str:
    """Return why Telegram refuses a message in its HTML parse mode ("" when it takes it)."""
    check = _EntityCheck()
    check.feed(text)
    check.close()
    if check.problem or check.open:
        return f"can't parse entities: {check.problem or 'unclosed ' + check.open[-1]}"
    if check.visible > 4096:
        return "message is too long"
    return ""


@dataclass
class TelegramBotApi:
    """The Bot API for one bot token: ``sendMessage``, with chats that misbehave on purpose, and
    what a bot reads: ``getMe``, ``getUpdates`` (long polling, one poller at a time, as
    Telegram allows) and ``getChatMember``.

    ``rate_limited`` chats answer 429 with ``retry_after`` once per message first;
    ``kicked`` chats answer 403 as when the bot was removed from the group. ``admins`` holds the
    (chat id, user id) pairs whose user administers the chat. A test makes a chat write to the
    bot with ``send_to_bot``.
    """

    token: str
    retry_after_s: int = 2
    rate_limited: set[str] = field(default_factory=set)
    kicked: set[str] = field(default_factory=set)
    received: dict[str, list[Received]] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)
    attempts: dict[str, list[float]] = field(default_factory=dict)
    username: str = "ocrstream_test_bot"
    admins: set[tuple[str, int]] = field(default_factory=set)
    updates: list[dict[str, Any]] = field(default_factory=list)
    _limited_once: set[str] = field(default_factory=set)
    _next_update: int = 1
    _polling: bool = False
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def send_to_bot(
        self, chat_id: str, text: str, chat_type: str = "private", from_id: int = 4242
    ) -> None:
        """Have a chat send ``text`` to the bot (a channel's post, a group's or user's message)."""
        chat: dict[str, Any] = {"type": chat_type}
        if chat_id.startswith("@"):
            chat |= {"id": -1009999999999, "username": chat_id[1:]}
        else:
            chat["id"] = int(chat_id)
        message: dict[str, Any] = {"message_id": self._next_update, "chat": chat, "text": text}
        kind = "channel_post" if chat_type == "channel" else "message"
        if kind == "message":
            message["from"] = {"id": from_id, "is_bot": False, "first_name": "someone"}
        self.updates.append({"update_id": self._next_update, kind: message})
        self._next_update += 1
        self._arrived.set()

    async def handle(self, request: web.Request) -> web.Response:
        """Check the token, method and body; answer as the Bot API does."""
        if request.match_info["token"] != self.token:
            return self._error(401, "Unauthorized")
        method = request.match_info["method"]
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError:
            return self._error(400, "Bad Request: invalid JSON")
        if method == "getMe":
            return self._ok({"id": 777, "is_bot": True, "username": self.username})
        if method == "getUpdates":
            return await self._get_updates(body)
        if method == "getChatMember":
            member = (str(body.get("chat_id")), body.get("user_id"))
            return self._ok({"status": "administrator" if member in self.admins else "member"})
        if method != "sendMessage":
            return self._error(404, "Not Found")
        chat = str(body.get("chat_id", ""))
        text = body.get("text")
        if not chat:
            return self._error(400, "Bad Request: chat_id is empty")
        if not isinstance(text, str) or not text.strip():
            return self._error(400, "Bad Request: message text is empty")
        if body.get("parse_mode") == "HTML":
            problem = telegram_html_problem(text)
            if problem:
                return self._error(400, f"Bad Request: {problem}")
        self.attempts.setdefault(chat, []).append(time.monotonic())
        if chat in self.kicked:
            return self._error(403, "Forbidden: bot was kicked from the group chat")
        digest = f"{chat}\n{text}"
        if chat in self.rate_limited and digest not in self._limited_once:
            self._limited_once.add(digest)
            return web.json_response(
                {
                    "ok": False,
                    "error_code": 429,
                    "description": f"Too Many Requests: retry after {self.retry_after_s}",
                    "parameters": {"retry_after": self.retry_after_s},
                },
                status=429,
            )
        self.received.setdefault(chat, []).append(Received(body, time.monotonic()))
        return web.json_response({"ok": True, "result": {"message_id": 1, "text": text}})

    async def _get_updates(self, body: dict[str, Any]) -> web.Response:
        """Answer a long poll: the updates from ``offset`` on, waiting up to ``timeout`` s."""
        if self._polling:
            return self._error(
                409,
                "Conflict: terminated by other getUpdates request; make sure that only one bot "
                "instance is running",
            )
        timeout = body.get("timeout", 0)
        if not isinstance(timeout, int) or not 0 <= timeout <= 50:
            return self._error(400, "Bad Request: invalid timeout")
        offset = body.get("offset", 0)
        # Telegram forgets the updates below the offset: the bot has confirmed them.
        self.updates = [u for u in self.updates if u["update_id"] >= offset]
        self._polling = True
        try:
            if not self.updates and timeout:
                self._arrived.clear()
                # Why at most 1 s: the tests need no longer waits than that to see updates.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._arrived.wait(), min(timeout, 1))
        finally:
            self._polling = False
        return self._ok(list(self.updates))

    def _ok(self, result: Any) -> web.Response:
        return web.json_response({"ok": True, "result": result})

    def _error(self, status: int, description: str) -> web.Response:
        self.refused.append(description)
        payload = {"ok": False, "error_code": status, "description": description}
        return web.json_response(payload, status=status)


def standin_app(
    discord: DiscordWebhook, slack: SlackWebhook, telegram: TelegramBotApi
) -> web.Application:
    """Return one server with all three, on the paths the real services use."""
    app = web.Application()
    app.router.add_post("/api/webhooks/{id}/{token}", discord.handle)
    app.router.add_post("/services/{a}/{b}/{c}", slack.handle)
    app.router.add_post("/bot{token}/{method}", telegram.handle)
    return app


@dataclass
class Receiver:
    """A webhook receiver whose endpoints answer 200, fail, stall or refuse."""

    base: str = ""
    # path -> deliveries accepted (2xx), in arrival order: (delivery id, headers, body, time)
    accepted: dict[str, list[tuple[str, dict[str, str], bytes, float]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    attempts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    stalled: bool = True

    async def handle(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = await request.read()
        delivery = request.headers.get(DELIVERY_HEADER, "")
        self.attempts[name] += 1
        if name == "flaky" and self.attempts[f"flaky:{delivery}"] < 1:
            self.attempts[f"flaky:{delivery}"] += 1
            return web.Response(status=503, headers={"Retry-After": "0"})
        if name == "stall" and self.stalled:
            await asyncio.sleep(30)  # far past the worker's webhook timeout: it gives up first
            return web.Response(status=504)
        if name == "gone":
            return web.Response(status=500)
        if name == "teapot":
            return web.Response(status=400)
        if name == "slow":
            await asyncio.sleep(0.02)
        self.accepted[name].append((delivery, dict(request.headers), body, time.monotonic()))
        return web.Response(status=204)
