"""/tg_subscription: each API key subscribes one Telegram chat to its deliveries (or none)."""

from __future__ import annotations

import secrets
import time

from aiohttp import web

from app.keys.telegram_chats import code_sha256
from app.web.auth import api_key_caller
from app.web.changes import applied
from app.web.context import KEY_ADMIN, SETTINGS, TELEGRAM
from app.web.errors import ApiError, read_model
from models.api import (
    TelegramSubscriptionAnswer,
    TelegramSubscriptionRequest,
    TelegramSubscriptionView,
)
from models.keys import TelegramSubscription

_MAX_BODY = 4 * 1024


def _view(subscription: TelegramSubscription | None) -> TelegramSubscriptionView | None:
    if subscription is None:
        return None
    return TelegramSubscriptionView(
        id=subscription.id,
        chatId=subscription.chat_id,
        name=subscription.name,
        status=subscription.status,
        statusReason=subscription.status_reason or None,
        expiresAt=subscription.code_expires_at if subscription.status == "PENDING" else None,
    )


def _answer(
    subscription: TelegramSubscription | None,
    headers: dict[str, str],
    message: str,
    status: int = 200,
) -> web.Response:
    answer = TelegramSubscriptionAnswer(data=_view(subscription), message=message)
    # Why not exclude_none on the whole: "data": null is the answer when there is none.
    body = {
        "data": answer.data.model_dump(exclude_none=True) if answer.data else None,
        "message": answer.message,
    }
    return web.json_response(body, status=status, headers=headers)


async def get_subscription(request: web.Request) -> web.Response:
    """Return the caller's Telegram subscription, or ``null``."""
    record, headers = api_key_caller(request)
    if record.telegram is None:
        return _answer(None, headers, "No subscription for this API key")
    return _answer(record.telegram, headers, "Subscription retrieved")


async def subscribe(request: web.Request) -> web.Response:
    """Subscribe a Telegram chat to the caller's deliveries, once the chat confirms it.

    The subscription is PENDING (replacing the one the key had) until the chat sends
    ``/start <code>`` to the bot; the code is in this answer only.
    """
    record, headers = api_key_caller(request)
    settings = request.app[SETTINGS]
    bot = request.app.get(TELEGRAM)
    if settings.telegram_bot_token is None or bot is None:
        raise ApiError(503, "Telegram is not set up on this server (no bot token)")
    body = await read_model(request, TelegramSubscriptionRequest, _MAX_BODY)
    code, now = secrets.token_urlsafe(16), time.time()
    subscription = TelegramSubscription(
        id=secrets.token_hex(8),
        chat_id=body.chatId,
        name=body.name,
        created_at=now,
        code_sha256=code_sha256(code),
        code_expires_at=now + settings.telegram_code_ttl_s,
    )
    updated, _ = await applied(request.app[KEY_ADMIN].set_telegram(record.key_id, subscription))
    view = _view(updated.telegram)
    assert view is not None
    view.code = code
    username = await bot.username()
    if username is not None:
        view.link = f"https://t.me/{username}?start={code}"
        view.groupLink = f"https://t.me/{username}?startgroup={code}"
    message = (
        "Subscription created: nothing is sent until the chat confirms it. Send /start "
        f"{code} to the bot from that chat (an administrator, in a group or channel) within "
        f"{settings.telegram_code_ttl_s / 60:.0f} minutes."
    )
    answer = TelegramSubscriptionAnswer(data=view, message=message)
    return web.json_response(answer.model_dump(exclude_none=True), status=201, headers=headers)


async def unsubscribe(request: web.Request) -> web.Response:
    """Stop sending the caller's deliveries to Telegram."""
    record, headers = api_key_caller(request)
    if record.telegram is None:
        raise ApiError(404, "No subscription for this API key")
    await applied(request.app[KEY_ADMIN].set_telegram(record.key_id, None))
    return _answer(None, headers, "Subscription removed")
