"""JSON error answers: ``{"status": "error", "error": "..."}`` with the right status code."""

from __future__ import annotations

import logging
import uuid
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from app.web.paths import API_PREFIXES
from models.api import ErrorAnswer

log = logging.getLogger(__name__)
Body = TypeVar("Body", bound=BaseModel)

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
        body = ErrorAnswer(error=self.message, **self.extra).model_dump(exclude_none=True)
        return web.json_response(body, status=self.status, headers=self.headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """The error boundary of every request: each failure becomes a JSON error answer.

    ApiError and aiohttp's HTTP errors keep their status; anything else is a 500 with a request
    id that is logged with the traceback and counted, so no answer is ever a bare text 500.
    """
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except ApiError as exc:
        response = exc.response()
        for name, value in request.get(RATE_HEADERS, {}).items():
            response.headers.setdefault(name, value)
        return response
    except web.HTTPException as exc:
        # Why every 404 and 405: a path nothing serves is the API's answer too (JSON); the
        # other errors of Faust's own pages keep Faust's shape.
        unrouted = isinstance(exc, web.HTTPNotFound | web.HTTPMethodNotAllowed)
        if exc.status < 400 or not (unrouted or request.path.startswith(API_PREFIXES)):
            raise
        return ApiError(exc.status, exc.reason).response()
    except Exception:
        request_id = uuid.uuid4().hex[:16]
        # Why the path only: a query string may carry a secret (a stream token).
        log.exception(
            "internal error answering %s %s (request %s)",
            request.method,
            request.path[:200],
            request_id,
        )
        return ApiError(
            500,
            "internal error; the server logged it with this request id",
            extra={"request_id": request_id},
            headers={"X-Request-Id": request_id},
        ).response()


async def read_body(request: web.Request, max_bytes: int) -> bytes:
    """Read a request body of at most ``max_bytes``; 413 past it (declared or counted)."""
    declared = request.content_length
    if declared is not None and declared > max_bytes:
        raise ApiError(413, f"request body is {declared:,} bytes, over the {max_bytes:,} limit")
    body = bytearray()
    async for chunk in request.content.iter_chunked(64 * 1024):
        body.extend(chunk)
        if len(body) > max_bytes:
            raise ApiError(413, f"request body is over the {max_bytes:,} byte limit")
    return bytes(body)


async def read_model(
    request: web.Request, model: type[Body], max_bytes: int, empty: bytes | None = None
) -> Body:
    """Parse the JSON body into ``model``: 400 with the first reason, 413 past ``max_bytes``.

    ``empty``: the JSON an empty body stands for (None: an empty body is refused).
    """
    return parse_body(await read_body(request, max_bytes), model, empty)


def parse_body(raw: bytes, model: type[Body], empty: bytes | None = None) -> Body:
    """Return ``raw`` parsed into ``model``; raise ApiError(400) saying why it cannot be."""
    if not raw.strip():
        if empty is None:
            raise ApiError(400, "request body must be a JSON object")
        raw = empty
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise ApiError(400, describe_invalid(exc)) from None


def describe_invalid(exc: ValidationError) -> str:
    """Return the first reason a body was refused, as one sentence for the client."""
    error = exc.errors(include_url=False)[0]
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "json_invalid":
        return f"request body is not valid JSON: {message.removeprefix('Invalid JSON: ')}"
    if error["type"] in ("model_type", "dict_type") and not error["loc"]:
        return "request body must be a JSON object"
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {message}" if where else message
