"""Filter agent: match each delivery candidate against every key and sink it to its channels."""

from __future__ import annotations

import json
import logging
from typing import Any

from app import topics
from app.faust_app import app, settings
from app.metrics import metrics
from app.pipeline.boundary import record_boundary
from app.pipeline.channels import ChannelSink
from app.pipeline.delivery import delivery_for
from app.pipeline.records import decode_record
from app.services import dead_letters
from app.services import keys as keys_replica
from models.events import EVENT_ID_HEADER, Candidate
from models.webhooks import WebhookJob

log = logging.getLogger(__name__)


async def _send_to_channel(
    name: str, key: bytes | None, value: bytes, headers: dict[str, bytes]
) -> None:
    await topics.channel(name).send(key=key, value=value, headers=headers)


channels = ChannelSink(
    _send_to_channel, settings.channel_send_timeout_s, settings.channel_retry_after_s
)


@app.agent(topics.candidates)
async def filter_candidates(stream: Any) -> None:
    """Deliver each candidate to the channel topics of the keys it matches."""
    async for event in stream.events():
        # Why: before the replica has read the changelog it would match against no keys.
        await keys_replica.wait_ready()
        async with record_boundary(dead_letters, "filter", event):
            candidate = decode_record(event.value, Candidate, "candidate")
            with metrics.tracking(candidate.event_id, "deliver"):
                await deliver(candidate, event)


async def deliver(candidate: Candidate, event: Any) -> None:
    """Send a candidate to the channel topics of every key whose keywords it matches.

    A channel that cannot take it costs only that key's delivery there: its dead letter says
    which key, which channel and why, and the other keys' deliveries go on.
    """
    headers = {EVENT_ID_HEADER: candidate.event_id.encode()}
    for key in keys_replica.active():
        delivery = delivery_for(key, candidate)
        if delivery is None:
            metrics.deliveries.labels(outcome="filtered").inc()
            continue
        body = json.dumps(delivery, separators=(",", ":")).encode()
        for name in key.channels:
            refused = await channels.send(name, event.key, body, headers)
            if refused is not None:
                metrics.deliveries.labels(outcome="refused").inc()
                await dead_letters.send("filter", f"key {key.key_id}: {refused}", event)
        for url in key.webhooks:
            # Why keyed by endpoint: one partition per endpoint keeps its deliveries in order.
            job = WebhookJob(
                key_id=key.key_id, url=url, event_id=candidate.event_id, event=delivery
            )
            await topics.webhooks.send(
                key=job.endpoint_id.encode(), value=job.model_dump_json().encode()
            )
        metrics.deliveries.labels(outcome="sent").inc()
