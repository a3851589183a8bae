"""/webhooks: each API key lists, adds and removes its own webhooks (never another key's)."""

from __future__ import annotations

from aiohttp import web

from app.web.auth import api_key_caller
from app.web.changes import applied
from app.web.context import KEY_ADMIN
from app.web.errors import ApiError, read_model
from models.api import (
    AddWebhookRequest,
    RemoveWebhookRequest,
    WebhooksAnswer,
    WebhooksData,
    WebhookView,
)
from models.delivery_jobs import endpoint_id
from models.keys import KeyRecord

_MAX_BODY = 8 * 1024


def webhook_views(record: KeyRecord) -> list[WebhookView]:
    """Return a key's webhooks as its holder sees them (the id names one in DELETE)."""
    return [
        WebhookView(
            id=endpoint_id(record.key_id, url),
            url=url,
            format=record.webhook_formats.get(url, "json"),
        )
        for url in record.webhooks
    ]


def _answer(
    record: KeyRecord,
    headers: dict[str, str],
    message: str,
    status: int = 200,
    secret: str | None = None,
) -> web.Response:
    data = WebhooksData(webhooks=webhook_views(record), webhook_secret=secret)
    body = WebhooksAnswer(data=data, message=message).model_dump(exclude_none=True)
    return web.json_response(body, status=status, headers=headers)


async def list_webhooks(request: web.Request) -> web.Response:
    """Return the caller's webhooks."""
    record, headers = api_key_caller(request)
    return _answer(record, headers, "Webhooks retrieved")


async def add_webhook(request: web.Request) -> web.Response:
    """Add a webhook (or change its format); the signing secret is shown with the first one."""
    record, headers = api_key_caller(request)
    body = await read_model(request, AddWebhookRequest, _MAX_BODY)
    is_new = body.url not in record.webhooks
    updated, change = await applied(
        request.app[KEY_ADMIN].add_webhook(record.key_id, body.url, body.format)
    )
    message = "Webhook added" if is_new else "Webhook updated"
    status = 201 if is_new else 200
    return _answer(updated, headers, message, status, change.webhook_secret)


async def remove_webhook(request: web.Request) -> web.Response:
    """Remove a webhook named by ``/webhooks/{id}`` or by ``{"url": ...}``; return the rest."""
    record, headers = api_key_caller(request)
    webhook_id = request.match_info.get("webhook_id")
    if webhook_id is not None:
        urls = [v.url for v in webhook_views(record) if v.id == webhook_id]
        url = urls[0] if urls else None
    else:
        url = (await read_model(request, RemoveWebhookRequest, _MAX_BODY)).url
    if url is None or url not in record.webhooks:
        raise ApiError(404, "no such webhook for this API key")
    updated, _ = await applied(request.app[KEY_ADMIN].remove_webhook(record.key_id, url))
    return _answer(updated, headers, "Webhook removed")
