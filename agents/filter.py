"""Filter agent: match each delivery candidate against every key and sink it to its channels."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from app import topics
from app.activity import activity
from app.faust_app import app, settings
from app.kafka.outbox import Outgoing
from app.metrics import metrics
from app.pipeline.boundary import batch_boundary, record_boundary
from app.pipeline.candidates import Offered, read_candidates
from app.pipeline.channels import ChannelHealth
from app.pipeline.delivery import delivery_for
from app.pipeline.publish import publish
from app.services import dead_letters, outbox
from app.services import keys as keys_replica
from models.events import EVENT_ID_HEADER, event_json
from models.keys import KeyRecord
from models.webhooks import WebhookJob

log = logging.getLogger(__name__)

channels = ChannelHealth(settings.channel_retry_after_s)


@dataclass
class Delivery:
    """One candidate as one key receives it: a channel record, or a job for the webhooks topic
    (a webhook, a Telegram chat, a held channel delivery), kept for its dead letter if refused.
    """

    key_id: str
    record: Outgoing
    event: Any
    offered: Offered
    delivery: dict[str, Any]


@app.agent(topics.candidates)
async def filter_candidates(stream: Any) -> None:
    """Deliver each candidate to the channel topics (and webhooks) of the keys it matches."""
    wait_s = settings.batch_wait_ms / 1000
    async for events in stream.take_events(settings.batch_max_records, within=wait_s):
        # Why: before the replica has read the changelog it would match against no keys.
        await keys_replica.wait_ready()
        async with batch_boundary(dead_letters, events):
            await _deliver_batch(events)


async def _deliver_batch(events: list[Any]) -> None:
    """Deliver a batch of candidates; a channel that cannot take them costs only its own."""
    deliveries: list[Delivery] = []
    jobs: list[Delivery] = []
    offered_count = 0
    for event in events:
        offered: list[Offered] = []
        async with record_boundary(dead_letters, "filter", event):
            offered = read_candidates(event.value)
        offered_count += len(offered)
        for item in offered:
            # Why one boundary per candidate: in a bundle, one that fails costs only itself.
            async with record_boundary(dead_letters, "filter", event, item.own_bytes):
                await _plan(item, event, deliveries, jobs)
    with metrics.tracking(f"{offered_count} candidate(s)", "deliver"):
        await outbox.send_all([d.record for d in deliveries], settings.channel_send_timeout_s)
        await _send_jobs(jobs)
        held = [job for delivery in deliveries if (job := await _settle(delivery)) is not None]
        # Why before the batch is acknowledged: a held delivery lives on in the webhooks topic.
        await _send_jobs(held)


async def _send_jobs(jobs: list[Delivery]) -> None:
    """Produce delivery jobs to the webhooks topic; a job Kafka refuses is dead-lettered."""
    refused = await publish([job.record for job in jobs])
    if not refused:
        return
    by_record = {id(job.record): job for job in jobs}
    for record in refused:
        job = by_record[id(record)]
        metrics.deliveries.labels(outcome="refused").inc()
        reason = f"key {job.key_id}: delivery job not produced: {record.error}"
        await dead_letters.send("filter", reason, job.event, job.offered.own_bytes())


async def _plan(
    offered: Offered, event: Any, deliveries: list[Delivery], jobs: list[Delivery]
) -> None:
    """Add what every active key receives of one candidate: channel records and webhook jobs."""
    candidate = offered.candidate
    headers = [(EVENT_ID_HEADER, candidate.event_id.encode())]
    channel_key = event.key if candidate.key is None else candidate.key.encode()
    # Why: the event is the same for every key without keywords; it is serialised once.
    plain = event_json(candidate.event)
    for key in keys_replica.active():
        delivery = delivery_for(key, candidate)
        if delivery is None:
            metrics.deliveries.labels(outcome="filtered").inc()
            continue
        body = plain if delivery is candidate.event else event_json(delivery)
        if delivery is not candidate.event and delivery.get("source") == "ocr_result":
            activity.matched(candidate.event_id, delivery["keyword_matches"])
        for name in key.channels:
            refused = channels.refusal(name)
            if refused is not None:
                metrics.deliveries.labels(outcome="refused").inc()
                await dead_letters.send(
                    "filter", f"key {key.key_id}: {refused}", event, offered.own_bytes()
                )
                continue
            record = Outgoing(name, channel_key, body, headers)
            planned = Delivery(key.key_id, record, event, offered, delivery)
            if channels.held(name):  # the cluster is moving its leader: straight to the lanes
                metrics.deliveries.labels(outcome="held").inc()
                jobs.append(_held(planned))
                continue
            deliveries.append(planned)
        for job in _endpoint_jobs(key, candidate.event_id, delivery):
            jobs.append(Delivery(key.key_id, _job_record(job), event, offered, delivery))
        metrics.deliveries.labels(outcome="sent").inc()
        activity.delivered(key.key_id)


def _endpoint_jobs(key: KeyRecord, event_id: str, delivery: dict[str, Any]) -> list[WebhookJob]:
    """Return a key's delivery jobs for one event: each webhook URL, and its Telegram chat."""
    jobs = [
        WebhookJob(key_id=key.key_id, url=url, event_id=event_id, event=delivery)
        for url in key.webhooks
    ]
    subscription = key.telegram
    # Why check the bot: without one, a chat's jobs could only be skipped.
    bot_configured = settings.telegram_bot_token is not None
    if subscription is not None and subscription.status == "ACTIVE" and bot_configured:
        jobs.append(
            WebhookJob(
                key_id=key.key_id,
                event_id=event_id,
                event=delivery,
                subscription_id=subscription.id,
                chat_id=subscription.chat_id,
            )
        )
    return jobs


async def _settle(delivery: Delivery) -> Delivery | None:
    """Record a channel send's outcome; return its held job when the failure may pass.

    Refused for the channel's own reasons: a dead letter. Failed because the cluster moved a
    leader: a job for the webhooks topic's retry lanes, which send it when the leader is back.
    """
    record = delivery.record
    if record.error is None:
        channels.delivered(record.topic)
        return None
    reason = channels.failed(record.topic, record.error, transient=record.retriable)
    if record.retriable:
        metrics.deliveries.labels(outcome="held").inc()
        return _held(delivery)
    metrics.deliveries.labels(outcome="refused").inc()
    await dead_letters.send(
        "filter",
        f"key {delivery.key_id}: {reason}",
        delivery.event,
        delivery.offered.own_bytes(),
    )
    return None


def _held(delivery: Delivery) -> Delivery:
    """Return a channel delivery as a job for the retry lanes (keyed by key and channel)."""
    record = delivery.record
    job = WebhookJob(
        key_id=delivery.key_id,
        event_id=delivery.offered.candidate.event_id,
        event=delivery.delivery,
        channel=record.topic,
        channel_key=record.key.decode(errors="replace") if record.key is not None else None,
    )
    return Delivery(
        delivery.key_id, _job_record(job), delivery.event, delivery.offered, delivery.delivery
    )


def _job_record(job: WebhookJob) -> Outgoing:
    """Return a job as a webhooks-topic record: keyed by endpoint, so each keeps its order."""
    return Outgoing(
        settings.webhooks_topic, job.endpoint_id.encode(), job.model_dump_json().encode()
    )
