"""The operator pages, kept apart from the API: their own listener, or the admin key.

The dashboard, ``/status/``, ``/metrics`` and Faust's own pages show every key's deliveries
and OCR text. On the API's port (``OCRSTREAM_WEB_PORT``, published to key holders) they answer
only a request with the admin key (``x-admin-key``, or ``Authorization: Bearer`` as Prometheus
sends it). A second listener of the same server, ``OCRSTREAM_OPERATOR_HOST:PORT`` (loopback by
default), serves them to whoever reaches it: the operator's browser, and Prometheus.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from typing import Any

from aiohttp import web

from app.settings import Settings
from app.web.context import SETTINGS
from app.web.errors import ApiError
from app.web.paths import PUBLIC_PREFIXES

log = logging.getLogger(__name__)


def is_public(path: str) -> bool:
    """Tell whether ``path`` is the API's (served to anyone on the web port)."""
    return path.startswith(PUBLIC_PREFIXES)


def admin_credentials(request: web.Request, settings: Settings) -> bool:
    """Tell whether the request carries the admin key (``x-admin-key`` or a Bearer token)."""
    expected = settings.admin_key.get_secret_value() if settings.admin_key else ""
    if not expected:
        return False
    given = request.headers.get("x-admin-key", "")
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if not given and scheme.lower() == "bearer":
        given = token.strip()
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


def on_port(request: web.Request, port: int) -> bool:
    """Tell whether the request came in on the listener of ``port``."""
    address = request.transport.get_extra_info("sockname") if request.transport else None
    return isinstance(address, tuple) and len(address) >= 2 and address[1] == port


@web.middleware
async def operator_gate(request: web.Request, handler: Any) -> web.StreamResponse:
    """Keep the operator pages off the API's port (see the module docstring)."""
    settings = request.app[SETTINGS]
    unrouted = request.match_info.http_exception is not None  # a 404 or 405 as it is
    if (
        unrouted
        or is_public(request.path)
        or (settings.operator_port and on_port(request, settings.operator_port))
        or admin_credentials(request, settings)
    ):
        response: web.StreamResponse = await handler(request)
        return response
    where = (
        f"{settings.operator_host}:{settings.operator_port} (OCRSTREAM_OPERATOR_PORT)"
        if settings.operator_port
        else "no operator listener (OCRSTREAM_OPERATOR_PORT=0)"
    )
    raise ApiError(
        403,
        f"{request.path[:100]} is an operator page: served on {where}, or here with the "
        "admin key (x-admin-key, or Authorization: Bearer)",
    )


def serve_operator_pages(
    web_app: web.Application, runner: web.AppRunner, settings: Settings
) -> None:
    """Add the operator listener to the web server once it runs (nothing when port 0)."""
    if not settings.operator_port:
        return

    async def start_when_serving() -> None:
        # Why wait: a listener needs the runner's server, made after the app's startup.
        while runner.server is None:
            await asyncio.sleep(0.05)
        site = web.TCPSite(runner, settings.operator_host, settings.operator_port)
        try:
            await site.start()
        except OSError as exc:
            log.error(
                "the operator pages cannot be served on %s:%d (%s): set OCRSTREAM_OPERATOR_PORT",
                settings.operator_host,
                settings.operator_port,
                exc,
            )
            return
        log.info(
            "operator pages on http://%s:%d/dashboard",
            settings.operator_host,
            settings.operator_port,
        )

    async def on_startup(app: web.Application) -> None:
        app[_STARTER] = asyncio.ensure_future(start_when_serving())

    web_app.on_startup.append(on_startup)


_STARTER = web.AppKey("operator_listener", asyncio.Task)
