"""/admin/keys: create, list and revoke API keys; set their channels and webhooks (x-admin-key)."""

from __future__ import annotations

import re

from aiohttp import web

from app.web.auth import require_admin
from app.web.changes import applied
from app.web.context import KEY_ADMIN, KEYS
from app.web.errors import ApiError, read_model
from models.api import (
    CreateKeyRequest,
    KeyAnswer,
    KeyListAnswer,
    KeyListData,
    KeyView,
    SetChannelsRequest,
    SetWebhooksRequest,
)
from models.keys import KEY_ID_PATTERN, KeyRecord

_MAX_BODY = 64 * 1024


def public_view(record: KeyRecord, **shown_once: str | None) -> KeyView:
    """Return what an admin may see of a key: never its hash; a secret only when just minted."""
    return KeyView(
        key_id=record.key_id,
        label=record.label,
        created_at=record.created_at,
        revoked=record.revoked,
        keywords=list(record.keywords),
        channels=list(record.channels),
        webhooks=list(record.webhooks),
        **shown_once,
    )


def _answer(view: KeyView, message: str, status: int = 200) -> web.Response:
    body = KeyAnswer(data=view, message=message).model_dump(exclude_none=True)
    return web.json_response(body, status=status)


def _key_id(request: web.Request) -> str:
    key_id = request.match_info["key_id"]
    if re.fullmatch(KEY_ID_PATTERN, key_id) is None or request.app[KEYS].get(key_id) is None:
        raise ApiError(404, f"no key {key_id[:40]!r}")
    return key_id


async def create_key(request: web.Request) -> web.Response:
    """Create a key; the answer holds the secret key, shown this once."""
    require_admin(request)
    body = await read_model(request, CreateKeyRequest, _MAX_BODY, empty=b"{}")
    record, change = await applied(
        request.app[KEY_ADMIN].create(body.label, tuple(body.channels or ()))
    )
    return _answer(public_view(record, api_key=change.api_key), "Key created", status=201)


async def list_keys(request: web.Request) -> web.Response:
    """List every key (ids, labels, state, keywords, channels)."""
    require_admin(request)
    keys = sorted(request.app[KEYS].all(), key=lambda r: r.created_at)
    answer = KeyListAnswer(data=KeyListData(keys=[public_view(r) for r in keys]))
    return web.json_response(answer.model_dump(exclude_none=True))


async def revoke_key(request: web.Request) -> web.Response:
    """Revoke a key: it stops working on every worker as soon as each applies the change."""
    require_admin(request)
    record, _ = await applied(request.app[KEY_ADMIN].revoke(_key_id(request)))
    return _answer(public_view(record), "Key revoked")


async def set_channels(request: web.Request) -> web.Response:
    """Replace the channel topics of a key."""
    require_admin(request)
    key_id = _key_id(request)
    body = await read_model(request, SetChannelsRequest, _MAX_BODY)
    record, _ = await applied(request.app[KEY_ADMIN].set_channels(key_id, tuple(body.channels)))
    return _answer(public_view(record), "Channels set")


async def set_webhooks(request: web.Request) -> web.Response:
    """Replace the webhook URLs of a key; the signing secret is in the answer when minted."""
    require_admin(request)
    key_id = _key_id(request)
    body = await read_model(request, SetWebhooksRequest, _MAX_BODY)
    record, change = await applied(
        request.app[KEY_ADMIN].set_webhooks(key_id, body.urls, body.rotate_secret)
    )
    # The secret is shown this once, like the API key itself.
    return _answer(public_view(record, webhook_secret=change.webhook_secret), "Webhooks set")
