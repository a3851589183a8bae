"""What one attempt of a job sends: the URL, body and headers for its endpoint, from the key.

A webhook gets ocrstream's signed JSON, or a Discord or Slack body; a Telegram job becomes a
Bot API ``sendMessage`` call by the operator's bot. Built for each attempt, so a rotated
secret or a changed format applies to deliveries already waiting. Pure.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from app.dispatch.formats import discord_body, slack_body, telegram_text
from app.dispatch.signing import ATTEMPT_HEADER, DELIVERY_HEADER, SIGNATURE_HEADER, sign
from app.kafka.outbox import Outgoing
from app.sealing import SecretBox, open_secret
from models.delivery_jobs import HeldChannelSend, TelegramMessage, WebhookPost
from models.events import EVENT_ID_HEADER, event_json
from models.keys import KeyRecord


@dataclass(frozen=True)
class DeliveryRequest:
    """One POST to make: where, what, and how logs may name it."""

    url: str = field(repr=False)  # a Telegram URL holds the bot token
    body: bytes = field(repr=False)
    headers: dict[str, str] = field(repr=False)
    shown_as: str  # the destination without secrets (the bot token is in a Telegram URL)
    # Why False for Telegram: its URL is the operator's, not a key holder's, so the refusal of
    # private addresses (there against SSRF) does not apply; a local Bot API server is fine.
    check_target: bool = True
    secrets: tuple[str, ...] = field(default=(), repr=False)  # to scrub from error details


class NotDeliverable(Exception):
    """The key no longer wants this job: revoked, URL removed, chat changed or inactive."""


def request_for(
    job: WebhookPost | TelegramMessage,
    key: KeyRecord | None,
    attempt: int,
    telegram: TelegramBot | None,
    box: SecretBox | None,
) -> DeliveryRequest:
    """Return the POST for one attempt of ``job``; raise NotDeliverable when it is moot.

    ``box`` opens the key's sealed signing secret (SecretKeyError when it cannot).
    """
    if key is None or key.revoked:
        raise NotDeliverable("the key is revoked")
    if isinstance(job, TelegramMessage):
        return _telegram_request(job, key, telegram)
    if job.url not in key.webhooks:
        raise NotDeliverable("the URL was removed from the key")
    headers = {
        "Content-Type": "application/json",
        DELIVERY_HEADER: job.delivery_id,
        ATTEMPT_HEADER: str(attempt),
    }
    fmt = key.webhook_formats.get(job.url, "json")
    if fmt == "json":
        body = event_json(job.event)
        secret = open_secret(box, key.webhook_secret, key.key_id)
        headers[SIGNATURE_HEADER] = sign(secret, int(time.time()), body)
    else:
        # Discord and Slack verify no signature; their bodies are what they render.
        body = event_json(discord_body(job.event) if fmt == "discord" else slack_body(job.event))
    return DeliveryRequest(job.url, body, headers, shown_as=job.url)


@dataclass(frozen=True)
class TelegramBot:
    """The operator's bot: the Bot API server and the token (never shown)."""

    api_url: str
    token: str = field(repr=False)


def _telegram_request(
    job: TelegramMessage, key: KeyRecord, telegram: TelegramBot | None
) -> DeliveryRequest:
    subscription = key.telegram
    if subscription is None or subscription.id != job.subscription_id:
        raise NotDeliverable("the Telegram subscription was removed or replaced")
    if subscription.status != "ACTIVE":
        # PENDING: its chat has not confirmed it; INACTIVE: the bot can no longer write there.
        raise NotDeliverable(f"the Telegram subscription is {subscription.status.lower()}")
    if telegram is None:
        raise NotDeliverable("no Telegram bot is configured (OCRSTREAM_TELEGRAM_BOT_TOKEN)")
    body = {
        "chat_id": subscription.chat_id,
        "text": telegram_text(job.event),
        "parse_mode": "HTML",
        "link_preview_options": {"is_disabled": True},
    }
    return DeliveryRequest(
        f"{telegram.api_url.rstrip('/')}/bot{telegram.token}/sendMessage",
        event_json(body),
        {"Content-Type": "application/json"},
        shown_as=job.destination,
        check_target=False,
        secrets=(telegram.token,),
    )


def channel_record_for(job: HeldChannelSend, key: KeyRecord | None) -> Outgoing:
    """Return the channel record of a held delivery; raise NotDeliverable when it is moot."""
    if key is None or key.revoked:
        raise NotDeliverable("the key is revoked")
    if job.channel not in key.channels:
        raise NotDeliverable("the channel was removed from the key")
    return Outgoing(
        job.channel,
        job.channel_key.encode() if job.channel_key is not None else None,
        event_json(job.event),
        [(EVENT_ID_HEADER, job.event_id.encode())],
    )
