"""CORS: web pages on the origins the operator allows may call the key holder's API.

aiohttp-cors (the CORS layer Faust's web server already carries) answers the preflights and
adds the response headers; this module picks the routes and the options, and refuses with a
sentence a browser's request from an origin that is not allowed. Only the key holder's routes
take part: the admin routes and the operator pages are never open to another origin.
"""

from __future__ import annotations

from typing import Any

import aiohttp_cors
from aiohttp import web
from yarl import URL

from app.settings import Settings
from app.web.context import SETTINGS
from app.web.errors import ApiError
from app.web.paths import KEY_HOLDER_PREFIXES

# The request headers a page may send (x-api-key makes every call from a page preflighted).
ALLOWED_HEADERS = ("x-api-key", "content-type", "last-event-id")
# What a page may read of an answer besides the CORS-safelisted headers.
EXPOSED_HEADERS = ("X-RateLimit-Remaining", "X-RateLimit-Reset", "Retry-After", "X-Request-Id")
# Why 10 minutes: Chromium caps a cached preflight at 2 hours, and a narrowed allow-list
# should reach browsers soon.
PREFLIGHT_MAX_AGE_S = 600


def is_key_holders(path: str) -> bool:
    """Tell whether ``path`` is one of the key holder's routes (the ones CORS applies to)."""
    return path.startswith(KEY_HOLDER_PREFIXES)


def enable_cors(web_app: web.Application, settings: Settings, cors: Any = None) -> None:
    """Open the key holder's routes to the allowed origins (none when the setting is empty).

    ``cors`` is the application's ``aiohttp_cors.CorsConfig`` where one exists already (Faust's
    web server makes one); otherwise one is set up.
    """
    web_app.middlewares.append(origin_gate)
    origins = settings.cors_origin_set
    if not origins:
        return
    config = cors if cors is not None else aiohttp_cors.setup(web_app)
    options = aiohttp_cors.ResourceOptions(  # type: ignore[no-untyped-call]  # untyped upstream
        allow_credentials=False,  # an API key travels in a header, never in a cookie
        allow_headers=ALLOWED_HEADERS,
        expose_headers=EXPOSED_HEADERS,
        max_age=PREFLIGHT_MAX_AGE_S,
    )
    for route in list(web_app.router.routes()):
        # Why not HEAD: aiohttp adds it beside each GET, and the GET's entry covers it.
        resource = route.resource
        if route.method != "HEAD" and resource and is_key_holders(resource.canonical):
            config.add(route, dict.fromkeys(origins, options))


def origin_allowed(origin: str, request: web.Request, settings: Settings) -> bool:
    """Tell whether a request with this ``Origin`` may be served: the same origin, or allowed."""
    allowed = settings.cors_origin_set
    return "*" in allowed or origin.lower() in allowed or _same_origin(origin, request)


def _same_origin(origin: str, request: web.Request) -> bool:
    try:
        page = URL(origin)
        served = URL.build(scheme=page.scheme, authority=request.host)
    except ValueError:
        return False
    return page.host is not None and (page.host, page.port) == (served.host, served.port)


@web.middleware
async def origin_gate(request: web.Request, handler: Any) -> web.StreamResponse:
    """Refuse (403) a browser's request to the key holder's API from an origin not allowed."""
    origin = request.headers.get("Origin")
    settings = request.app[SETTINGS]
    if origin is None or not is_key_holders(request.path):
        response: web.StreamResponse = await handler(request)
        return response
    if origin_allowed(origin, request, settings):
        response = await handler(request)
        return response
    # Why refuse, not only leave the CORS headers out: the browser would hide the answer, but
    # the work (an OCR, a stream slot) would be done for a page the key holder never allowed.
    return ApiError(
        403,
        f"origin {origin[:100]} may not call this API from a browser: the operator lists the "
        "allowed origins in OCRSTREAM_CORS_ORIGINS",
    ).response()
