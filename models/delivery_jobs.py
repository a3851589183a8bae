"""A delivery waiting for one endpoint (``webhooks`` topic, keyed by endpoint).

An endpoint is a key's webhook URL, the Telegram chat the key subscribed, or a channel topic
whose send failed while the cluster moved a leader: all go through the same lanes, retries,
ordering and dead letters. A job is one of three kinds, told apart by ``kind``.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Discriminator, Tag, TypeAdapter


class _Job(BaseModel):
    """What every job has: one event for one endpoint of one key."""

    key_id: str
    event_id: str
    event: dict[str, Any]

    @property
    def destination(self) -> str:
        """Return what the job is sent to, as shown in logs and dead letters (no secret)."""
        raise NotImplementedError

    @property
    def shown(self) -> str:
        """Return the destination as the dashboard shows it (a webhook by its host only)."""
        return self.destination

    @property
    def post(self) -> str:
        """Return the post the event is about, ``source:mid`` (for people reading a queue)."""
        ref = self.event.get("ref")
        ref = ref if isinstance(ref, dict) else self.event
        return f"{ref.get('source', '?')}:{ref.get('mid', '?')}"

    @property
    def endpoint_id(self) -> str:
        """Return the record key: one per (key, endpoint), so an endpoint's jobs stay in order."""
        return endpoint_id(self.key_id, self.destination)

    @property
    def delivery_id(self) -> str:
        """Return the id a receiver de-duplicates on: the same for retries and redeliveries."""
        digest = hashlib.sha256(f"{self.event_id}\n{self.endpoint_id}".encode()).hexdigest()
        return digest[:32]


class WebhookPost(_Job):
    """A POST to one of the key's webhook URLs (signed, or in Discord's or Slack's shape)."""

    kind: Literal["webhook"] = "webhook"
    url: str

    @property
    def destination(self) -> str:
        """Return the URL."""
        return self.url

    @property
    def shown(self) -> str:
        """Return ``webhook <host>``: a webhook's path may hold its token (Discord's does)."""
        try:
            host = urlsplit(self.url).hostname or "?"
        except ValueError:  # checked when registered; a record of an older version may not be
            host = "?"
        return f"webhook {host}"


class TelegramMessage(_Job):
    """A message to the Telegram chat the key subscribed (by the operator's bot)."""

    kind: Literal["telegram"] = "telegram"
    # The subscription the job was made for: a job for a replaced one is skipped.
    subscription_id: str
    chat_id: str

    @property
    def destination(self) -> str:
        """Return the chat, as ``telegram:<chat id>``."""
        return f"telegram:{self.chat_id}"


class HeldChannelSend(_Job):
    """A channel delivery held back while the cluster moved a leader (app/pipeline/channels.py)."""

    kind: Literal["channel"] = "channel"
    channel: str
    channel_key: str | None = None

    @property
    def destination(self) -> str:
        """Return the channel topic, as ``channel:<topic>``."""
        return f"channel:{self.channel}"


def _kind_of(value: Any) -> str:
    """Return a job's kind; a job written before ``kind`` existed says it by its fields."""
    if not isinstance(value, dict):
        return str(getattr(value, "kind", "webhook"))
    kind = value.get("kind")
    if isinstance(kind, str):
        return kind
    if value.get("channel") is not None:
        return "channel"
    return "telegram" if value.get("chat_id") is not None else "webhook"


DeliveryJob = Annotated[
    Annotated[WebhookPost, Tag("webhook")]
    | Annotated[TelegramMessage, Tag("telegram")]
    | Annotated[HeldChannelSend, Tag("channel")],
    Discriminator(_kind_of),
]
delivery_job_adapter: TypeAdapter[DeliveryJob] = TypeAdapter(DeliveryJob)


def endpoint_id(key_id: str, url: str) -> str:
    """Return the stable, non-secret id of a key's webhook URL."""
    return hashlib.sha256(f"{key_id}\n{url}".encode()).hexdigest()[:16]
