"""/admin/keys: create, list and revoke API keys; set their channels and webhooks (x-admin-key)."""

from __future__ import annotations

import re
import time
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from app.apikeys import hash_key, mint_key, new_key_id
from app.control import set_webhooks_command
from app.faust_app import settings
from app.keys_replica import keys_replica
from app.web.auth import require_admin
from app.web.control_client import apply_and_wait
from app.web.errors import ApiError, describe_invalid, read_model
from models.api import CreateKeyRequest, SetChannelsRequest, SetWebhooksRequest
from models.keys import KEY_ID_PATTERN, CreateKey, KeyRecord, RevokeKey, SetChannels

_MAX_BODY = 64 * 1024


def public_view(record: KeyRecord) -> dict[str, Any]:
    """Return what an admin may see of a key (never its hash)."""
    return {
        "key_id": record.key_id,
        "label": record.label,
        "created_at": record.created_at,
        "revoked": record.revoked,
        "keywords": list(record.keywords),
        "channels": list(record.channels),
        "webhooks": list(record.webhooks),
    }


def _key_or_404(request: web.Request) -> KeyRecord:
    key_id = request.match_info["key_id"]
    record = keys_replica.get(key_id) if _is_key_id(key_id) else None
    if record is None:
        raise ApiError(404, f"no key {key_id[:40]!r}")
    return record


def _is_key_id(value: str) -> bool:
    return re.fullmatch(KEY_ID_PATTERN, value) is not None


async def create_key(request: web.Request) -> web.Response:
    """Create a key; the answer holds the secret key, shown this once."""
    require_admin(request)
    body = await read_model(request, CreateKeyRequest, _MAX_BODY, empty=b"{}")
    key_id = new_key_id()
    api_key = mint_key(key_id)
    command = CreateKey(
        key_id=key_id,
        key_hash=hash_key(api_key),
        label=body.label,
        created_at=time.time(),
        channels=tuple(body.channels or (settings.channel_topic(key_id),)),
    )
    record = await apply_and_wait(command, lambda r: r is not None)
    assert record is not None
    return web.json_response(
        {"data": {**public_view(record), "api_key": api_key}, "message": "Key created"},
        status=201,
    )


async def list_keys(request: web.Request) -> web.Response:
    """List every key (ids, labels, state, keywords, channels)."""
    require_admin(request)
    keys = sorted(keys_replica.all(), key=lambda r: r.created_at)
    return web.json_response({"data": {"keys": [public_view(r) for r in keys]}})


async def revoke_key(request: web.Request) -> web.Response:
    """Revoke a key: it stops working on every worker as soon as each applies the change."""
    require_admin(request)
    record = _key_or_404(request)
    revoked = await apply_and_wait(
        RevokeKey(key_id=record.key_id), lambda r: r is not None and r.revoked
    )
    assert revoked is not None
    return web.json_response({"data": public_view(revoked), "message": "Key revoked"})


async def set_channels(request: web.Request) -> web.Response:
    """Replace the channel topics of a key."""
    require_admin(request)
    record = _key_or_404(request)
    body = await read_model(request, SetChannelsRequest, _MAX_BODY)
    command = SetChannels(key_id=record.key_id, channels=tuple(body.channels))
    updated = await apply_and_wait(
        command, lambda r: r is not None and r.channels == command.channels
    )
    assert updated is not None
    return web.json_response({"data": public_view(updated), "message": "Channels set"})


async def set_webhooks(request: web.Request) -> web.Response:
    """Replace the webhook URLs of a key; the signing secret is in the answer when minted."""
    require_admin(request)
    record = _key_or_404(request)
    body = await read_model(request, SetWebhooksRequest, _MAX_BODY)
    try:
        command = set_webhooks_command(record, body.urls, body.rotate_secret)
    except ValidationError as exc:
        raise ApiError(400, f"invalid webhooks: {describe_invalid(exc)}") from None
    secret = command.secret
    updated = await apply_and_wait(
        command,
        lambda r: (
            r is not None
            and r.webhooks == command.urls
            and (secret is None or r.webhook_secret == secret)
        ),
    )
    assert updated is not None
    data: dict[str, Any] = public_view(updated)
    if secret is not None:
        data["webhook_secret"] = secret  # shown this once, like the API key itself
    return web.json_response({"data": data, "message": "Webhooks set"})
