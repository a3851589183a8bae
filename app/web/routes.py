"""Mount the HTTP API on the worker's aiohttp application."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from app.metrics import metrics
from app.web import (
    addresses_view,
    admin_view,
    keywords_view,
    status_view,
    telegram_view,
    webhooks_view,
)
from app.web.context import SETTINGS
from app.web.cors import enable_cors
from app.web.errors import error_middleware
from app.web.ocr_view import ocr_handler
from app.web.openapi import openapi_handler
from app.web.operator import operator_gate
from app.web.paths import API_PREFIXES
from app.web.stream_view import sse_stream, stream_token, websocket_stream


@web.middleware
async def count_responses(request: web.Request, handler: Any) -> web.StreamResponse:
    """Count the API's answers by status code, and every 5xx of any page (for /metrics)."""
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException as exc:
        _count(request, exc.status)
        raise
    _count(request, response.status)
    return response


def _count(request: web.Request, status: int) -> None:
    if status >= 500 or request.path.startswith(API_PREFIXES):
        metrics.http_responses.labels(status=str(status)).inc()


def install_routes(web_app: web.Application, cors: Any = None) -> None:
    """Add the API routes, the JSON error middleware and CORS (before the server starts).

    ``cors`` is the ``aiohttp_cors.CorsConfig`` Faust's web server made, where there is one.
    """
    # Outermost first: the count sees the status the error middleware chose, which shapes the
    # gate's refusal of an operator page on the API's port.
    web_app.middlewares.append(count_responses)
    web_app.middlewares.append(error_middleware)
    web_app.middlewares.append(operator_gate)
    router = web_app.router
    router.add_post("/ocr", ocr_handler)
    router.add_get("/keywords", keywords_view.list_keywords)
    router.add_post("/keywords", keywords_view.add_keywords)
    router.add_delete("/keywords", keywords_view.remove_keywords)
    router.add_post("/admin/keys", admin_view.create_key)
    router.add_get("/admin/keys", admin_view.list_keys)
    router.add_delete("/admin/keys/{key_id}", admin_view.revoke_key)
    router.add_put("/admin/keys/{key_id}/channels", admin_view.set_channels)
    router.add_put("/admin/keys/{key_id}/webhooks", admin_view.set_webhooks)
    router.add_get("/ws", websocket_stream)
    router.add_get("/stream", sse_stream)
    router.add_post("/stream/token", stream_token)
    router.add_get("/webhooks", webhooks_view.list_webhooks)
    router.add_post("/webhooks", webhooks_view.add_webhook)
    router.add_delete("/webhooks", webhooks_view.remove_webhook)
    router.add_delete("/webhooks/{webhook_id}", webhooks_view.remove_webhook)
    router.add_get("/tg_subscription", telegram_view.get_subscription)
    router.add_post("/tg_subscription", telegram_view.subscribe)
    router.add_delete("/tg_subscription", telegram_view.unsubscribe)
    router.add_get("/addresses/{network}/{address}", addresses_view.address)
    router.add_get("/trending", addresses_view.trending)
    router.add_get("/openapi.json", openapi_handler)
    router.add_get("/status/", status_view.status)
    router.add_get("/dashboard", status_view.dashboard)
    router.add_get("/dashboard/thumbnail/{result_id}", status_view.thumbnail)
    router.add_get("/metrics", status_view.prometheus_metrics)
    router.add_get("/samples/{name}", status_view.sample_image)
    enable_cors(web_app, web_app[SETTINGS], cors)
