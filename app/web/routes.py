"""Mount the HTTP API on the worker's aiohttp application."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from app.web import admin_view, keywords_view
from app.web.errors import error_middleware
from app.web.ocr_view import ocr_handler
from app.web.openapi import openapi_handler

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def install_routes(web_app: web.Application, dashboard: Handler) -> None:
    """Add the API routes and the JSON error middleware (before the server starts)."""
    web_app.middlewares.append(error_middleware)
    router = web_app.router
    router.add_post("/ocr", ocr_handler)
    router.add_get("/keywords", keywords_view.list_keywords)
    router.add_post("/keywords", keywords_view.add_keywords)
    router.add_delete("/keywords", keywords_view.remove_keywords)
    router.add_post("/admin/keys", admin_view.create_key)
    router.add_get("/admin/keys", admin_view.list_keys)
    router.add_delete("/admin/keys/{key_id}", admin_view.revoke_key)
    router.add_put("/admin/keys/{key_id}/channels", admin_view.set_channels)
    router.add_get("/openapi.json", openapi_handler)
    router.add_get("/dashboard", dashboard)
