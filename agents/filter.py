"""Filter agent: match each delivery candidate against every key and sink it to its channels."""

from __future__ import annotations

import json
import logging
from typing import Any

from pydantic import ValidationError

from app import topics
from app.dead_letter import send_dead_letter
from app.delivery import delivery_for
from app.faust_app import app
from app.keys_replica import keys_replica
from app.metrics import metrics
from models.events import EVENT_ID_HEADER, Candidate
from models.webhooks import WebhookJob

log = logging.getLogger(__name__)


@app.agent(topics.candidates)
async def filter_candidates(stream: Any) -> None:
    """Deliver each candidate to the channel topics of the keys it matches."""
    async for event in stream.events():
        # Why: before the replica has read the changelog it would match against no keys.
        await keys_replica.wait_ready()
        try:
            candidate = Candidate.model_validate_json(event.value)
        except ValidationError as exc:
            await send_dead_letter("filter", f"invalid candidate: {exc.errors()[0]['msg']}", event)
            continue
        with metrics.tracking(candidate.event_id, "deliver"):
            await deliver(candidate, event.key)


async def deliver(candidate: Candidate, record_key: bytes | None) -> None:
    """Send a candidate to the channel topics of every key whose keywords it matches."""
    for key in keys_replica.active():
        delivery = delivery_for(key, candidate)
        if delivery is None:
            metrics.count("deliveries.filtered")
            continue
        body = json.dumps(delivery, separators=(",", ":")).encode()
        for name in key.channels:
            await topics.channel(name).send(
                key=record_key,
                value=body,
                headers={EVENT_ID_HEADER: candidate.event_id.encode()},
            )
        for url in key.webhooks:
            # Why keyed by endpoint: one partition per endpoint keeps its deliveries in order.
            job = WebhookJob(
                key_id=key.key_id, url=url, event_id=candidate.event_id, event=delivery
            )
            await topics.webhooks.send(
                key=job.endpoint_id.encode(), value=job.model_dump_json().encode()
            )
        metrics.count("deliveries.sent")
