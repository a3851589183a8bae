"""A delivery waiting for one endpoint (``webhooks`` topic, keyed by endpoint).

An endpoint is a key's webhook URL, the Telegram chat the key subscribed, or a channel topic
whose send failed while the cluster moved a leader: all go through the same lanes, retries,
ordering and dead letters.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import BaseModel


class WebhookJob(BaseModel):
    """One event for one endpoint of one key; secrets and formats are looked up at send time."""

    key_id: str
    url: str = ""  # the webhook URL; "" for a Telegram job
    event_id: str
    event: dict[str, Any]
    # A Telegram job: the subscription it was made for, and its chat.
    subscription_id: str | None = None
    chat_id: str | None = None
    # A channel delivery held back (see app/pipeline/channels.py): its topic and record key.
    channel: str | None = None
    channel_key: str | None = None

    @property
    def endpoint_id(self) -> str:
        """Return the record key: one per (key, endpoint), so an endpoint's jobs stay in order."""
        return endpoint_id(self.key_id, self.destination)

    @property
    def destination(self) -> str:
        """Return what the job is sent to, as shown in logs and dead letters (no secret)."""
        if self.channel is not None:
            return f"channel:{self.channel}"
        return f"telegram:{self.chat_id}" if self.chat_id is not None else self.url

    @property
    def delivery_id(self) -> str:
        """Return the id a receiver de-duplicates on: the same for retries and redeliveries."""
        digest = hashlib.sha256(f"{self.event_id}\n{self.endpoint_id}".encode()).hexdigest()
        return digest[:32]


def endpoint_id(key_id: str, url: str) -> str:
    """Return the stable, non-secret id of a key's webhook URL."""
    return hashlib.sha256(f"{key_id}\n{url}".encode()).hexdigest()[:16]
