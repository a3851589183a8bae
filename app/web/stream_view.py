"""GET /ws (WebSocket) and GET /stream (Server-Sent Events): a key's deliveries as they happen.

Both carry the same events as the key's channel topics, one JSON document each. Besides them:
``stream_ready`` once the stream is live, ``stream_dropped`` where events were dropped because
the client read too slowly, and the end of the stream on revoke or shutdown (a WebSocket close
code, or a ``stream_closed`` event). A stream is opened with the ``x-api-key`` header, or with
``?token=`` from ``POST /stream/token`` (a browser's EventSource cannot send headers), or, when
the operator turned it on, without credentials: the public stream, every delivery of the
firehose with its text cut to 100 characters.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web

from app.live.feed import BoundedFeed, Closed, Dropped, LiveEvent
from app.live.hub import PUBLIC, TooManyStreams
from app.metrics import metrics
from app.settings import Settings
from app.web import stream_tokens
from app.web.auth import api_key_caller, rate_limit, retry_later
from app.web.context import KEYS, LIVE, SETTINGS
from app.web.errors import RATE_HEADERS, ApiError
from models.api import StreamToken, StreamTokenAnswer
from models.keys import KeyRecord

# Why: a broker that cannot be reached should get a clear answer, not a silent stream.
_READY_TIMEOUT_S = 10.0
# Why a guess: a slot frees when one of the key's streams closes, which no one can foretell.
_STREAM_RETRY_AFTER_S = 5.0


def _ready_message(settings: Settings) -> dict[str, Any]:
    return {
        "source": "stream_ready",
        "buffer_events": settings.stream_buffer_events,
        "ping_s": settings.stream_ping_s,
    }


def _dropped_message(dropped: Dropped, settings: Settings) -> dict[str, Any]:
    return {
        "source": "stream_dropped",
        "dropped": dropped.count,
        "reason": f"the client read too slowly: over {settings.stream_buffer_events} events "
        "were waiting",
    }


@asynccontextmanager
async def _open_feed(request: web.Request) -> AsyncIterator[tuple[BoundedFeed, dict[str, str]]]:
    """Authenticate, rate-limit and subscribe; errors here are JSON answers, before any upgrade."""
    live_hub, settings = request.app[LIVE], request.app[SETTINGS]
    subscriber, headers = _subscriber(request, settings)
    # Why also a query parameter: EventSource sends Last-Event-ID itself; other clients may not.
    last_event_id = request.headers.get("Last-Event-ID") or request.query.get("lastEventId")
    try:
        async with live_hub.subscription(subscriber, last_event_id) as feed:
            if not await live_hub.wait_ready(_READY_TIMEOUT_S):
                raise ApiError(503, "live stream unavailable: the broker cannot be read")
            yield feed, headers
    except TooManyStreams:
        what = (
            f"the public stream already has {settings.public_stream_max} connections"
            if subscriber == PUBLIC
            else f"this key already has {settings.stream_max_per_key} live streams open"
        )
        raise retry_later(429, f"{what} on this worker", _STREAM_RETRY_AFTER_S, headers) from None


def _subscriber(request: web.Request, settings: Settings) -> tuple[str, dict[str, str]]:
    """Return whose stream this is (a key id, or PUBLIC) and the caller's rate headers."""
    if request.headers.get("x-api-key", "").strip():
        record, headers = api_key_caller(request)
        return record.key_id, headers
    token = request.query.get("token")
    if token:
        record, headers = token_caller(request, token)
        return record.key_id, headers
    if settings.public_stream and request.path == "/stream":
        return PUBLIC, {}
    raise ApiError(401, "missing x-api-key header (or ?token= from POST /stream/token)")


def token_caller(request: web.Request, token: str) -> tuple[KeyRecord, dict[str, str]]:
    """Authenticate a stream token (401 if not valid, 403 for a revoked key) and rate-limit."""
    try:
        record = request.app[KEYS].get(stream_tokens.key_id_of(token))
        stream_tokens.verify(token, record, _token_secret(request.app[SETTINGS]))
    except stream_tokens.TokenError as exc:
        raise ApiError(401, str(exc)) from None
    assert record is not None  # verify refuses a token of no key
    if record.revoked:
        raise ApiError(403, "API key revoked")
    headers: dict[str, str] = {}
    request[RATE_HEADERS] = headers
    rate_limit(request, record, headers)
    return record, headers


def _token_secret(settings: Settings) -> str:
    secret = settings.stream_token_secret
    return secret.get_secret_value() if secret is not None else ""


async def stream_token(request: web.Request) -> web.Response:
    """Mint a token that opens ``GET /stream?token=`` for this key (24 h by default)."""
    record, headers = api_key_caller(request)
    settings = request.app[SETTINGS]
    token = stream_tokens.mint(record, settings.stream_token_ttl_s, _token_secret(settings))
    expires_at = datetime.fromtimestamp(token.expires_at, UTC).isoformat().replace("+00:00", "Z")
    answer = StreamTokenAnswer(
        data=StreamToken(token=token.token, expires_at=expires_at),
        message="Stream token created",
    )
    return web.json_response(answer.model_dump(), headers=headers)


async def _pump(
    settings: Settings,
    feed: BoundedFeed,
    send_event: Callable[[LiveEvent], Awaitable[None]],
    send_meta: Callable[[dict[str, Any]], Awaitable[None]],
    ping: Callable[[], Awaitable[None]] | None = None,
    gone: Callable[[], bool] = lambda: False,
) -> Closed:
    """Write the feed to the client until it closes; return why it closed."""
    # Why a write deadline: a client that stopped reading must not hold a handler forever.
    write_timeout_s = 2 * settings.stream_ping_s
    ping_every_s = settings.sse_keepalive_s
    # Why wake up every second: a client that left is noticed (and its slot freed) at once,
    # not at the next write.
    last_write = time.monotonic()
    while True:
        item = await feed.take(1.0)
        if isinstance(item, Closed):
            return item
        if item is None:
            if gone():
                return Closed(1000, "client closed")
            if ping is not None and time.monotonic() - last_write >= ping_every_s:
                async with asyncio.timeout(write_timeout_s):
                    await ping()
                last_write = time.monotonic()
            continue
        last_write = time.monotonic()
        # Why asyncio.timeout, not wait_for: wait_for writes through a task of its own, so each
        # event cost the writer extra turns of the loop, and a burst the hub offered between
        # two of its turns could fill the feed of a client that keeps up.
        async with asyncio.timeout(write_timeout_s):
            if isinstance(item, Dropped):
                await send_meta(_dropped_message(item, settings))
            else:
                await send_event(item)
        if isinstance(item, LiveEvent):
            metrics.stream_events.labels(outcome="sent").inc()


async def websocket_stream(request: web.Request) -> web.StreamResponse:
    """Stream the caller's deliveries over a WebSocket (text frames, one JSON event each)."""
    settings = request.app[SETTINGS]
    # aiohttp pings every stream_ping_s and closes the socket when no pong comes back.
    # Why no per-message compression: each connection would compress every event on its own
    # (the same event once per client), and aiohttp compresses one over 16 KB in a thread, a
    # few turns of the loop per event, so a burst could fill the feed of a client keeping up.
    ws = web.WebSocketResponse(heartbeat=settings.stream_ping_s, compress=False)
    if not ws.can_prepare(request).ok:
        raise ApiError(400, "GET /ws needs a WebSocket upgrade (or use /stream for SSE)")
    async with _open_feed(request) as (feed, headers):
        ws.headers.update(headers)
        await ws.prepare(request)
        reader = asyncio.ensure_future(_read_until_closed(ws, feed))
        try:
            await ws.send_json(_ready_message(settings))
            closed = await _pump(
                settings,
                feed,
                lambda event: ws.send_str(event.body.decode()),
                ws.send_json,
            )
            if not ws.closed:
                await ws.close(code=closed.code, message=closed.reason.encode())
        except (ConnectionError, TimeoutError):
            pass  # the client went away or stopped reading: nothing to tell it
        finally:
            reader.cancel()
        return ws


async def _read_until_closed(ws: web.WebSocketResponse, feed: BoundedFeed) -> None:
    """Read what the client sends: its close and pongs are seen, a text "ping" gets "pong"."""
    async for message in ws:
        if message.type == WSMsgType.ERROR:
            break
        if message.type == WSMsgType.TEXT and message.data.strip().lower() == "ping":
            await ws.send_str("pong")
    feed.close(Closed(1000, "client closed"))


async def sse_stream(request: web.Request) -> web.StreamResponse:
    """Stream the caller's deliveries as Server-Sent Events (``data:`` lines, one JSON each)."""
    settings = request.app[SETTINGS]
    async with _open_feed(request) as (feed, headers):
        response = web.StreamResponse(
            headers={
                **headers,
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                # Why: proxies such as nginx would otherwise buffer the stream.
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)

        async def send_meta(message: dict[str, Any]) -> None:
            await response.write(sse_frame(json.dumps(message).encode(), message["source"]))

        try:
            await send_meta(_ready_message(settings))
            closed = await _pump(
                settings,
                feed,
                lambda event: response.write(sse_frame(event.body, event_id=event.id)),
                send_meta,
                ping=lambda: response.write(b": ping\n\n"),
                gone=lambda: request.transport is None or request.transport.is_closing(),
            )
            await send_meta(
                {"source": "stream_closed", "code": closed.code, "reason": closed.reason}
            )
            await response.write_eof()
        except (ConnectionError, TimeoutError):
            pass  # the client went away or stopped reading
        return response


def sse_frame(data: bytes, event: str | None = None, event_id: str | None = None) -> bytes:
    """Return one Server-Sent Events frame (``data`` is one line of JSON)."""
    head = f"event: {event}\n".encode() if event else b""
    if event_id is not None:
        head += f"id: {event_id}\n".encode()
    return head + b"data: " + data + b"\n\n"
