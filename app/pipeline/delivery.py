"""What each API key receives of a delivery candidate, and its delivery.

``delivery_for`` is the rule (shared by the channels and the live streams). ``Deliverer`` plans
a batch of candidates for every active key: a record per channel topic, a job per webhook and
Telegram chat; it sends the channel records at once, and settles each: delivered, held for the
retry lanes (the cluster is moving a leader), or dead-lettered (the channel refused it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.activity import activity
from app.kafka.outbox import Outbox, Outgoing
from app.metrics import metrics
from app.pipeline.boundary import record_boundary
from app.pipeline.candidates import Offered, read_candidates
from app.pipeline.channels import ChannelHealth
from app.pipeline.dead_letters import DeadLetters
from app.pipeline.key_directory import KeyDirectory
from app.pipeline.matching import matches_in
from app.pipeline.publish import publish
from app.settings import Settings
from models.delivery_jobs import DeliveryJob, HeldChannelSend, TelegramMessage, WebhookPost
from models.events import EVENT_ID_HEADER, Candidate, event_json
from models.keys import KeyRecord


def delivery_for(key: KeyRecord, candidate: Candidate) -> dict[str, Any] | None:
    """Return the event as ``key`` receives it, or None when its keywords do not match."""
    if not key.keywords:
        return candidate.event  # a key without keywords receives everything
    matches = matches_in(key.keywords, candidate.folded_texts())
    if not matches:
        return None
    return {**candidate.event, "keyword_matches": matches}


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


class Deliverer:
    """Delivers batches of candidates to the channels and endpoints of the keys they match."""

    def __init__(
        self,
        settings: Settings,
        keys: KeyDirectory,
        outbox: Outbox,
        dead_letters: DeadLetters,
    ) -> None:
        self._settings = settings
        self._keys = keys
        self._outbox = outbox
        self._dead_letters = dead_letters
        # Which channel topics failed lately (skipped a while) or wait for a moving leader.
        self.channels = ChannelHealth(settings.channel_retry_after_s)

    async def deliver_batch(self, events: list[Any]) -> None:
        """Deliver a batch of candidates; a channel that cannot take them costs only its own."""
        # Every key known first: before that a candidate would match no keys.
        await self._keys.wait_ready()
        deliveries: list[Delivery] = []
        jobs: list[Delivery] = []
        offered_count = 0
        for event in events:
            offered: list[Offered] = []
            async with record_boundary(self._dead_letters, "filter", event):
                offered = read_candidates(event.value)
            offered_count += len(offered)
            for item in offered:
                # Why one boundary per candidate: in a bundle, one that fails costs only itself.
                async with record_boundary(self._dead_letters, "filter", event, item.own_bytes):
                    await self._plan(item, event, deliveries, jobs)
        timeout_s = self._settings.channel_send_timeout_s
        with metrics.tracking(f"{offered_count} candidate(s)", "deliver"):
            await self._outbox.send_all([d.record for d in deliveries], timeout_s)
            await self._send_jobs(jobs)
            held = [job for d in deliveries if (job := await self._settle(d)) is not None]
            # Why before the batch is acknowledged: a held delivery lives on in the webhooks
            # topic.
            await self._send_jobs(held)

    async def _send_jobs(self, jobs: list[Delivery]) -> None:
        """Produce delivery jobs to the webhooks topic; a job Kafka refuses is dead-lettered."""
        refused = await publish(self._outbox, [job.record for job in jobs])
        if not refused:
            return
        by_record = {id(job.record): job for job in jobs}
        for record in refused:
            job = by_record[id(record)]
            metrics.deliveries.labels(outcome="refused").inc()
            reason = f"key {job.key_id}: delivery job not produced: {record.error}"
            await self._dead_letters.send("filter", reason, job.event, job.offered.own_bytes())

    async def _plan(
        self, offered: Offered, event: Any, deliveries: list[Delivery], jobs: list[Delivery]
    ) -> None:
        """Add what every active key receives of one candidate: channel records and jobs."""
        candidate = offered.candidate
        headers = [(EVENT_ID_HEADER, candidate.event_id.encode())]
        channel_key = event.key if candidate.key is None else candidate.key.encode()
        # Why: the event is the same for every key without keywords; it is serialised once.
        plain = event_json(candidate.event)
        for key in self._keys.active():
            delivery = delivery_for(key, candidate)
            if delivery is None:
                metrics.deliveries.labels(outcome="filtered").inc()
                continue
            body = plain if delivery is candidate.event else event_json(delivery)
            if delivery is not candidate.event and delivery.get("source") == "ocr_result":
                activity.matched(candidate.event_id, delivery["keyword_matches"])
            for name in key.channels:
                refused = self.channels.refusal(name)
                if refused is not None:
                    metrics.deliveries.labels(outcome="refused").inc()
                    await self._dead_letters.send(
                        "filter", f"key {key.key_id}: {refused}", event, offered.own_bytes()
                    )
                    continue
                record = Outgoing(name, channel_key, body, headers)
                planned = Delivery(key.key_id, record, event, offered, delivery)
                if self.channels.held(name):  # the cluster is moving its leader: to the lanes
                    metrics.deliveries.labels(outcome="held").inc()
                    jobs.append(self._held(planned))
                    continue
                deliveries.append(planned)
            for job in self._endpoint_jobs(key, candidate.event_id, delivery):
                jobs.append(Delivery(key.key_id, self._job_record(job), event, offered, delivery))
            metrics.deliveries.labels(outcome="sent").inc()
            activity.delivered(key.key_id)

    def _endpoint_jobs(
        self, key: KeyRecord, event_id: str, delivery: dict[str, Any]
    ) -> list[DeliveryJob]:
        """Return a key's delivery jobs for one event: each webhook URL, and its Telegram chat."""
        jobs: list[DeliveryJob] = [
            WebhookPost(key_id=key.key_id, url=url, event_id=event_id, event=delivery)
            for url in key.webhooks
        ]
        subscription = key.telegram
        # Why check the bot: without one, a chat's jobs could only be skipped.
        bot_configured = self._settings.telegram_bot_token is not None
        if subscription is not None and subscription.status == "ACTIVE" and bot_configured:
            jobs.append(
                TelegramMessage(
                    key_id=key.key_id,
                    event_id=event_id,
                    event=delivery,
                    subscription_id=subscription.id,
                    chat_id=subscription.chat_id,
                )
            )
        return jobs

    async def _settle(self, delivery: Delivery) -> Delivery | None:
        """Record a channel send's outcome; return its held job when the failure may pass.

        Refused for the channel's own reasons: a dead letter. Failed because the cluster moved
        a leader: a job for the webhooks topic's retry lanes, which send it when it is back.
        """
        record = delivery.record
        if record.error is None:
            self.channels.delivered(record.topic)
            return None
        reason = self.channels.failed(record.topic, record.error, transient=record.retriable)
        if record.retriable:
            metrics.deliveries.labels(outcome="held").inc()
            return self._held(delivery)
        metrics.deliveries.labels(outcome="refused").inc()
        await self._dead_letters.send(
            "filter",
            f"key {delivery.key_id}: {reason}",
            delivery.event,
            delivery.offered.own_bytes(),
        )
        return None

    def _held(self, delivery: Delivery) -> Delivery:
        """Return a channel delivery as a job for the retry lanes (keyed by key and channel)."""
        record = delivery.record
        job = HeldChannelSend(
            key_id=delivery.key_id,
            event_id=delivery.offered.candidate.event_id,
            event=delivery.delivery,
            channel=record.topic,
            channel_key=record.key.decode(errors="replace") if record.key is not None else None,
        )
        return Delivery(
            delivery.key_id,
            self._job_record(job),
            delivery.event,
            delivery.offered,
            delivery.delivery,
        )

    def _job_record(self, job: DeliveryJob) -> Outgoing:
        """Return a job as a webhooks-topic record: keyed by endpoint, so each keeps its order."""
        return Outgoing(
            self._settings.webhooks_topic, job.endpoint_id.encode(), job.model_dump_json().encode()
        )
