"""GET /addresses/{network}/{address} and GET /trending: what the address book knows.

The book lives on the one worker that holds its partition; any other worker asks that one
(the ``AddressBooks`` handed to the web app says where) and answers with what it said.
"""

from __future__ import annotations

from typing import get_args

import aiohttp
from aiohttp import web

from app.pipeline.address_book import SPANS_S, AddressBooks
from app.web.auth import api_key_caller, retry_later
from app.web.context import ADDRESSES
from app.web.errors import ApiError
from models.api import AddressAnswer, TrendingAnswer
from models.events import Network

# Set on a request one worker passes to another, so a book that moves mid-request is a 503,
# never a ping-pong between two workers.
FORWARDED = "x-ocrstream-forwarded"
_FORWARD_TIMEOUT_S = 5.0
_MAX_TRENDING = 100


async def address(request: web.Request) -> web.Response:
    """Return an address's first sighting and its distinct posts per 5-minute window."""
    _, headers = api_key_caller(request)
    network = request.match_info["network"]
    if network not in get_args(Network):
        raise ApiError(404, f"no network {network[:40]!r} (one of {', '.join(get_args(Network))})")
    books = _books(request)
    forwarded = await _forwarded(request, books, headers)
    if forwarded is not None:
        return forwarded
    found = books.book.lookup(network, request.match_info["address"])
    if found is None:
        raise ApiError(404, "this address was not seen (in the last posts this book has read)")
    answer = AddressAnswer.model_validate({"data": found})
    return web.json_response(answer.model_dump(mode="json"), headers=headers)


async def trending(request: web.Request) -> web.Response:
    """Return the addresses with the most distinct posts in ``window`` (``5m`` ... ``24h``)."""
    _, headers = api_key_caller(request)
    window = request.query.get("window", "1h")
    if window not in SPANS_S:
        raise ApiError(400, f"window must be one of {', '.join(SPANS_S)}")
    try:
        limit = int(request.query.get("limit", "20"))
    except ValueError:
        raise ApiError(400, "limit must be a whole number") from None
    if not 1 <= limit <= _MAX_TRENDING:
        raise ApiError(400, f"limit must be 1 to {_MAX_TRENDING}")
    books = _books(request)
    forwarded = await _forwarded(request, books, headers)
    if forwarded is not None:
        return forwarded
    ranked = books.book.trending(SPANS_S[window], limit)
    answer = TrendingAnswer.model_validate({"data": {"window": window, "addresses": ranked}})
    return web.json_response(answer.model_dump(mode="json"), headers=headers)


def _books(request: web.Request) -> AddressBooks:
    books = request.app[ADDRESSES]
    if not books.enabled:
        raise ApiError(404, "the address book is off here (OCRSTREAM_ADDRESS_BOOK=false)")
    return books


async def _forwarded(
    request: web.Request, books: AddressBooks, headers: dict[str, str]
) -> web.Response | None:
    """Return the holder's answer when another worker holds the book; None when this one does."""
    try:
        owner = books.owner()
    except KeyError:
        owner = ""
    if owner is None:
        if books.book.rebuilding:
            said = "the address book is being rebuilt after a takeover; retry"
            raise retry_later(503, said, 2, headers)
        return None
    if not owner or FORWARDED in request.headers:
        raise retry_later(503, "the address book is moving to another worker; retry", 2, headers)
    timeout = aiohttp.ClientTimeout(total=_FORWARD_TIMEOUT_S)
    passed = {"x-api-key": request.headers.get("x-api-key", ""), FORWARDED: "1"}
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.get(owner.rstrip("/") + request.path_qs, headers=passed) as answer:
                body = await answer.read()
                status = answer.status
    except (aiohttp.ClientError, TimeoutError):
        said = "the worker holding the address book did not answer"
        raise retry_later(503, said, 2, headers) from None
    return web.Response(body=body, status=status, content_type="application/json", headers=headers)
