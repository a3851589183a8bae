"""A delivery waiting for one webhook URL (``webhooks`` topic, keyed by endpoint)."""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import BaseModel


class WebhookJob(BaseModel):
    """One event for one webhook URL of one key; the secret is looked up at send time."""

    key_id: str
    url: str
    event_id: str
    event: dict[str, Any]

    @property
    def endpoint_id(self) -> str:
        """Return the record key: one per (key, URL), so an endpoint's jobs stay in order."""
        return endpoint_id(self.key_id, self.url)

    @property
    def delivery_id(self) -> str:
        """Return the id a receiver de-duplicates on: the same for retries and redeliveries."""
        digest = hashlib.sha256(f"{self.event_id}\n{self.endpoint_id}".encode()).hexdigest()
        return digest[:32]


def endpoint_id(key_id: str, url: str) -> str:
    """Return the stable, non-secret id of a key's webhook URL."""
    return hashlib.sha256(f"{key_id}\n{url}".encode()).hexdigest()[:16]
