"""/keywords: each API key reads and changes its own keywords (never another key's)."""

from __future__ import annotations

from aiohttp import web

from app.web.auth import api_key_caller
from app.web.changes import applied
from app.web.context import KEY_ADMIN
from app.web.errors import read_model
from models.api import KeywordsAnswer, KeywordsData, KeywordsRequest, RemoveKeywordsRequest

_MAX_BODY = 64 * 1024  # 100 keywords of 100 characters fit with room to spare


def _answer(keywords: tuple[str, ...], headers: dict[str, str], message: str) -> web.Response:
    answer = KeywordsAnswer(data=KeywordsData(keywords=list(keywords)), message=message)
    return web.json_response(answer.model_dump(), headers=headers)


async def list_keywords(request: web.Request) -> web.Response:
    """Return the caller's keywords."""
    record, headers = api_key_caller(request)
    return _answer(record.keywords, headers, "Keywords retrieved")


async def add_keywords(request: web.Request) -> web.Response:
    """Add keywords (trimmed, lowercased, de-duplicated; at most 100); return the full list."""
    record, headers = api_key_caller(request)
    words = (await read_model(request, KeywordsRequest, _MAX_BODY)).keywords
    updated, _ = await applied(request.app[KEY_ADMIN].add_keywords(record.key_id, words))
    return _answer(updated.keywords, headers, "Keywords added")


async def remove_keywords(request: web.Request) -> web.Response:
    """Remove the listed keywords, or all with ``{"all": true}``; return what is left."""
    record, headers = api_key_caller(request)
    body = await read_model(request, RemoveKeywordsRequest, _MAX_BODY, empty=b"{}")
    words = [] if body.all else body.keywords
    updated, _ = await applied(
        request.app[KEY_ADMIN].remove_keywords(record.key_id, words, body.all)
    )
    return _answer(updated.keywords, headers, "Keywords removed")
