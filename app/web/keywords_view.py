"""/keywords: each API key reads and changes its own keywords (never another key's)."""

from __future__ import annotations

from aiohttp import web

from app.keywords import KeywordError, merge_keywords, normalize_keyword
from app.web.auth import api_key_caller
from app.web.control_client import apply_and_wait
from app.web.errors import ApiError, read_model
from models.api import KeywordsRequest, RemoveKeywordsRequest
from models.keys import AddKeywords, KeyRecord, RemoveKeywords

_MAX_BODY = 64 * 1024  # 100 keywords of 100 characters fit with room to spare


def _answer(keywords: tuple[str, ...], headers: dict[str, str], message: str) -> web.Response:
    return web.json_response(
        {"data": {"keywords": list(keywords)}, "message": message}, headers=headers
    )


async def list_keywords(request: web.Request) -> web.Response:
    """Return the caller's keywords."""
    record, headers = api_key_caller(request)
    return _answer(record.keywords, headers, "Keywords retrieved")


async def add_keywords(request: web.Request) -> web.Response:
    """Add keywords (trimmed, lowercased, de-duplicated; at most 100); return the full list."""
    record, headers = api_key_caller(request)
    words = (await read_model(request, KeywordsRequest, _MAX_BODY)).keywords
    try:
        merged = tuple(merge_keywords(record.keywords, words))
    except KeywordError as exc:
        raise ApiError(400, str(exc)) from None
    applied = await apply_and_wait(
        AddKeywords(key_id=record.key_id, keywords=tuple(words)),
        lambda r: r is not None and set(merged) <= set(r.keywords),
    )
    assert applied is not None
    return _answer(applied.keywords, headers, "Keywords added")


async def remove_keywords(request: web.Request) -> web.Response:
    """Remove the listed keywords, or all with ``{"all": true}``; return what is left."""
    record, headers = api_key_caller(request)
    body = await read_model(request, RemoveKeywordsRequest, _MAX_BODY, empty=b"{}")
    remove_all = body.all
    words = [] if remove_all else body.keywords
    gone = {normalize_keyword(w) for w in words}

    def done(r: KeyRecord | None) -> bool:
        return r is not None and (not r.keywords if remove_all else not gone & set(r.keywords))

    applied = await apply_and_wait(
        RemoveKeywords(key_id=record.key_id, keywords=tuple(words), all=remove_all), done
    )
    assert applied is not None
    return _answer(applied.keywords, headers, "Keywords removed")
