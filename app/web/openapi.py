"""The OpenAPI 3.1 document of the HTTP API, served at /openapi.json (tests keep it in step)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from app.keys.keywords import MAX_KEYWORD_CHARS, MAX_KEYWORDS_PER_KEY


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _json(schema_ref: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}},
    }


_AUTH_ERRORS = {
    "401": _error("missing x-api-key"),
    "403": _error("unknown or revoked key"),
    "429": _error("rate limit exceeded; retry_after says when to retry"),
}
_ADMIN_ERRORS = {"401": _error("missing x-admin-key"), "403": _error("wrong admin key")}
_KEYWORDS_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/KeywordsIn"}}},
}
_KEY_ID = {
    "name": "key_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[a-z0-9]{8,32}$"},
}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "ocrstream",
        "version": "0.1.0",
        "description": "OCR on demand, and each API key's keywords. Errors are "
        '`{"status": "error", "error": "..."}`.',
    },
    "components": {
        "securitySchemes": {
            "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
            "adminKey": {"type": "apiKey", "in": "header", "name": "x-admin-key"},
        },
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["status", "error"],
                "properties": {
                    "status": {"const": "error"},
                    "error": {"type": "string"},
                    "retry_after": {"type": "integer", "description": "seconds (429, 503)"},
                    "request_id": {
                        "type": "string",
                        "description": "500 only: the id the worker's log has the error under",
                    },
                },
            },
            "OcrRequest": {
                "type": "object",
                "description": "Exactly one of imageUrl or image.",
                "properties": {
                    "imageUrl": {"type": "string", "description": "http(s) URL, at most 10 MB"},
                    "image": {
                        "type": "string",
                        "description": "data:image/...;base64, URI or raw base64, at most 10 MB",
                    },
                },
            },
            "OcrResponse": {
                "type": "object",
                "required": ["data", "message"],
                "properties": {
                    "data": {
                        "type": "object",
                        "required": ["text", "lines", "elapsed_ms", "total_ms"],
                        "properties": {
                            "text": {"type": "string", "description": "lines joined by \\n"},
                            "lines": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["text", "score"],
                                    "properties": {
                                        "text": {"type": "string"},
                                        "score": {"type": "number"},
                                    },
                                },
                            },
                            "elapsed_ms": {"type": "number", "description": "OCR time"},
                            "total_ms": {"type": "number", "description": "end to end"},
                        },
                    },
                    "message": {"const": "Text extracted successfully"},
                },
            },
            "KeywordsIn": {
                "type": "object",
                "required": ["keywords"],
                "properties": {
                    "keywords": {
                        "type": "array",
                        "maxItems": MAX_KEYWORDS_PER_KEY,
                        "items": {"type": "string", "maxLength": MAX_KEYWORD_CHARS},
                    }
                },
            },
            "KeywordsRemove": {
                "type": "object",
                "properties": {
                    "keywords": {"type": "array", "items": {"type": "string"}},
                    "all": {"type": "boolean"},
                },
            },
            "Keywords": {
                "type": "object",
                "required": ["data"],
                "properties": {
                    "data": {
                        "type": "object",
                        "required": ["keywords"],
                        "properties": {"keywords": {"type": "array", "items": {"type": "string"}}},
                    },
                    "message": {"type": "string"},
                },
            },
            "Key": {
                "type": "object",
                "required": [
                    "key_id",
                    "label",
                    "created_at",
                    "revoked",
                    "keywords",
                    "channels",
                    "webhooks",
                ],
                "properties": {
                    "key_id": {"type": "string"},
                    "label": {"type": "string"},
                    "created_at": {"type": "number"},
                    "revoked": {"type": "boolean"},
                    "keywords": {"type": "array", "items": {"type": "string"}},
                    "channels": {"type": "array", "items": {"type": "string"}},
                    "webhooks": {"type": "array", "items": {"type": "string"}},
                    "api_key": {"type": "string", "description": "only when created"},
                    "webhook_secret": {
                        "type": "string",
                        "description": "only when minted (first webhook, or rotate_secret)",
                    },
                },
            },
            "KeyAnswer": {
                "type": "object",
                "required": ["data"],
                "properties": {
                    "data": {"$ref": "#/components/schemas/Key"},
                    "message": {"type": "string"},
                },
            },
            "KeyList": {
                "type": "object",
                "required": ["data"],
                "properties": {
                    "data": {
                        "type": "object",
                        "required": ["keys"],
                        "properties": {
                            "keys": {"type": "array", "items": {"$ref": "#/components/schemas/Key"}}
                        },
                    }
                },
            },
            "KeyIn": {
                "type": "object",
                "properties": {
                    "label": {"type": "string", "maxLength": 200},
                    "channels": {
                        "type": "array",
                        "items": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,249}$"},
                    },
                },
            },
            "ChannelsIn": {
                "type": "object",
                "required": ["channels"],
                "properties": {
                    "channels": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,249}$"},
                    }
                },
            },
            "WebhooksIn": {
                "type": "object",
                "required": ["urls"],
                "properties": {
                    "urls": {
                        "type": "array",
                        "maxItems": 10,
                        "items": {
                            "type": "string",
                            "pattern": "^https?://\\S+$",
                            "maxLength": 2000,
                        },
                    },
                    "rotate_secret": {"type": "boolean", "default": False},
                },
            },
        },
    },
    "paths": {
        "/ocr": {
            "post": {
                "summary": "OCR one image",
                "security": [{"apiKey": []}],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/OcrRequest"}}
                    },
                },
                "responses": {
                    "200": _json("OcrResponse", "the text found"),
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
                "responses": {"200": _json("Keywords", "the keywords"), **_AUTH_ERRORS},
            },
            "post": {
                "summary": "Add keywords; answers the full list",
                "security": [{"apiKey": []}],
                "requestBody": _KEYWORDS_BODY,
                "responses": {
                    "200": _json("Keywords", "the full list"),
                    "400": _error("not a list of strings, blank, too long, or over 100"),
                    "503": _error("sent but not applied in time"),
                    **_AUTH_ERRORS,
                },
            },
            "delete": {
                "summary": 'Remove keywords, or all with {"all": true}',
                "security": [{"apiKey": []}],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/KeywordsRemove"}
                        }
                    },
                },
                "responses": {
                    "200": _json("Keywords", "what is left"),
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
                "and stream_closed carry the stream's own news. A ': ping' comment every "
                "OCRSTREAM_STREAM_PING_S seconds. See README.md, Live streams.",
                "security": [{"apiKey": []}],
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
        "/admin/keys": {
            "post": {
                "summary": "Create an API key (the key is in the answer, once)",
                "security": [{"adminKey": []}],
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/KeyIn"}}
                    },
                },
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
                "responses": {"200": _json("KeyList", "every key"), **_ADMIN_ERRORS},
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
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/ChannelsIn"}}
                    },
                },
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
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/WebhooksIn"}}
                    },
                },
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


async def openapi_handler(request: web.Request) -> web.Response:
    """Serve the OpenAPI document."""
    return web.json_response(OPENAPI)
