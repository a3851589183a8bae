"""JSON error answers: ``{"status": "error", "error": "..."}`` with the right status code."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

# Where a handler leaves the caller's X-RateLimit-* headers for error answers.
RATE_HEADERS = web.RequestKey("rate_headers", dict)


class ApiError(Exception):
    """An error answer: the HTTP status, a message for the client, and extra fields/headers."""

    def __init__(
        self,
        status: int,
        message: str,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra or {}
        self.headers = headers or {}

    def response(self) -> web.Response:
        """Return the JSON response for this error."""
        body = {"status": "error", "error": self.message, **self.extra}
        return web.json_response(body, status=self.status, headers=self.headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Turn ApiError (and aiohttp's own HTTP errors) into the JSON error shape."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except ApiError as exc:
        response = exc.response()
        for name, value in request.get(RATE_HEADERS, {}).items():
            response.headers.setdefault(name, value)
        return response
    except web.HTTPException as exc:
        if exc.status < 400 or not request.path.startswith(API_PREFIXES):
            raise
        return ApiError(exc.status, exc.reason).response()


# Paths whose errors are ours to shape (Faust's own pages keep theirs).
API_PREFIXES = ("/ocr", "/keywords", "/admin", "/openapi.json", "/ws", "/stream")


async def read_json(request: web.Request, max_bytes: int) -> Any:
    """Read a JSON body of at most ``max_bytes``; 413 past it, 400 when it is not JSON."""
    declared = request.content_length
    if declared is not None and declared > max_bytes:
        raise ApiError(413, f"request body is {declared:,} bytes, over the {max_bytes:,} limit")
    body = bytearray()
    async for chunk in request.content.iter_chunked(64 * 1024):
        body.extend(chunk)
        if len(body) > max_bytes:
            raise ApiError(413, f"request body is over the {max_bytes:,} byte limit")
    if not body:
        raise ApiError(400, "request body must be a JSON object")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}") from None
