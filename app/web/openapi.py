"""The OpenAPI 3.1 document of the HTTP API, served at /openapi.json.

The schemas are generated from the request and answer models (``models/api.py``), the same
models the handlers parse and answer with; only the table of paths is written here.
"""

from __future__ import annotations

from typing import Any, get_args

from aiohttp import web
from pydantic.json_schema import models_json_schema

from app.pipeline.address_book import SPANS_S
from models.api import ANSWERS, REQUESTS
from models.events import Network
from models.keys import KEY_ID_PATTERN

_, _generated = models_json_schema(
    [(model, "validation") for model in REQUESTS] + [(model, "serialization") for model in ANSWERS],
    ref_template="#/components/schemas/{model}",
)
SCHEMAS: dict[str, Any] = _generated["$defs"]


def _error(description: str) -> dict[str, Any]:
    return _json("ErrorAnswer", description)


# Why a 503: the book is on one worker, which changes on a rebalance and then rebuilds its index.
_BOOK_AWAY = (
    "the book is moving to another worker, or being rebuilt by the one that took it over; "
    "retry_after says when"
)


def _json(model: str, description: str) -> dict[str, Any]:
    assert model in SCHEMAS, model  # a path may only name a generated schema
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model}"}}},
    }


_AUTH_ERRORS = {
    "401": _error("missing or invalid x-api-key"),
    "403": _error("revoked key"),
    "429": _error("rate limit exceeded; retry_after says when to retry"),
}
_ADMIN_ERRORS = {"401": _error("missing x-admin-key"), "403": _error("wrong admin key")}
_SERVER_ERROR = {"500": _error("an unexpected failure; request_id names it in the log")}


def _body(model: str, required: bool = True) -> dict[str, Any]:
    assert model in SCHEMAS, model
    schema = {"$ref": f"#/components/schemas/{model}"}
    return {"required": required, "content": {"application/json": {"schema": schema}}}


_KEY_ID = {
    "name": "key_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": KEY_ID_PATTERN},
}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "ocrstream",
        "version": "0.1.0",
        "description": "OCR on demand, each API key's keywords and live streams, and key "
        'administration. Errors are `{"status": "error", "error": "..."}`.',
    },
    "components": {
        "securitySchemes": {
            "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
            "adminKey": {"type": "apiKey", "in": "header", "name": "x-admin-key"},
            "streamToken": {"type": "apiKey", "in": "query", "name": "token"},
        },
        "schemas": SCHEMAS,
    },
    "paths": {
        "/ocr": {
            "post": {
                "summary": "OCR one image",
                "security": [{"apiKey": []}],
                "requestBody": _body("OcrRequest", required=True),
                "responses": {
                    "200": _json("OcrAnswer", "the text found"),
                    "400": _error("neither or both fields, bad base64, bad URL scheme"),
                    "413": _error("image over 10 MB or over the pixel limit"),
                    "415": _error("not an image"),
                    "422": _error(
                        "imageUrl could not be fetched, or the image cannot be read (a side "
                        "over the limit, or the OCR engine failed on it); the error says why"
                    ),
                    "503": _error(
                        "the /ocr queue is full or the OCR process died; retry_after says when"
                    ),
                    **_AUTH_ERRORS,
                },
            }
        },
        "/keywords": {
            "get": {
                "summary": "List the caller's keywords",
                "security": [{"apiKey": []}],
                "responses": {"200": _json("KeywordsAnswer", "the keywords"), **_AUTH_ERRORS},
            },
            "post": {
                "summary": "Add keywords; answers the full list",
                "security": [{"apiKey": []}],
                "requestBody": _body("KeywordsRequest"),
                "responses": {
                    "200": _json("KeywordsAnswer", "the full list"),
                    "400": _error("not a list of strings, blank, too long, or over 100"),
                    "503": _error("sent but not applied in time"),
                    **_AUTH_ERRORS,
                },
            },
            "delete": {
                "summary": 'Remove keywords, or all with {"all": true}',
                "security": [{"apiKey": []}],
                "requestBody": _body("RemoveKeywordsRequest", required=True),
                "responses": {
                    "200": _json("KeywordsAnswer", "what is left"),
                    "400": _error("nothing to remove named"),
                    "503": _error("sent but not applied in time"),
                    **_AUTH_ERRORS,
                },
            },
        },
        "/ws": {
            "get": {
                "summary": "Live stream of the caller's deliveries over a WebSocket",
                "description": "Text frames, one JSON document each: the events the key's "
                "channel topics get, plus stream_ready (first) and stream_dropped (events "
                "dropped because the client read too slowly, and how many). Pings every "
                "OCRSTREAM_STREAM_PING_S seconds; closes with 1008 when the key is revoked and "
                "1001 when the worker stops. See README.md, Live streams.",
                "security": [{"apiKey": []}],
                "responses": {
                    "101": {"description": "switching protocols: the stream follows"},
                    "400": _error("not a WebSocket upgrade request"),
                    "503": _error("the broker cannot be read"),
                    **_AUTH_ERRORS,
                    "429": _error(
                        "rate limit exceeded, or too many live streams for this key; "
                        "retry_after says when to retry"
                    ),
                },
            }
        },
        "/stream": {
            "get": {
                "summary": "Live stream of the caller's deliveries as Server-Sent Events",
                "description": "Unnamed events carry the deliveries (one JSON document each, "
                "as on the key's channel topics); named events stream_ready, stream_dropped "
                "and stream_closed carry the stream's own news. Each delivery has an `id:`; "
                "a reconnect with Last-Event-ID gets the ones it missed (the last few). A "
                "': ping' comment every OCRSTREAM_SSE_KEEPALIVE_S seconds. Open it with "
                "x-api-key, with ?token= from POST /stream/token (browsers), or, when the "
                "operator turned it on, without credentials (the public stream: every delivery, "
                "text cut to 100 characters). See docs/live-streams.md.",
                "security": [{"apiKey": []}, {"streamToken": []}, {}],
                "parameters": [
                    {
                        "name": "token",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string"},
                        "description": "a token from POST /stream/token",
                    }
                ],
                "responses": {
                    "200": {
                        "description": "the stream (never ends unless revoked or stopped)",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    "503": _error("the broker cannot be read"),
                    **_AUTH_ERRORS,
                    "429": _error(
                        "rate limit exceeded, or too many live streams for this key; "
                        "retry_after says when to retry"
                    ),
                },
            }
        },
        "/stream/token": {
            "post": {
                "summary": "A token that opens GET /stream?token= for this key (24 h)",
                "description": "For browsers: EventSource cannot send headers. The token "
                "is signed, scoped to the key and dies with it; keep it as you keep the key.",
                "security": [{"apiKey": []}],
                "responses": {
                    "200": _json("StreamTokenAnswer", "the token and when it expires"),
                    **_AUTH_ERRORS,
                },
            }
        },
        "/webhooks": {
            "get": {
                "summary": "The caller's webhooks",
                "security": [{"apiKey": []}],
                "responses": {"200": _json("WebhooksAnswer", "the webhooks"), **_AUTH_ERRORS},
            },
            "post": {
                "summary": "Add a webhook (or change its format)",
                "description": "format json: the event, signed with HMAC-SHA256 in "
                "X-Ocrstream-Signature; discord or slack: their incoming-webhook bodies (not "
                "signed). The signing secret is in the answer to the key's first webhook, "
                "once. See docs/webhooks.md.",
                "security": [{"apiKey": []}],
                "requestBody": _body("AddWebhookRequest", required=True),
                "responses": {
                    "201": _json("WebhooksAnswer", "added: every webhook of the key"),
                    "200": _json("WebhooksAnswer", "its format changed"),
                    "400": _error("not an http(s) URL, or an unknown format"),
                    "409": _error("a refused URL (internal address), or 10 webhooks already"),
                    "503": _error("sent but not applied in time"),
                    **_AUTH_ERRORS,
                },
            },
            "delete": {
                "summary": "Remove a webhook by its URL",
                "security": [{"apiKey": []}],
                "requestBody": _body("RemoveWebhookRequest", required=True),
                "responses": {
                    "200": _json("WebhooksAnswer", "the webhooks left"),
                    "400": _error("no url given"),
                    "404": _error("the key has no such webhook"),
                    "503": _error("sent but not applied in time"),
                    **_AUTH_ERRORS,
                },
            },
        },
        "/webhooks/{webhook_id}": {
            "delete": {
                "summary": "Remove a webhook by its id",
                "security": [{"apiKey": []}],
                "parameters": [
                    {
                        "name": "webhook_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "200": _json("WebhooksAnswer", "the webhooks left"),
                    "404": _error("the key has no such webhook"),
                    "503": _error("sent but not applied in time"),
                    **_AUTH_ERRORS,
                },
            }
        },
        "/addresses/{network}/{address}": {
            "get": {
                "summary": "When an address was first seen, and its distinct posts per 5 minutes",
                "description": "From the address book: every address a post's text or an "
                "image showed (buy_ca), its first sighting, and how many distinct posts showed "
                "it in each 5-minute window of the last 24 hours. See docs/records.md.",
                "security": [{"apiKey": []}],
                "parameters": [
                    {
                        "name": "network",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": list(get_args(Network))},
                    },
                    {
                        "name": "address",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                ],
                "responses": {
                    "200": _json("AddressAnswer", "its first sighting and windows"),
                    "404": _error("not seen, or no such network, or the book is off"),
                    "503": _error(_BOOK_AWAY),
                    **_AUTH_ERRORS,
                },
            }
        },
        "/trending": {
            "get": {
                "summary": "The addresses with the most distinct posts in a window",
                "security": [{"apiKey": []}],
                "parameters": [
                    {
                        "name": "window",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": list(SPANS_S), "default": "1h"},
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
                    },
                ],
                "responses": {
                    "200": _json("TrendingAnswer", "the addresses, most posts first"),
                    "400": _error("an unknown window, or a limit out of range"),
                    "404": _error("the book is off"),
                    "503": _error(_BOOK_AWAY),
                    **_AUTH_ERRORS,
                },
            }
        },
        "/tg_subscription": {
            "get": {
                "summary": "The caller's Telegram subscription (data null: none)",
                "security": [{"apiKey": []}],
                "responses": {
                    "200": _json("TelegramSubscriptionAnswer", "the subscription, or null"),
                    **_AUTH_ERRORS,
                },
            },
            "post": {
                "summary": "Send the caller's deliveries to a Telegram chat (replaces any)",
                "description": "The operator's bot sends each delivery with sendMessage, "
                "paced to Telegram's limits; the bot must be a member of the chat. When "
                "Telegram answers 403 (the bot was removed), the subscription turns INACTIVE. "
                "See docs/telegram.md.",
                "security": [{"apiKey": []}],
                "requestBody": _body("TelegramSubscriptionRequest", required=True),
                "responses": {
                    "201": _json("TelegramSubscriptionAnswer", "the subscription"),
                    "400": _error("not a chat id"),
                    "503": _error("no bot configured, or sent but not applied in time"),
                    **_AUTH_ERRORS,
                },
            },
            "delete": {
                "summary": "Stop sending the caller's deliveries to Telegram",
                "security": [{"apiKey": []}],
                "responses": {
                    "200": _json("TelegramSubscriptionAnswer", "data null"),
                    "404": _error("no subscription"),
                    "503": _error("sent but not applied in time"),
                    **_AUTH_ERRORS,
                },
            },
        },
        "/admin/keys": {
            "post": {
                "summary": "Create an API key (the key is in the answer, once)",
                "security": [{"adminKey": []}],
                "requestBody": _body("CreateKeyRequest", required=False),
                "responses": {
                    "201": _json("KeyAnswer", "the new key"),
                    "400": _error("invalid label or channels"),
                    "409": _error("a channel is a pipeline topic"),
                    **_ADMIN_ERRORS,
                },
            },
            "get": {
                "summary": "List API keys",
                "security": [{"adminKey": []}],
                "responses": {"200": _json("KeyListAnswer", "every key"), **_ADMIN_ERRORS},
            },
        },
        "/admin/keys/{key_id}": {
            "delete": {
                "summary": "Revoke an API key",
                "security": [{"adminKey": []}],
                "parameters": [_KEY_ID],
                "responses": {
                    "200": _json("KeyAnswer", "the revoked key"),
                    "404": _error("no such key"),
                    **_ADMIN_ERRORS,
                },
            }
        },
        "/admin/keys/{key_id}/channels": {
            "put": {
                "summary": "Set a key's channel topics",
                "security": [{"adminKey": []}],
                "parameters": [_KEY_ID],
                "requestBody": _body("SetChannelsRequest", required=True),
                "responses": {
                    "200": _json("KeyAnswer", "the key"),
                    "400": _error("invalid channels"),
                    "404": _error("no such key"),
                    "409": _error("the key is revoked, or a channel is a pipeline topic"),
                    **_ADMIN_ERRORS,
                },
            }
        },
        "/admin/keys/{key_id}/webhooks": {
            "put": {
                "summary": "Set a key's webhook URLs (an empty list removes them)",
                "description": "Deliveries are POSTed as JSON, signed with HMAC-SHA256 in "
                "X-Ocrstream-Signature (see README.md, Webhooks). The signing secret is in the "
                "answer when it is minted: with the key's first webhook, or on rotate_secret.",
                "security": [{"adminKey": []}],
                "parameters": [_KEY_ID],
                "requestBody": _body("SetWebhooksRequest", required=True),
                "responses": {
                    "200": _json("KeyAnswer", "the key, and its new secret when minted"),
                    "400": _error("invalid webhooks"),
                    "404": _error("no such key"),
                    "409": _error("the key is revoked, or a URL is refused (internal address)"),
                    **_ADMIN_ERRORS,
                },
            }
        },
    },
}


# What every operation may answer besides its own: a 500 (JSON, with a request id), and for a
# body over the route's limit a 413.
for _item in OPENAPI["paths"].values():
    for _operation in _item.values():
        _operation["responses"].update(_SERVER_ERROR)
        if "requestBody" in _operation:
            _operation["responses"].setdefault("413", _error("request body over the limit"))


async def openapi_handler(request: web.Request) -> web.Response:
    """Serve the OpenAPI document."""
    return web.json_response(OPENAPI)
